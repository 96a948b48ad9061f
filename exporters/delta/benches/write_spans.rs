//! Benchmark of the exporter's write path alone (not a test): converts and writes realistic GenAI spans through
//! `TableSink` into a local Delta table, committing every 100k rows (what 50k spans/s with the default 2 s
//! latency gives), on one thread. Prints spans/s, CPU seconds per million spans and peak RSS. Uses mimalloc,
//! the daemon's allocator.
//!
//! `cargo bench -p otlake-exporter-delta --bench write_spans`
//!
//! Environment:
//! - `BENCH_SPANS` (1000000): spans per phase;
//! - `BENCH_DATA` (`harness`): `harness` = shaped like the peer harness's payload (15 attributes per span,
//!   random ids, every request different), `genai` = the tests' GenAI traces (events, links, errors), `logs` =
//!   the tests' log records (bodies of every kind; "spans" in the output are then log records; no `parquet`),
//!   `metrics` = the tests' metrics, 20 points of each of the five types a request (rows are data points; no
//!   `parquet`);
//! - `BENCH_PHASES` (`convert,write`): `convert` = proto → Arrow only; `write` = convert + Parquet + commits;
//!   `parquet` = Parquet encoding alone of the same record batches under several writer settings (time and
//!   file size, per-column sizes with `BENCH_COLUMNS=1`). For instruction counts run one phase under
//!   `valgrind --tool=callgrind` with a smaller `BENCH_SPANS`;
//! - `BENCH_FORM` (`wire`): the payloads the convert and write phases get. `wire` = validated protobuf bytes
//!   as the receivers hand them on, converted straight from the bytes; `wire-decode` = the same payloads
//!   decoded with prost first (`Payload::request`) and converted from the structs, the path before the wire
//!   path, decode and drop of the structs included; `decoded` = payloads built as structs (no decode counted);
//! - `BENCH_SCHEMA` (`v1`): `v1` or `v2`.

#[path = "../tests/common/data.rs"]
mod data;
#[path = "common/harness_data.rs"]
mod harness_data;

use std::collections::HashMap;
use std::time::Instant;

use deltalake::arrow::record_batch::RecordBatch;
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use otlake_core::Payload;
use otlake_core::Signal;
use otlake_exporter_delta::config::SchemaVersion;
use otlake_exporter_delta::convert::{CHUNK_ROWS, Rows};
use otlake_exporter_delta::location::Location;
use otlake_exporter_delta::parquet_layout::{ColumnRules, writer_properties};
use otlake_exporter_delta::schema::TableSchema;
use otlake_exporter_delta::{SinkOptions, TableSink, TableSpec};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let total: usize = env_or("BENCH_SPANS", 1_000_000);
    let data: String = env_or("BENCH_DATA", "harness".to_owned());
    let phases: String = env_or("BENCH_PHASES", "convert,write".to_owned());
    let make = |i: u64| match data.as_str() {
        "genai" => Payload::from(data::genai_traces(i * 25, 25, 3)),
        "logs" => Payload::from(data::mixed_logs(i * 100, 100)),
        "metrics" => Payload::from(data::all_metric_types(20)),
        _ => Payload::from(harness_data::harness_traces(i)),
    };
    // `BENCH_DISTINCT` (100) distinct requests of 100 spans, cycled by the convert and write phases.
    let distinct: u64 = env_or("BENCH_DISTINCT", 100);
    let form: String = env_or("BENCH_FORM", "wire".to_owned());
    let version = match env_or("BENCH_SCHEMA", "v1".to_owned()).as_str() {
        "v2" => SchemaVersion::V2,
        _ => SchemaVersion::V1,
    };
    let requests: Vec<Payload> = (0..distinct)
        .map(|i| {
            let decoded = make(i);
            match form.as_str() {
                "decoded" => decoded,
                _ => Payload::from_wire(decoded.signal(), decoded.encode_to_vec().into())
                    .expect("valid"),
            }
        })
        .collect();
    let form = Form::parse(&form);
    let request_bytes: usize =
        requests.iter().map(Payload::encoded_len).sum::<usize>() / requests.len();
    println!(
        "data {data}: requests of {} spans, {request_bytes} bytes OTLP, form {form:?}, schema {version:?}",
        requests[0].item_count()
    );
    for phase in phases.split(',') {
        match phase {
            "convert" => convert_only(&requests, total, form, version),
            "write" => write_through_sink(&requests, total, form, version),
            "parquet" if data != "logs" && data != "metrics" => parquet_settings(&make, total),
            other => println!("unknown phase {other}"),
        }
    }
    println!("peak RSS: {:.0} MB", peak_rss_mb());
}

