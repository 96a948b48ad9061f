//! `otlphttp` against a real OTLP/HTTP server.

use std::time::Duration;

use serde_json::json;

use otlake_core::test_util::{batch_with_ack, sample_logs, sample_traces};
use otlake_core::{Outcome, Payload, Signal};
use otlake_exporter_otlp::OtlpHttpFactory;

use crate::common::{WAIT, fast_retry, free_port, span_ids, start, verdict};
use crate::http_server::{HttpReply, HttpServer};

#[tokio::test]
async fn delivers_intact_with_headers_and_acks_only_after_the_server_answered() {
    let server = HttpServer::start().await;
    server.recorder.close_gate();
    let exporter = start(
        &OtlpHttpFactory,
        json!({
            "traces_endpoint": format!("{}/v1/traces", server.url()),
            "headers": {"x-mlflow-experiment-id": "42", "Authorization": "Bearer t0ken"},
        }),
        &[Signal::Traces],
    );
    let sent = sample_traces(2, 5);
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("exporter running");

    let mut pending = Box::pin(ack.wait());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut pending)
            .await
            .is_err(),
        "the ack must wait for the server's answer"
    );
    server.recorder.open_gate();
    let verdict = tokio::time::timeout(WAIT, pending).await.expect("resolves");
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 0);

    let received = server.recorder.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, "/v1/traces");
    assert_eq!(request.payload, Payload::from(sent));
    assert_eq!(request.headers["x-mlflow-experiment-id"], "42");
    assert_eq!(request.headers["authorization"], "Bearer t0ken");
    assert_eq!(request.headers["content-type"], "application/x-protobuf");
    assert_eq!(
        request.headers["content-encoding"], "gzip",
        "gzip is the default"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_400_is_rejected_and_not_retried() {
    let server = HttpServer::start().await;
    server.script(HttpReply::status(400));
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": server.url(), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 3));
    exporter.input.send(batch).await.expect("running");
    let verdict = verdict(ack).await;
    match &verdict.outcome {
        Outcome::Rejected { reason } => assert!(reason.contains("400"), "{reason}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    // Retries would come within ~50 ms; give them ten times that.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.recorder.count(),
        1,
        "a permanent error is not retried"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_503_with_retry_after_waits_that_long_before_the_retry() {
    let server = HttpServer::start().await;
    server.script(HttpReply::status(503).header("retry-after", "2"));
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": server.url(), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 3));
    exporter.input.send(batch).await.expect("running");
    assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    let received = server.recorder.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    // Behaviour check with a generous margin: the backoff alone would retry after ~50 ms.
    assert!(
        gap >= Duration::from_millis(1800),
        "retried after {gap:?}, before the 2 s Retry-After"
    );
    assert_eq!(
        received[0].payload, received[1].payload,
        "the same request again"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_destination_that_is_down_gets_the_data_once_it_is_up() {
    let addr = free_port().await;
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": format!("http://{addr}"), "retry_on_failure": fast_retry()}),
        &[Signal::Logs],
    );
    let sent = sample_logs(1, 4);
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("running");
    let mut pending = Box::pin(ack.wait());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut pending)
            .await
            .is_err(),
        "nothing is delivered while the destination is down"
    );
    let server = HttpServer::start_on(addr).await;
    let verdict = tokio::time::timeout(WAIT, pending).await.expect("resolves");
    assert_eq!(verdict.outcome, Outcome::Delivered);
    let received = server.recorder.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/v1/logs");
    assert_eq!(received[0].payload, Payload::from(sent));
    exporter.stop().await;
}

#[tokio::test]
async fn a_partial_success_reaches_the_client_as_rejected_items() {
    let server = HttpServer::start().await;
    server.script(HttpReply::partial_traces(2, "2 spans had no trace id"));
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": server.url()}),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 5));
    exporter.input.send(batch).await.expect("running");
    let verdict = verdict(ack).await;
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 2);
    assert_eq!(
        verdict.rejection_message.as_deref(),
        Some("2 spans had no trace id")
    );
    exporter.stop().await;
}

#[tokio::test]
async fn giving_up_after_max_elapsed_time_tells_the_client_to_retry() {
    let server = HttpServer::start().await;
    for _ in 0..100 {
        server.script(HttpReply::status(502));
    }
    let exporter = start(
        &OtlpHttpFactory,
        json!({
            "endpoint": server.url(),
            "retry_on_failure": {"initial_interval": "50ms", "max_interval": "100ms", "max_elapsed_time": "500ms"},
        }),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 1));
    exporter.input.send(batch).await.expect("running");
    match verdict(ack).await.outcome {
        Outcome::Retryable { reason, .. } => assert!(reason.contains("502"), "{reason}"),
        other => panic!("expected Retryable, got {other:?}"),
    }
    assert!(
        server.recorder.count() >= 2,
        "it did retry before giving up"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_large_batch_is_split_under_max_request_bytes() {
    let server = HttpServer::start().await;
    let limit = 16 * 1024;
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": server.url(), "max_request_bytes": "16KiB", "compression": "none"}),
        &[Signal::Traces],
    );
    let sent = sample_traces(4, 300);
    let total = Payload::from(sent.clone()).encoded_len();
    assert!(total > 4 * limit, "the sample must need several requests");
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("running");
    assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);

    let received = server.recorder.received();
    assert!(received.len() >= 4, "{} requests", received.len());
    for r in &received {
        assert!(
            r.decoded_len <= limit,
            "a request of {} bytes",
            r.decoded_len
        );
    }
    let mut ids: Vec<_> = received.iter().flat_map(|r| span_ids(&r.payload)).collect();
    ids.sort();
    let mut expected = span_ids(&Payload::from(sent));
    expected.sort();
    assert_eq!(ids, expected, "every span arrived exactly once");
    exporter.stop().await;
}

#[tokio::test]
async fn gzip_zstd_and_json_bodies_decode_on_the_server() {
    let server = HttpServer::start().await;
    for (compression, encoding) in [
        ("gzip", "proto"),
        ("zstd", "proto"),
        ("none", "json"),
        ("zstd", "json"),
    ] {
        let exporter = start(
            &OtlpHttpFactory,
            json!({"endpoint": server.url(), "compression": compression, "encoding": encoding}),
            &[Signal::Traces, Signal::Logs],
        );
        let traces = sample_traces(1, 3);
        let logs = sample_logs(2, 2);
        let (t, t_ack) = batch_with_ack(traces.clone());
        let (l, l_ack) = batch_with_ack(logs.clone());
        exporter.input.send(t).await.expect("running");
        exporter.input.send(l).await.expect("running");
        assert_eq!(verdict(t_ack).await.outcome, Outcome::Delivered);
        assert_eq!(verdict(l_ack).await.outcome, Outcome::Delivered);
        exporter.stop().await;

        let received = server.recorder.received();
        let last_two = &received[received.len() - 2..];
        for r in last_two {
            let expected_encoding = (compression != "none").then_some(compression);
            assert_eq!(
                r.headers
                    .get("content-encoding")
                    .and_then(|v| v.to_str().ok()),
                expected_encoding
            );
            let expected_type = if encoding == "json" {
                "application/json"
            } else {
                "application/x-protobuf"
            };
            assert_eq!(r.headers["content-type"], expected_type);
        }
        let payloads: Vec<_> = last_two.iter().map(|r| r.payload.clone()).collect();
        assert!(
            payloads.contains(&Payload::from(traces)),
            "{compression}/{encoding} traces intact"
        );
        assert!(
            payloads.contains(&Payload::from(logs)),
            "{compression}/{encoding} logs intact"
        );
    }
}

#[tokio::test]
async fn a_full_queue_stops_reading_the_input_until_requests_complete() {
    let server = HttpServer::start().await;
    server.recorder.close_gate();
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": server.url(), "sending_queue": {"num_consumers": 1, "queue_size": 1}}),
        &[Signal::Traces],
    );
    // One request in flight (held at the gate) fills the queue; one more waits in the exporter's hand; the
    // channel (capacity 2) takes two more; then the pipeline is pushed back.
    let mut acks = Vec::new();
    for _ in 0..4 {
        let (batch, ack) = batch_with_ack(sample_traces(1, 2));
        exporter
            .input
            .send_within(batch, WAIT)
            .await
            .expect("room while the exporter takes batches");
        acks.push(ack);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (batch, refused_ack) = batch_with_ack(sample_traces(1, 2));
    assert!(
        exporter
            .input
            .send_within(batch, Duration::from_millis(300))
            .await
            .is_err(),
        "a full exporter must stop taking batches"
    );
    assert!(matches!(
        verdict(refused_ack).await.outcome,
        Outcome::Retryable { .. }
    ));
    assert_eq!(server.recorder.count(), 0, "held at the gate");
    server.recorder.open_gate();
    for ack in acks {
        assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    }
    assert_eq!(server.recorder.count(), 4);
    exporter.stop().await;
}

#[tokio::test]
async fn on_shutdown_what_is_queued_is_sent_before_run_returns() {
    let server = HttpServer::start().await;
    server.recorder.close_gate();
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": server.url()}),
        &[Signal::Logs],
    );
    let mut acks = Vec::new();
    for _ in 0..5 {
        let (batch, ack) = batch_with_ack(sample_logs(1, 3));
        exporter.input.send(batch).await.expect("running");
        acks.push(ack);
    }
    let opener = {
        let recorder = server.recorder.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            recorder.open_gate();
        })
    };
    exporter.stop().await; // closes the input, waits for run to return
    assert_eq!(
        server.recorder.count(),
        5,
        "everything queued was sent before run returned"
    );
    for ack in acks {
        assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    }
    opener.await.expect("opener");
}

