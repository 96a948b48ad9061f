//! `otlp` (gRPC) against a real tonic OTLP server.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use serde_json::json;
use tonic::{Code, Status};

use otlake_core::rpc_status::RpcStatus;
use otlake_core::test_util::{batch_with_ack, sample_traces};
use otlake_core::{Outcome, Payload, Signal};
use otlake_exporter_otlp::OtlpFactory;

use crate::common::{WAIT, fast_retry, free_port, span_ids, start, verdict};
use crate::grpc_server::{GrpcReply, GrpcServer};

#[tokio::test]
async fn delivers_intact_with_metadata_and_acks_only_after_the_server_answered() {
    let server = GrpcServer::start().await;
    server.recorder.close_gate();
    let exporter = start(
        &OtlpFactory,
        json!({"endpoint": server.endpoint(), "headers": {"authorization": "Bearer t0ken"}}),
        &[Signal::Traces],
    );
    let sent = sample_traces(3, 4);
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("running");
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
    let received = server.recorder.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].payload, Payload::from(sent));
    assert_eq!(received[0].headers["authorization"], "Bearer t0ken");
    exporter.stop().await;
}

#[tokio::test]
async fn invalid_argument_is_rejected_and_not_retried() {
    let server = GrpcServer::start().await;
    server.script(GrpcReply::Fail(Status::invalid_argument(
        "span without trace id",
    )));
    let exporter = start(
        &OtlpFactory,
        json!({"endpoint": server.endpoint(), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 2));
    exporter.input.send(batch).await.expect("running");
    match verdict(ack).await.outcome {
        Outcome::Rejected { reason } => {
            assert!(reason.contains("span without trace id"), "{reason}")
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        server.recorder.count(),
        1,
        "a permanent error is not retried"
    );
    exporter.stop().await;
}

fn throttled(code: Code, delay: Duration) -> Status {
    let details = RpcStatus::new(code as i32, "slow down")
        .with_retry_delay(delay)
        .encode_to_vec();
    Status::with_details(code, "slow down", Bytes::from(details))
}

#[tokio::test]
async fn retry_info_sets_the_wait_and_makes_resource_exhausted_retryable() {
    let server = GrpcServer::start().await;
    server.script(GrpcReply::Fail(throttled(
        Code::ResourceExhausted,
        Duration::from_secs(2),
    )));
    let exporter = start(
        &OtlpFactory,
        json!({"endpoint": server.endpoint(), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 2));
    exporter.input.send(batch).await.expect("running");
    assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    let received = server.recorder.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_millis(1800),
        "retried after {gap:?}, before the 2 s RetryInfo delay"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn resource_exhausted_without_retry_info_is_rejected() {
    let server = GrpcServer::start().await;
    server.script(GrpcReply::Fail(Status::resource_exhausted(
        "message too large",
    )));
    let exporter = start(
        &OtlpFactory,
        json!({"endpoint": server.endpoint(), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 2));
    exporter.input.send(batch).await.expect("running");
    assert!(matches!(
        verdict(ack).await.outcome,
        Outcome::Rejected { .. }
    ));
    exporter.stop().await;
}

#[tokio::test]
async fn a_destination_that_is_down_gets_the_data_once_it_is_up() {
    let addr = free_port().await;
    let exporter = start(
        &OtlpFactory,
        json!({"endpoint": format!("http://{addr}"), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let sent = sample_traces(1, 3);
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("running");
    let mut pending = Box::pin(ack.wait());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut pending)
            .await
            .is_err(),
        "nothing is delivered while the destination is down"
    );
    let server = GrpcServer::start_on(addr).await;
    let verdict = tokio::time::timeout(WAIT, pending).await.expect("resolves");
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(server.recorder.received()[0].payload, Payload::from(sent));
    exporter.stop().await;
}

#[tokio::test]
async fn a_partial_success_reaches_the_client_as_rejected_items() {
    let server = GrpcServer::start().await;
    server.script(GrpcReply::Partial(3, "3 spans too old"));
    let exporter = start(
        &OtlpFactory,
        json!({"endpoint": server.endpoint()}),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 5));
    exporter.input.send(batch).await.expect("running");
    let verdict = verdict(ack).await;
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 3);
    assert_eq!(
        verdict.rejection_message.as_deref(),
        Some("3 spans too old")
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_batch_over_the_servers_4mib_limit_is_split_and_every_span_arrives() {
    let server = GrpcServer::start().await;
    // The default max_request_bytes keeps each request under tonic's (and grpc-go's) 4 MiB default.
    let exporter = start(
        &OtlpFactory,
        json!({"endpoint": server.endpoint()}),
        &[Signal::Traces],
    );
    let mut sent = sample_traces(2, 6_000);
    for rs in &mut sent.resource_spans {
        for span in rs.scope_spans.iter_mut().flat_map(|ss| ss.spans.iter_mut()) {
            span.name = format!("{}-{}", span.name, "x".repeat(400));
        }
    }
    let total = Payload::from(sent.clone()).encoded_len();
    assert!(
        total > 4 << 20,
        "the sample ({total} bytes) must exceed 4 MiB"
    );
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("running");
    assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    let received = server.recorder.received();
    assert!(received.len() >= 2);
    assert!(received.iter().all(|r| r.decoded_len < 4 << 20));
    let mut ids: Vec<_> = received.iter().flat_map(|r| span_ids(&r.payload)).collect();
    ids.sort();
    let mut expected = span_ids(&Payload::from(sent));
    expected.sort();
    assert_eq!(ids, expected, "every span arrived exactly once");
    exporter.stop().await;
}

#[tokio::test]
async fn gzip_zstd_and_none_all_decode_on_the_server() {
    let server = GrpcServer::start().await;
    for compression in ["gzip", "zstd", "none"] {
        let exporter = start(
            &OtlpFactory,
            json!({"endpoint": server.endpoint(), "compression": compression}),
            &[Signal::Traces],
        );
        let sent = sample_traces(1, 50);
        let (batch, ack) = batch_with_ack(sent.clone());
        exporter.input.send(batch).await.expect("running");
        assert_eq!(
            verdict(ack).await.outcome,
            Outcome::Delivered,
            "{compression}"
        );
        exporter.stop().await;
        let last = server.recorder.received().pop().expect("received");
        assert_eq!(last.payload, Payload::from(sent), "{compression}");
        let encoding = last
            .headers
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let expected = (compression != "none").then(|| compression.to_owned());
        assert_eq!(encoding, expected, "grpc-encoding for {compression}");
    }
}

#[tokio::test]
async fn a_connection_broken_mid_request_is_retried() {
    let server = GrpcServer::start().await;
    server.script(GrpcReply::Crash);
    let exporter = start(
        &OtlpFactory,
        json!({"endpoint": server.endpoint(), "retry_on_failure": fast_retry()}),
        &[Signal::Traces],
    );
    let sent = sample_traces(1, 2);
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("running");
    assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    let received = server.recorder.received();
    assert_eq!(received.len(), 2, "the broken attempt, then the retry");
    assert_eq!(received[1].payload, Payload::from(sent));
    exporter.stop().await;
}
