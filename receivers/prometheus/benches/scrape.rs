//! The scrape path's cost on a 2,000-series exposition (vLLM's families for 12 engines, about four vLLM
//! instances' worth), built from a real prometheus_client exposition (tests/data):
//! - parse throughput in MB/s on one core, for both formats;
//! - CPU per scrape: parse + map to OTLP + encode the export request, as the receiver does it each interval;
//! - the process's resident memory after scraping it repeatedly over HTTP from 127.0.0.1 through the receiver.
//!
//! `cargo bench -p otlake-receiver-prometheus --bench scrape` (release profile). Single-threaded figures: wall
//! time of a compute-bound loop on an otherwise idle core.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use otlake_core::batch::channel;
use otlake_core::{ComponentId, Fanout, MemoryBudget, Outcome, Receiver, ReceiverContext, Signal};
use otlake_receiver_prometheus::mapping::{self, ScrapeReport, SeriesStarts, TargetInfo};
use otlake_receiver_prometheus::parse::{Format, parse};
use otlake_receiver_prometheus::relabel::Relabeler;
use otlake_receiver_prometheus::{PrometheusReceiver, PrometheusReceiverConfig};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TEXT: &str = include_str!("../tests/data/vllm-text-0.0.4.prom");
const OPENMETRICS: &str = include_str!("../tests/data/vllm-openmetrics-1.0.prom");
const ENGINES: usize = 12;

/// The real exposition's engine-0 series, repeated for `ENGINES` engines, family by family.
fn exposition(source: &str, engines: usize) -> String {
    let mut out = String::new();
    let mut block: Vec<&str> = Vec::new();
    let flush = |block: &mut Vec<&str>, out: &mut String| {
        for line in block.iter().filter(|l| l.starts_with('#')) {
            out.push_str(line);
            out.push('\n');
        }
        for engine in 0..engines {
            for line in block
                .iter()
                .filter(|l| !l.starts_with('#') && l.contains("engine=\"0\""))
            {
                out.push_str(&line.replace("engine=\"0\"", &format!("engine=\"{engine}\"")));
                out.push('\n');
            }
        }
        block.clear();
    };
    for line in source.lines().filter(|l| *l != "# EOF") {
        if line.starts_with("# HELP") && !block.is_empty() {
            flush(&mut block, &mut out);
        }
        block.push(line);
    }
    flush(&mut block, &mut out);
    if source.ends_with("# EOF\n") {
        out.push_str("# EOF\n");
    }
    out
}

fn target() -> TargetInfo {
    TargetInfo {
        job: "vllm".into(),
        instance: "127.0.0.1:8000".into(),
        scheme: "http".into(),
        host: "127.0.0.1".into(),
        port: 8000,
        labels: vec![("cluster".into(), "bench".into())],
        honor_labels: false,
        honor_timestamps: true,
        sample_limit: 0,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let body = exposition(TEXT, ENGINES);
    let openmetrics = exposition(OPENMETRICS, ENGINES);
    let series = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    let mb = body.len() as f64 / 1e6;
    println!(
        "exposition: {series} series, {} bytes (text 0.0.4)",
        body.len()
    );

    // Parse throughput.
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(
            parse(std::hint::black_box(&body), Format::Prometheus).expect("parses"),
        );
    }
    let parse_secs = started.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "parse: {:.0} µs per exposition, {:.0} MB/s",
        parse_secs * 1e6,
        mb / parse_secs
    );
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(
            parse(std::hint::black_box(&openmetrics), Format::OpenMetrics).expect("parses"),
        );
    }
    let om_secs = started.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "parse OpenMetrics ({} bytes): {:.0} µs per exposition, {:.0} MB/s",
        openmetrics.len(),
        om_secs * 1e6,
        openmetrics.len() as f64 / 1e6 / om_secs
    );

    // Parse + map + encode, with start-time state carried across scrapes as the receiver does.
    let info = target();
    let relabel = Relabeler::default();
    let mut starts = SeriesStarts::default();
    let started = Instant::now();
    let mut encoded = 0;
    for round in 0..rounds {
        let families = parse(&body, Format::Prometheus).expect("parses");
        let (resources, counts) = mapping::map_scrape(
            &families,
            &info,
            &relabel,
            &mut starts,
            1_800_000_000_000_000_000 + round as u64,
        )
        .expect("maps");
        let report = ScrapeReport {
            up: true,
            duration_seconds: 0.01,
            counts,
        };
        let request = mapping::request(
            &info,
            resources,
            mapping::synthetic_metrics(&info, &report, 1),
        );
        encoded = request.encode_to_vec().len();
    }
    let scrape_secs = started.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "parse + map + encode: {:.2} ms CPU per scrape ({:.0} MB/s of exposition), {encoded} bytes of OTLP",
        scrape_secs * 1e3,
        mb / scrape_secs
    );

    // Through the receiver over HTTP: resident memory after many scrapes.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let before = rss_kib();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let served = body.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        served.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.write_all(served.as_bytes()).await;
                });
            }
        });
        let yaml = format!(
            "config:\n  scrape_configs:\n    - job_name: vllm\n      scrape_interval: 20ms\n      scrape_timeout: 20ms\n      static_configs: [{{ targets: [\"127.0.0.1:{port}\"] }}]\n"
        );
        let value: serde_json::Value = serde_saphyr::from_str(&yaml).expect("YAML");
        let config: PrometheusReceiverConfig = otlake_core::parse_config(&value).expect("config");
        let (tx, mut rx) = channel("bench", 4);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let receiver = PrometheusReceiver::new(ComponentId::new("prometheus"), config)
            .expect("builds")
            .with_budget(MemoryBudget::new(256 << 20));
        let cx = ReceiverContext {
            id: ComponentId::new("prometheus"),
            outputs: HashMap::from([(Signal::Metrics, Fanout::new(vec![tx], Duration::from_secs(1)))]),
            shutdown: shutdown.clone(),
            stop: otlake_core::StopHandle::new(),
        };
        let task = tokio::spawn(Box::new(receiver).run(cx));
        let scrapes = 200;
        let mut up = 0;
        for _ in 0..scrapes {
            let batch = rx.recv().await.expect("a scrape");
            // More points than the four synthetic ones: the exposition was scraped whole.
            up += usize::from(batch.item_count() > 4);
            batch.acks.resolve(Outcome::Delivered);
        }
        shutdown.cancel();
        let _ = task.await;
        println!(
            "receiver over HTTP: {scrapes} scrapes ({up} complete), RSS {} KiB before, {} KiB after",
            before,
            rss_kib()
        );
    });
}
