//! Throughput of the `batch` processor: items per second on one core.
//!
//! Feeds pre-built requests (core sample data; the printed line gives their item count and encoded size)
//! through the processor under a few configs and resolves what comes out, as an exporter would.
//! Run: `cargo bench -p otlake-processor-batch`.

use std::time::{Duration, Instant};

use otlake_core::test_util::{batch_with_ack, build_processor, sample_logs, sample_traces};
use otlake_core::{Outcome, Payload, Signal};
use otlake_processor_batch::BatchProcessorFactory;
use serde_json::json;

fn run(label: &str, config: serde_json::Value, signal: Signal, make: impl Fn() -> Payload) {
    const REQUESTS: usize = 20_000;
    let processor = build_processor(&BatchProcessorFactory, &config, signal);
    let Ok(mut processor) = processor else {
        eprintln!("invalid bench config");
        return;
    };
    let template = make();
    let per_request = template.item_count();
    let bytes = template.encoded_len();
    let (batches, receivers): (Vec<_>, Vec<_>) = (0..REQUESTS)
        .map(|_| batch_with_ack(template.clone()))
        .unzip();
    let mut out = Vec::new();
    let mut sent = 0usize;
    // `busy`: time inside the processor; `total` adds resolving and freeing what it emits (an exporter's part).
    let mut busy = Duration::ZERO;
    let start = Instant::now();
    for batch in batches {
        let t = Instant::now();
        processor.process(batch, &mut out);
        busy += t.elapsed();
        for b in out.drain(..) {
            sent += 1;
            b.acks.resolve(Outcome::Delivered);
        }
    }
    let t = Instant::now();
    processor.flush(&mut out);
    busy += t.elapsed();
    for b in out.drain(..) {
        sent += 1;
        b.acks.resolve(Outcome::Delivered);
    }
    let total = start.elapsed();
    drop(receivers);
    let items = (REQUESTS * per_request) as f64;
    println!(
        "{label}: {REQUESTS} requests of {per_request} items ({bytes} B) -> {sent} batches; processor {:.3} s = {:.2} M items/s ({:.0} k requests/s); with resolve + free {:.2} M items/s",
        busy.as_secs_f64(),
        items / busy.as_secs_f64() / 1e6,
        REQUESTS as f64 / busy.as_secs_f64() / 1e3,
        items / total.as_secs_f64() / 1e6,
    );
}

fn main() {
    run("traces, defaults", json!(null), Signal::Traces, || {
        sample_traces(1, 100).into()
    });
    run(
        "traces, no byte cap",
        json!({"send_batch_max_bytes": 0}),
        Signal::Traces,
        || sample_traces(1, 100).into(),
    );
    run(
        "traces, split at 1000",
        json!({"send_batch_size": 1000, "send_batch_max_size": 1000}),
        Signal::Traces,
        || sample_traces(1, 150).into(),
    );
    run("logs, defaults", json!(null), Signal::Logs, || {
        sample_logs(1, 100).into()
    });
}