#[tokio::test]
async fn a_307_is_followed_with_the_body_and_a_302_is_not_taken_for_delivery() {
    let server = HttpServer::start().await;
    server.script(HttpReply::status(307).header("location", "/moved/v1/traces"));
    server.script(HttpReply::default_ok());
    server.script(HttpReply::status(302).header("location", "/elsewhere/v1/traces"));
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": server.url(), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let sent = sample_traces(1, 2);
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("running");
    assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    let received = server.recorder.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].path, "/moved/v1/traces");
    assert_eq!(received[1].payload, Payload::from(sent));

    let (batch, ack) = batch_with_ack(sample_traces(1, 2));
    exporter.input.send(batch).await.expect("running");
    match verdict(ack).await.outcome {
        Outcome::Rejected { reason } => assert!(reason.contains("302"), "{reason}"),
        other => panic!("a 302 must not count as delivered: {other:?}"),
    }
    assert_eq!(server.recorder.count(), 3, "the redirect was not followed");
    exporter.stop().await;
}

/// The drain deadline is one retry budget for all that is queued, not one per request. No clock is read: the
/// bound is `stop`'s (WAIT, 20 s), which a drain retrying 100 queued requests one after another for 1 s each
/// (100 s) cannot meet, while the shared deadline ends it after about 1 s.
#[tokio::test]
async fn shutdown_with_a_dead_destination_gives_up_on_all_queued_requests_within_one_shared_budget()
{
    let addr = free_port().await;
    let exporter = start(
        &OtlpHttpFactory,
        json!({
            "endpoint": format!("http://{addr}"),
            "retry_on_failure": {"initial_interval": "50ms", "max_interval": "100ms", "max_elapsed_time": "1s"},
            "sending_queue": {"num_consumers": 1},
        }),
        &[Signal::Traces],
    );
    let mut acks = Vec::new();
    for _ in 0..100 {
        let (batch, ack) = batch_with_ack(sample_traces(1, 1));
        exporter.input.send(batch).await.expect("running");
        acks.push(ack);
    }
    exporter.stop().await;
    for ack in acks {
        assert!(matches!(
            verdict(ack).await.outcome,
            Outcome::Retryable { .. }
        ));
    }
}

