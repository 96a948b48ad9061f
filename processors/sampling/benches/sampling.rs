//! Throughput of the `sampling` processor: items per second on one core.
//!
//! Requests of 100 spans (10 traces of 10 spans, pseudo-random trace ids) or 100 log records with trace ids,
//! built before timing; the clock covers processing and resolving what comes out, as an exporter would.
//! Run: `cargo bench -p otlake-processor-sampling`.

use std::time::{Duration, Instant};

use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use otlake_core::test_util::{batch_with_ack, build_processor, kv};
use otlake_core::{Outcome, Payload, Signal};
use otlake_processor_sampling::SamplingProcessorFactory;
use serde_json::json;

const REQUESTS: usize = 20_000;

struct Ids(u64);

impl Ids {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn trace_id(&mut self) -> Vec<u8> {
        let mut id = self.next_u64().to_be_bytes().to_vec();
        id.extend(self.next_u64().to_be_bytes());
        id
    }
}

fn trace_request(ids: &mut Ids, n: usize) -> Payload {
    let mut spans = Vec::with_capacity(100);
    for t in 0..10usize {
        let trace_id = ids.trace_id();
        for s in 0..10u64 {
            spans.push(Span {
                trace_id: trace_id.clone(),
                span_id: (n as u64 * 100 + s).to_be_bytes().to_vec(),
                parent_span_id: if s == 0 { Vec::new() } else { vec![1; 8] },
                name: "chat gpt-x".into(),
                start_time_unix_nano: 1_700_000_000_000_000_000,
                end_time_unix_nano: 1_700_000_000_500_000_000,
                attributes: vec![
                    kv(
                        "gen_ai.operation.name",
                        if t.is_multiple_of(3) {
                            "chat"
                        } else {
                            "embeddings"
                        },
                    ),
                    kv("gen_ai.request.model", "test-model"),
                ],
                status: Some(Status {
                    code: if (n + t).is_multiple_of(50) { 2 } else { 0 },
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .into()
}

fn log_request(ids: &mut Ids) -> Payload {
    let records = (0..100u64)
        .map(|i| LogRecord {
            trace_id: if i.is_multiple_of(4) {
                Vec::new()
            } else {
                ids.trace_id()
            },
            time_unix_nano: 1_700_000_000_000_000_000 + i,
            severity_number: if i.is_multiple_of(20) { 17 } else { 9 },
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .into()
}

fn run(label: &str, config: serde_json::Value, signal: Signal, tick_every: usize) {
    let Ok(mut processor) = build_processor(&SamplingProcessorFactory, &config, signal) else {
        eprintln!("invalid bench config");
        return;
    };
    let mut ids = Ids(1);
    let payloads: Vec<Payload> = (0..REQUESTS)
        .map(|n| match signal {
            Signal::Logs => log_request(&mut ids),
            _ => trace_request(&mut ids, n),
        })
        .collect();
    let items: usize = payloads.iter().map(Payload::item_count).sum();
    let (batches, receivers): (Vec<_>, Vec<_>) = payloads.into_iter().map(batch_with_ack).unzip();
    let mut out = Vec::new();
    let mut kept = 0usize;
    // Tail mode: a synthetic clock that moves past each decision every `tick_every` requests.
    let mut clock = tokio::time::Instant::now();
    // `busy`: time inside the processor; resolving and freeing what it emits is the exporter's part.
    let mut busy = Duration::ZERO;
    for (n, batch) in batches.into_iter().enumerate() {
        let t = Instant::now();
        processor.process(batch, &mut out);
        if tick_every > 0 && n % tick_every == tick_every - 1 {
            clock += Duration::from_secs(60);
            processor.on_tick(clock, &mut out);
        }
        busy += t.elapsed();
        for b in out.drain(..) {
            kept += b.item_count();
            b.acks.resolve(Outcome::Delivered);
        }
    }
    let t = Instant::now();
    processor.flush(&mut out);
    busy += t.elapsed();
    for b in out.drain(..) {
        kept += b.item_count();
        b.acks.resolve(Outcome::Delivered);
    }
    drop(receivers);
    println!(
        "{label}: {items} items in {REQUESTS} requests, {kept} kept ({:.1}%); processor {:.3} s = {:.2} M items/s",
        100.0 * kept as f64 / items as f64,
        busy.as_secs_f64(),
        items as f64 / busy.as_secs_f64() / 1e6,
    );
}

fn main() {
    let rules = json!([
        {"status_code": "error"},
        {"min_root_duration": "2s"},
        {"attribute": {"key": "gen_ai.operation.name", "values": ["chat"]}, "sampling_percentage": 50},
    ]);
    run(
        "traces head 100% (th:0 written)",
        json!(null),
        Signal::Traces,
        0,
    );
    run(
        "traces head 10%",
        json!({"sampling_percentage": 10}),
        Signal::Traces,
        0,
    );
    run(
        "traces head 10% + 3 rules",
        json!({"sampling_percentage": 10, "rules": rules}),
        Signal::Traces,
        0,
    );
    run(
        "traces tail 10% + 3 rules",
        json!({"sampling_percentage": 10, "rules": rules, "tail": {"enabled": true}}),
        Signal::Traces,
        100,
    );
    run(
        "logs 10%",
        json!({"sampling_percentage": 10}),
        Signal::Logs,
        0,
    );
}
