//! The table location becomes unwritable mid-run and writable again: clients get `Retryable`, nothing
//! acknowledged is lost, nothing is written twice, and writing resumes by itself.

use otlake_core::Outcome;
use serde_json::json;

use crate::data::genai_traces;
use crate::harness::{Running, assert_delivered, check_spans_once, verdict};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_location_gives_retryable_and_writing_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8");
    let exporter = Running::start(
        "delta",
        json!({"location": location, "max_latency": "100ms"}),
    );

    // Healthy: 5 batches of 10 spans.
    for b in 0..5u64 {
        assert_delivered(exporter.send(genai_traces(b * 10, 5, 1)).await).await;
    }

    // Unwritable. chmod does not stop root, so the log directory is replaced by a file.
    let log = dir.path().join("otel_spans/_delta_log");
    let parked = dir.path().join("otel_spans/_delta_log.parked");
    std::fs::rename(&log, &parked).expect("park the log");
    std::fs::write(&log, b"unwritable").expect("block");
    let mut refused = Vec::new();
    for b in 5..10u64 {
        let payload = genai_traces(b * 10, 5, 1);
        let outcome = verdict(exporter.send(payload.clone()).await).await.outcome;
        assert!(
            matches!(outcome, Outcome::Retryable { .. }),
            "batch {b}: {outcome:?}"
        );
        refused.push(payload);
    }

    // Writable again: the clients retry what was refused, and new data flows.
    std::fs::remove_file(&log).expect("unblock");
    std::fs::rename(&parked, &log).expect("restore");
    for payload in refused {
        assert_delivered(exporter.send(payload).await).await;
    }
    for b in 10..15u64 {
        assert_delivered(exporter.send(genai_traces(b * 10, 5, 1)).await).await;
    }
    exporter.stop().await.expect("clean stop");

    // Every acknowledged span once: 15 batches of 10, none of the refused attempts doubled.
    check_spans_once(dir.path(), 150, &[]);
}