/// How the convert and write phases see the payloads (see `BENCH_FORM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Wire,
    WireDecode,
    Decoded,
}

impl Form {
    fn parse(text: &str) -> Form {
        match text {
            "wire-decode" => Form::WireDecode,
            "decoded" => Form::Decoded,
            _ => Form::Wire,
        }
    }

    /// The payload to hand on: a fresh clone of a wire payload (never decoded), decoded first for
    /// `wire-decode` (what the sink did before the wire path); a decoded one as it is.
    fn prepare(self, payload: &Payload) -> Payload {
        let fresh = payload.clone();
        if self == Form::WireDecode {
            fresh.request().expect("decodes");
        }
        fresh
    }
}

fn report(what: &str, spans: usize, cpu: f64, wall: f64) {
    println!(
        "{what}: {spans} spans in {wall:.2}s wall, {cpu:.2} CPU-s → {:.0} spans/s per core, {:.2} CPU-s per million",
        spans as f64 / cpu.max(1e-9),
        cpu / (spans as f64 / 1e6)
    );
}

/// Proto → Arrow alone, chunk by chunk as the sink does.
#[inline(never)]
fn convert_only(requests: &[Payload], total: usize, form: Form, version: SchemaVersion) {
    let signal = requests[0].signal();
    let schema = TableSchema::new(signal, version).expect("schema");
    let mut rows = Rows::new(signal, version, Default::default());
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut converted = 0;
    'outer: loop {
        for request in requests {
            converted += convert_one(&mut rows, request, form);
            if rows.len() >= CHUNK_ROWS {
                std::hint::black_box(rows.finish(&schema.arrow).expect("finish"));
            }
            if converted >= total {
                break 'outer;
            }
        }
    }
    std::hint::black_box(rows.finish(&schema.arrow).expect("finish"));
    report(
        &format!("convert only ({form:?})"),
        converted,
        cpu_seconds() - cpu0,
        t0.elapsed().as_secs_f64(),
    );
}

/// One payload into `rows` as the sink converts it (a function of its own for callgrind:
/// `--toggle-collect='*convert_one*'`).
#[inline(never)]
fn convert_one(rows: &mut Rows, request: &Payload, form: Form) -> usize {
    match form {
        Form::Wire => rows
            .append_wire(request.signal(), &request.encoded())
            .expect("valid")
            .expect("wire path"),
        Form::WireDecode | Form::Decoded => {
            let payload = form.prepare(request);
            rows.append(payload.request().expect("decoded"))
                .expect("converts")
                .unwrap_or(0)
        }
    }
}

/// Convert + Parquet (zstd 3) + Delta commits, through `TableSink`.
#[inline(never)]
fn write_through_sink(requests: &[Payload], total: usize, form: Form, version: SchemaVersion) {
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
            signal: requests[0].signal(),
            version,
            storage_options: HashMap::new(),
            app_id: "bench".to_owned(),
            options: SinkOptions::default(),
        };
        let mut sink = TableSink::open(spec).await.expect("open");
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let mut written = 0;
        let mut commits = 0;
        'outer: loop {
            for request in requests {
                let payload = form.prepare(request);
                written += sink.append(&payload).await.expect("append");
                if sink.window_rows() >= COMMIT_EVERY {
                    sink.commit().await.expect("commit");
                    commits += 1;
                }
                if written >= total {
                    break 'outer;
                }
            }
        }
        sink.commit().await.expect("commit");
        commits += 1;
        let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
        let bytes: u64 = walk(dir.path());
        report(
            &format!("convert + write + {commits} commits ({form:?})"),
            written,
            cpu,
            wall,
        );
        println!(
            "  {:.1} MB of Parquet ({:.0} bytes/span)",
            bytes as f64 / 1e6,
            bytes as f64 / written as f64
        );
    });
}