#[tokio::test]
async fn a_retry_after_too_large_for_a_duration_gives_up_retryable_and_the_sender_keeps_sending() {
    let server = HttpServer::start().await;
    // A 1 s wait first so that the elapsed time is over a second when the absurd delay arrives: the sum of
    // the two used to overflow `Duration` and kill the only sender.
    server.script(HttpReply::status(503).header("retry-after", "1"));
    server.script(HttpReply::status(429).header("retry-after", "18446744073709551615"));
    let exporter = start(
        &OtlpHttpFactory,
        json!({
            "endpoint": server.url(),
            "retry_on_failure": fast_retry(),
            "sending_queue": {"num_consumers": 1},
        }),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 2));
    exporter.input.send(batch).await.expect("running");
    match verdict(ack).await.outcome {
        Outcome::Retryable {
            reason,
            retry_after,
        } => {
            assert!(reason.contains("429"), "{reason}");
            let hour = Duration::from_secs(3600);
            assert!(
                retry_after.is_some_and(|d| d <= hour),
                "the client is told a bounded delay, not {retry_after:?}"
            );
        }
        other => panic!("expected Retryable, got {other:?}"),
    }

    let sent = sample_traces(1, 3);
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("running");
    assert_eq!(
        verdict(ack).await.outcome,
        Outcome::Delivered,
        "the exporter still sends after that answer"
    );
    let received = server.recorder.received();
    assert_eq!(
        received.last().map(|r| &r.payload),
        Some(&Payload::from(sent))
    );
    exporter.stop().await;
}

