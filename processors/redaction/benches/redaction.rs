//! Throughput of the `redaction` processor: spans per second on one core, on harness-shaped requests (100 spans
//! × 15 attributes, wire form as a receiver hands them on).
//!
//! Cases: nothing to redact (the read-only pass decides; the payload passes untouched) and one span in ten
//! carrying an e-mail address and a card number (decoded and changed). The clock covers processing and
//! resolving what comes out, as an exporter would; building the requests is outside it.
//! Run: `cargo bench -p otlake-processor-redaction`.

use std::time::{Duration, Instant};

use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlake_core::test_util::{batch_with_ack, build_processor, kv};
use otlake_core::{Outcome, Payload, Signal};
use otlake_processor_redaction::RedactionProcessorFactory;
use prost::Message;
use serde_json::json;

/// Requests per case; `OTLAKE_BENCH_REQUESTS` sets fewer, e.g. to run the bench under callgrind.
fn requests() -> usize {
    std::env::var("OTLAKE_BENCH_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

fn request(n: usize, sensitive: bool) -> Payload {
    let spans = (0..100usize)
        .map(|s| {
            let mut attributes: Vec<_> = (0..13)
                .map(|a| {
                    kv(
                        &format!("app.attribute.{a}"),
                        &format!("value {n} {s} {a} lorem ipsum dolor"),
                    )
                })
                .collect();
            attributes.push(kv("gen_ai.request.model", "llama-3-70b"));
            let prompt = if sensitive && s % 10 == 0 {
                "mail ana@example.com, card 4111 1111 1111 1111"
            } else {
                "summarise the quarterly report in three bullet points"
            };
            attributes.push(kv("gen_ai.prompt", prompt));
            Span {
                trace_id: vec![7; 16],
                span_id: ((n * 100 + s) as u64).to_be_bytes().to_vec(),
                name: "chat llama-3-70b".into(),
                start_time_unix_nano: 1_700_000_000_000_000_000,
                end_time_unix_nano: 1_700_000_000_500_000_000,
                attributes,
                ..Default::default()
            }
        })
        .collect();
    let bytes = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    Payload::from_wire(Signal::Traces, bytes.into()).expect("valid")
}

fn run(name: &str, sensitive: bool) {
    let config = json!({
        "allow_all_keys": true,
        "builtin_patterns": ["email", "card_number", "api_key", "bearer_token"],
    });
    let mut processor =
        build_processor(&RedactionProcessorFactory, &config, Signal::Traces).expect("valid");
    let requests = requests();
    let payloads: Vec<Payload> = (0..requests).map(|n| request(n, sensitive)).collect();
    let mut out = Vec::new();
    let mut elapsed = Duration::ZERO;
    for payload in payloads {
        let (batch, _rx) = batch_with_ack(payload);
        let start = Instant::now();
        processor.process(batch, &mut out);
        for b in out.drain(..) {
            b.acks.resolve(Outcome::Delivered);
        }
        elapsed += start.elapsed();
    }
    let spans = (requests * 100) as f64;
    println!(
        "{name}: {:.2} M spans/s ({:.2} CPU-s per million spans)",
        spans / elapsed.as_secs_f64() / 1e6,
        elapsed.as_secs_f64() / spans * 1e6
    );
}

fn main() {
    // `cargo bench` passes `--bench`; another argument picks the cases whose name contains it.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    for (name, sensitive) in [
        ("traces, nothing to redact (wire in, untouched)", false),
        (
            "traces, 1 span in 10 with an e-mail and a card number",
            true,
        ),
    ] {
        if filter.as_deref().is_none_or(|f| name.contains(f)) {
            run(name, sensitive);
        }
    }
}