/// Parquet encoding alone of the same record batches under several writer settings. Every request is a new
/// one (none repeats), so dictionaries see realistic cardinalities.
fn parquet_settings(make: &dyn Fn(u64) -> Payload, total: usize) {
    let schema = TableSchema::new(Signal::Traces, SchemaVersion::V1).expect("schema");
    let mut rows = Rows::new(Signal::Traces, SchemaVersion::V1, Default::default());
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut converted = 0;
    let mut i = 0;
    while converted < total {
        converted += rows
            .append(make(i).request().expect("decoded"))
            .expect("converts")
            .unwrap_or(0);
        i += 1;
        if rows.len() >= CHUNK_ROWS {
            batches.push(rows.finish(&schema.arrow).expect("finish"));
        }
    }
    batches.push(rows.finish(&schema.arrow).expect("finish"));
    let level = |l| Compression::ZSTD(ZstdLevel::try_new(l).expect("level"));
    let old = |l| {
        WriterProperties::builder()
            .set_compression(level(l))
            .set_max_row_group_row_count(Some(128 * 1024))
            .build()
    };
    let rules = ColumnRules::default();
    let tuned = |l, rules| writer_properties(&schema.arrow, l, 128 * 1024, rules);
    let all: Vec<(&str, WriterProperties)> = vec![
        ("before: Parquet defaults, zstd 3", old(3)),
        ("before: Parquet defaults, zstd 1", old(1)),
        ("tuned, zstd 3", tuned(3, rules)),
        ("tuned, zstd 1", tuned(1, rules)),
        ("tuned, zstd 6", tuned(6, rules)),
        (
            "tuned but dictionary for ids and times, zstd 3",
            tuned(
                3,
                ColumnRules {
                    plain_unique_columns: false,
                    ..rules
                },
            ),
        ),
        (
            "tuned and no dictionary for attribute values, zstd 3",
            tuned(
                3,
                ColumnRules {
                    plain_attribute_values: true,
                    ..rules
                },
            ),
        ),
        (
            "tuned but a dictionary for attribute keys, zstd 3",
            tuned(
                3,
                ColumnRules {
                    plain_attribute_keys: false,
                    ..rules
                },
            ),
        ),
        (
            "tuned but all statistics, zstd 3",
            tuned(
                3,
                ColumnRules {
                    pruning_statistics_only: false,
                    ..rules
                },
            ),
        ),
    ];
    // `BENCH_VARIANT=N` runs only the N-th (for callgrind).
    let only: Option<usize> = std::env::var("BENCH_VARIANT")
        .ok()
        .and_then(|v| v.parse().ok());
    let variants: Vec<(&str, WriterProperties)> = all
        .into_iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|o| o == *i))
        .map(|(_, v)| v)
        .collect();
    let show_columns = std::env::var("BENCH_COLUMNS").is_ok();
    for (name, properties) in variants {
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let file = encode_parquet(&schema, &batches, properties);
        report(
            &format!("parquet [{name}]"),
            converted,
            cpu_seconds() - cpu0,
            t0.elapsed().as_secs_f64(),
        );
        println!(
            "  {:.2} MB ({:.1} bytes/span)",
            file.len() as f64 / 1e6,
            file.len() as f64 / converted as f64
        );
        if show_columns {
            print_columns(file);
        }
    }
}

/// One Parquet file of `batches` (a function of its own so that callgrind can count it alone:
/// `--toggle-collect='*encode_parquet*'`).
#[inline(never)]
fn encode_parquet(
    schema: &TableSchema,
    batches: &[RecordBatch],
    properties: WriterProperties,
) -> Vec<u8> {
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema.arrow.clone(), Some(properties)).expect("writer");
    for batch in batches {
        writer.write(batch).expect("write");
    }
    writer.into_inner().expect("close")
}

/// Compressed bytes and encodings per column of a Parquet file.
fn print_columns(file: Vec<u8>) {
    use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(bytes::Bytes::from(file)).expect("reader");
    let metadata = reader.metadata();
    let mut sizes: Vec<(String, i64, String)> = Vec::new();
    for rg in metadata.row_groups() {
        for (i, col) in rg.columns().iter().enumerate() {
            let path = col.column_path().string();
            let encodings = format!("{:?}", col.encodings().collect::<Vec<_>>());
            match sizes.get_mut(i) {
                Some(entry) => entry.1 += col.compressed_size(),
                None => sizes.push((path, col.compressed_size(), encodings)),
            }
        }
    }
    for (path, size, encodings) in sizes {
        println!("    {path:<55} {size:>10} {encodings}");
    }
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