/// A batch as a write-ahead log in front of the exporter hands it on (numbered with its log sequence).
fn logged(
    payload: impl Into<Payload>,
    sequence: u64,
) -> (otlake_core::Batch, otlake_core::AckReceiver) {
    let (mut batch, ack) = batch_with_ack(payload);
    batch.meta = std::sync::Arc::new(otlake_core::RequestMeta::default().with_source(
        otlake_core::SourcePosition {
            app_id: "otlake-wal-test".into(),
            sequence,
            first_undelivered: None,
        },
    ));
    (batch, ack)
}

#[tokio::test]
async fn behind_a_write_ahead_log_a_401_keeps_the_entry_for_a_resend_and_every_entry_arrives() {
    let server = HttpServer::start().await;
    // The destination's token was rotated: it refuses us until the operator fixes the header.
    server.script(HttpReply::status(401));
    server.script(HttpReply::status(403));
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": server.url(), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let mut outcomes = Vec::new();
    for sequence in [1, 2] {
        let (batch, ack) = logged(sample_traces(1, 3), sequence);
        exporter.input.send(batch).await.expect("running");
        outcomes.push(verdict(ack).await.outcome);
    }
    for (outcome, status) in outcomes.iter().zip(["401", "403"]) {
        assert!(
            matches!(outcome, Outcome::Retryable { reason, .. } if reason.contains(status)),
            "a refusal of ours, not of the data: kept in the log, {outcome:?}"
        );
    }
    // The log sends both again; the destination takes them now.
    for sequence in [1, 2] {
        let (batch, ack) = logged(sample_traces(1, 3), sequence);
        exporter.input.send(batch).await.expect("running");
        assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    }
    let received = server.recorder.received();
    assert_eq!(received.len(), 4);
    assert_eq!(
        received[2..]
            .iter()
            .map(|r| r.payload.item_count())
            .sum::<usize>(),
        6,
        "every entry delivered"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn behind_a_write_ahead_log_a_400_still_drops_the_entry() {
    let server = HttpServer::start().await;
    server.script(HttpReply::status(400));
    let exporter = start(
        &OtlpHttpFactory,
        json!({"endpoint": server.url(), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let (batch, ack) = logged(sample_traces(1, 3), 7);
    exporter.input.send(batch).await.expect("running");
    assert!(matches!(
        verdict(ack).await.outcome,
        Outcome::Rejected { .. }
    ));
    exporter.stop().await;
}
