//! Throughput of the `size_limit` processor: items per second on one core.
//!
//! Cases: the fast path (requests below every limit: one `encoded_len` per request), logs that need the line
//! check (request above the line limit, no line over it), and requests holding one oversize record that is
//! dropped or truncated. Run: `cargo bench -p otlake-processor-size-limit`.

use std::time::{Duration, Instant};

use otlake_core::proto::common::v1::{AnyValue, any_value};
use otlake_core::test_util::{batch_with_ack, build_processor, kv, sample_logs, sample_traces};
use otlake_core::{Outcome, Payload};
use otlake_processor_size_limit::SizeLimitProcessorFactory;
use serde_json::json;

fn run(label: &str, config: serde_json::Value, template: Payload, requests: usize) {
    let signal = template.signal();
    let Ok(mut processor) = build_processor(&SizeLimitProcessorFactory, &config, signal) else {
        eprintln!("invalid bench config");
        return;
    };
    let per_request = template.item_count();
    let bytes = template.encoded_len();
    let (batches, receivers): (Vec<_>, Vec<_>) = (0..requests)
        .map(|_| batch_with_ack(template.clone()))
        .unzip();
    let mut out = Vec::new();
    let mut kept = 0usize;
    // `busy`: time inside the processor; resolving and freeing what it emits is the exporter's part.
    let mut busy = Duration::ZERO;
    for batch in batches {
        let t = Instant::now();
        processor.process(batch, &mut out);
        busy += t.elapsed();
        for b in out.drain(..) {
            kept += b.item_count();
            b.acks.resolve(Outcome::Delivered);
        }
    }
    drop(receivers);
    let items = (requests * per_request) as f64;
    println!(
        "{label}: {requests} requests of {per_request} items ({bytes} B), {kept} kept; processor {:.3} s = {:.2} M items/s",
        busy.as_secs_f64(),
        items / busy.as_secs_f64() / 1e6,
    );
}

fn main() {
    run(
        "traces, fast path (defaults)",
        json!(null),
        sample_traces(1, 100).into(),
        20_000,
    );
    run(
        "logs, fast path (defaults)",
        json!(null),
        sample_logs(1, 100).into(),
        20_000,
    );

    // Request above the line limit: every body is looked at, none is cut.
    let limits = json!({"max_record_bytes": 4096, "max_log_line_bytes": 1024});
    run(
        "logs, line check, nothing over",
        limits.clone(),
        sample_logs(1, 100).into(),
        20_000,
    );

    let mut logs = sample_logs(1, 100);
    logs.resource_logs[0].scope_logs[0].log_records[50].body = Some(AnyValue {
        value: Some(any_value::Value::StringValue("x".repeat(3_000))),
    });
    run(
        "logs, one line truncated per request",
        limits.clone(),
        logs.into(),
        20_000,
    );

    let mut traces = sample_traces(1, 100);
    traces.resource_spans[0].scope_spans[0].spans[50]
        .attributes
        .push(kv("gen_ai.prompt", &"p".repeat(8_000)));
    run(
        "traces, one span rejected per request",
        limits.clone(),
        traces.clone().into(),
        20_000,
    );
    run(
        "traces, one span truncated per request",
        json!({"max_record_bytes": 4096, "max_log_line_bytes": 1024, "record_action": "truncate"}),
        traces.into(),
        20_000,
    );
}
