//! Throughput and CPU of the exporters, `#[ignore]`d (a measurement, not a check). Run in release:
//! `cargo test --release -p otlake-exporter-otlp --test exporter -- --ignored --nocapture bench`
//!
//! The HTTP destination only reads the body and answers 200 (no decompression, no decoding), so the process's
//! CPU is mostly the exporter's: encoding, compression, the HTTP client. The gRPC destination is the tonic
//! test server, which decompresses and decodes: its figures include that server work.

use std::time::Instant;

use axum::body::Bytes;
use serde_json::json;

use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::test_util::{batch_with_ack, kv, sample_traces};
use otlake_core::{Outcome, Payload, Signal};
use otlake_exporter_otlp::{OtlpFactory, OtlpHttpFactory};

use crate::common::{start, verdict};
use crate::grpc_server::GrpcServer;

const BATCHES: usize = 2_000;
const SPANS_PER_BATCH: usize = 100;

/// 100 spans with a realistic attribute load (about 60 KB encoded), like the receiver benchmark's requests.
fn request() -> ExportTraceServiceRequest {
    let mut r = sample_traces(1, SPANS_PER_BATCH);
    for span in r.resource_spans[0].scope_spans[0].spans.iter_mut() {
        for i in 0..8 {
            span.attributes.push(kv(
                &format!("gen_ai.attribute.{i}"),
                &format!(
                    "value {i} of a span that carries a prompt fragment, a model name and the like"
                ),
            ));
        }
    }
    r
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; in clock ticks (100/s).
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

async fn drive(
    factory: &dyn otlake_core::DynExporterFactory,
    config: serde_json::Value,
    label: &str,
) {
    let template = request();
    let bytes = Payload::from(template.clone()).encoded_len();
    let exporter = start(factory, config, &[Signal::Traces]);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let feeder = {
        let input = exporter.input.clone();
        let template = template.clone();
        tokio::spawn(async move {
            let mut acks = Vec::with_capacity(BATCHES);
            for _ in 0..BATCHES {
                let (batch, ack) = batch_with_ack(template.clone());
                input.send(batch).await.expect("running");
                acks.push(ack);
            }
            acks
        })
    };
    for ack in feeder.await.expect("feeder") {
        assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    exporter.stop().await;
    let spans = (BATCHES * SPANS_PER_BATCH) as f64;
    println!(
        "{label}: {BATCHES} requests of {SPANS_PER_BATCH} spans ({bytes} B): {:.0} spans/s, {:.1} MB/s, \
         {:.2} CPU-s per million spans",
        spans / wall,
        (BATCHES * bytes) as f64 / wall / 1e6,
        cpu / spans * 1e6,
    );
}

/// What the feeding alone costs (a deep copy of the template per batch, the acknowledgements), to subtract.
fn feeding_baseline() {
    let template = request();
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    for _ in 0..BATCHES {
        let (batch, ack) = batch_with_ack(template.clone());
        batch.acks.resolve(Outcome::Delivered);
        drop((batch.payload, ack));
    }
    let spans = (BATCHES * SPANS_PER_BATCH) as f64;
    println!(
        "baseline (copy the template, resolve the ack; in every figure below): {:.2} CPU-s per million spans, {:.2} s",
        (cpu_seconds() - cpu0) / spans * 1e6,
        t0.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run in release with --ignored"]
async fn bench_http_and_grpc_throughput() {
    feeding_baseline();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .fallback(|_body: Bytes| async { "" })
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20));
    tokio::spawn(async move { axum::serve(listener, app).await });
    for compression in ["none", "gzip", "zstd"] {
        drive(
            &OtlpHttpFactory,
            json!({"endpoint": format!("http://{addr}"), "compression": compression}),
            &format!("otlphttp proto {compression}"),
        )
        .await;
    }
    drive(
        &OtlpHttpFactory,
        json!({"endpoint": format!("http://{addr}"), "compression": "none", "encoding": "json"}),
        "otlphttp json none",
    )
    .await;

    let grpc = GrpcServer::start().await;
    for compression in ["none", "zstd"] {
        drive(
            &OtlpFactory,
            json!({"endpoint": grpc.endpoint(), "compression": compression}),
            &format!("otlp grpc {compression} (server decodes)"),
        )
        .await;
    }
}
