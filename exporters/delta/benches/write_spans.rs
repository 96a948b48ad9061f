//! Benchmark of the exporter's write path alone (not a test): converts and writes 1 million realistic GenAI
//! spans through `TableSink` into a local Delta table, committing every 100k rows (what 50k spans/s with the
//! default 2 s latency gives), on one thread. Prints rows/s, CPU seconds per million rows and peak RSS.
//!
//! `cargo bench -p otlake-exporter-delta --bench write_spans`

#[path = "../tests/common/data.rs"]
mod data;

use std::collections::HashMap;
use std::time::Instant;

use otlake_core::Payload;
use otlake_exporter_delta::config::{SchemaVersion, TableKind};
use otlake_exporter_delta::convert::{CHUNK_ROWS, Rows};
use otlake_exporter_delta::location::Location;
use otlake_exporter_delta::schema::TableSchema;
use otlake_exporter_delta::{SinkOptions, TableSink, TableSpec};

const TOTAL: usize = 1_000_000;
const COMMIT_EVERY: usize = 100_000;

/// User + system CPU seconds of this process (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    // 100 distinct requests of 100 spans (25 traces × (1 root + 3 LLM spans)), cycled.
    let requests: Vec<Payload> = (0..100u64)
        .map(|i| Payload::from(data::genai_traces(i * 25, 25, 3)))
        .collect();
    let request_bytes: usize =
        requests.iter().map(Payload::encoded_len).sum::<usize>() / requests.len();
    println!("request: 100 spans, {request_bytes} bytes OTLP");

    // 1. Conversion alone.
    let schema = TableSchema::new(TableKind::Spans, SchemaVersion::V1).expect("schema");
    let mut rows = Rows::new(TableKind::Spans, SchemaVersion::V1, Default::default());
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut converted = 0;
    while converted < TOTAL {
        for request in &requests {
            converted += rows.append(request).unwrap_or(0);
            if rows.len() >= CHUNK_ROWS {
                std::hint::black_box(rows.finish(&schema.arrow).expect("finish"));
            }
        }
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    println!(
        "convert only: {converted} spans in {wall:.2}s wall, {cpu:.2} CPU-s → {:.0} spans/s per core, {:.2} CPU-s per million",
        converted as f64 / cpu.max(1e-9),
        cpu / (converted as f64 / 1e6)
    );

    // 2. Convert + Parquet (zstd 3) + Delta commits, through TableSink.
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let location = Location::parse(dir.path().to_str().expect("utf-8")).expect("location");
        location.prepare().expect("prepare");
        let spec = TableSpec {
            name: "otel_spans".to_owned(),
            url: location.table_url("otel_spans").expect("url"),
            kind: TableKind::Spans,
            version: SchemaVersion::V1,
            storage_options: HashMap::new(),
            app_id: "bench".to_owned(),
            options: SinkOptions::default(),
        };
        let mut sink = TableSink::open(spec).await.expect("open");
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let mut written = 0;
        let mut commits = 0;
        'outer: loop {
            for request in &requests {
                written += sink.append(request).await.expect("append");
                if sink.window_rows() >= COMMIT_EVERY {
                    sink.commit(sink.next_sequence()).await.expect("commit");
                    commits += 1;
                }
                if written >= TOTAL {
                    break 'outer;
                }
            }
        }
        sink.commit(sink.next_sequence()).await.expect("commit");
        commits += 1;
        let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
        let bytes: u64 = walk(dir.path());
        println!(
            "convert + write + commit: {written} spans, {commits} commits in {wall:.2}s wall, {cpu:.2} CPU-s → \
             {:.0} spans/s per core, {:.2} CPU-s per million; {:.1} MB of Parquet ({:.0} bytes/span)",
            written as f64 / cpu.max(1e-9),
            cpu / (written as f64 / 1e6),
            bytes as f64 / 1e6,
            bytes as f64 / written as f64
        );
    });
    println!("peak RSS: {:.0} MB", peak_rss_mb());
}

fn walk(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else if p.extension().is_some_and(|x| x == "parquet") {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    } else {
                        0
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
