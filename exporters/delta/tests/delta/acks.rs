//! Acknowledgements: `Delivered` only once the commit that adds the rows exists; a failure before it resolves
//! `Retryable` and leaves the table unchanged.

use std::collections::HashMap;

use otlake_core::Outcome;
use otlake_exporter_delta::inspect;
use serde_json::json;

use crate::data::genai_traces;
use crate::harness::{Running, assert_delivered, verdict};

async fn span_rows(location: &str) -> (u64, u64) {
    let info = inspect(location, "otel_spans", &HashMap::new())
        .await
        .expect("inspect");
    (info.version, info.rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_only_once_the_commit_holds_the_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8").to_owned();
    // Only the row limit can commit here: the latency is an hour.
    let config = json!({"location": location, "max_rows": 100, "max_latency": "1h"});
    let exporter = Running::start("delta", config);

    let first = exporter.send(genai_traces(0, 15, 3)).await; // 60 spans: below max_rows
    let waiter = tokio::spawn(verdict(first));
    // The second batch is queued behind the first, so once it is acknowledged the first was appended too.
    let second = exporter.send(genai_traces(100, 15, 3)).await; // 120 in total: commits
    assert_delivered(second).await;
    let at_ack = span_rows(&location).await;
    assert_eq!(
        at_ack.1, 120,
        "when the acknowledgement arrives, the rows are in the table"
    );
    let first = waiter.await.expect("waiter");
    assert_eq!(first.outcome, Outcome::Delivered);

    let third = exporter.send(genai_traces(200, 5, 3)).await; // 20 spans: below max_rows, waits for stop
    let waiter = tokio::spawn(verdict(third));
    assert_eq!(
        span_rows(&location).await.1,
        120,
        "nothing uncommitted is visible"
    );
    exporter.stop().await.expect("clean stop");
    assert_eq!(waiter.await.expect("waiter").outcome, Outcome::Delivered);
    assert_eq!(
        span_rows(&location).await.1,
        140,
        "stopping commits what is held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_retryable_and_leaves_the_table_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8").to_owned();
    let exporter = Running::start(
        "delta",
        json!({"location": location, "max_latency": "100ms"}),
    );
    assert_delivered(exporter.send(genai_traces(0, 5, 1)).await).await;
    let before = span_rows(&location).await;

    // Make the log unwritable in a way that holds even for root: the log directory becomes a file.
    let log = dir.path().join("otel_spans/_delta_log");
    let parked = dir.path().join("otel_spans/_delta_log.parked");
    std::fs::rename(&log, &parked).expect("park the log");
    std::fs::write(&log, b"not a directory").expect("block the log");
    let failed = verdict(exporter.send(genai_traces(10, 5, 1)).await).await;
    assert!(
        matches!(failed.outcome, Outcome::Retryable { .. }),
        "{failed:?}"
    );

    std::fs::remove_file(&log).expect("unblock");
    std::fs::rename(&parked, &log).expect("restore the log");
    assert_eq!(
        span_rows(&location).await,
        before,
        "no version and no row was added"
    );
    exporter.stop().await.expect("clean stop");
    assert_eq!(
        span_rows(&location).await,
        before,
        "the failed window is never committed later"
    );
}
