//! OTLP/HTTP protobuf: delivery of every signal, the verdict → status mapping, metadata, routing errors.

use std::time::Duration;

use http::{Method, StatusCode};
use otlake_core::proto::collector::logs::v1::ExportLogsServiceResponse;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlake_core::rpc_status::RpcStatus;
use otlake_core::test_util::{sample_logs, sample_metrics, sample_traces};
use otlake_core::{Outcome, Payload};
use prost::Message;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn every_signal_is_delivered_as_sent() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let sent = [
        ("/v1/traces", Payload::from(sample_traces(2, 3))),
        ("/v1/logs", Payload::from(sample_logs(1, 4))),
        ("/v1/metrics", Payload::from(sample_metrics(2))),
    ];
    for (path, payload) in &sent {
        let reply = post_protobuf(receiver.http_addr(), path, payload.encode_to_vec()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {reply:?}");
        assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
        // A full success carries no partial_success: the encoded response is empty.
        assert!(reply.body.is_empty(), "{path}: {:?}", reply.body);
    }
    let expected: Vec<Payload> = sent.into_iter().map(|(_, p)| p).collect();
    assert_eq!(seen.payloads(), expected);
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn retryable_verdict_is_503_with_retry_after() {
    let (outputs, _) = answering_pipelines(|batch| {
        if batch.item_count() == 1 {
            Outcome::Retryable {
                reason: "delta commit failed".into(),
                retry_after: Some(Duration::from_millis(4200)),
            }
        } else {
            Outcome::retryable("exporter unreachable")
        }
    });
    let receiver = start(config(json!({})), outputs).await;

    let reply = post_protobuf(
        receiver.http_addr(),
        "/v1/traces",
        sample_traces(1, 1).encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("retry-after"), Some("5"), "4.2s rounds up");
    let status = RpcStatus::decode(reply.body.as_ref()).expect("a google.rpc.Status body");
    assert_eq!(status.code, tonic::Code::Unavailable as i32);
    assert_eq!(status.message, "delta commit failed");

    let reply = post_protobuf(
        receiver.http_addr(),
        "/v1/traces",
        sample_traces(1, 2).encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.header("retry-after"),
        Some("1"),
        "default when no delay is known"
    );
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn rejected_verdict_is_400_with_the_reason() {
    let (outputs, _) = answering_pipelines(|_| Outcome::rejected("schema mismatch in table spans"));
    let receiver = start(config(json!({})), outputs).await;
    let reply = post_protobuf(
        receiver.http_addr(),
        "/v1/traces",
        sample_traces(1, 1).encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let status = RpcStatus::decode(reply.body.as_ref()).expect("status body");
    assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
    assert_eq!(status.message, "schema mismatch in table spans");
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn refused_items_come_back_as_partial_success() {
    let (outputs, _) = answering_pipelines(|batch| {
        batch.acks.reject_items(2, "record larger than 1MiB");
        Outcome::Delivered
    });
    let receiver = start(config(json!({})), outputs).await;

    let reply = post_protobuf(
        receiver.http_addr(),
        "/v1/traces",
        sample_traces(1, 5).encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let response = ExportTraceServiceResponse::decode(reply.body.as_ref()).expect("response");
    let partial = response.partial_success.expect("partial_success set");
    assert_eq!(partial.rejected_spans, 2);
    assert_eq!(partial.error_message, "record larger than 1MiB");

    let reply = post_protobuf(
        receiver.http_addr(),
        "/v1/logs",
        sample_logs(1, 5).encode_to_vec(),
    )
    .await;
    let response = ExportLogsServiceResponse::decode(reply.body.as_ref()).expect("response");
    assert_eq!(
        response.partial_success.expect("set").rejected_log_records,
        2
    );

    let reply = post_json(
        receiver.http_addr(),
        "/v1/metrics",
        r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asInt":"1"},{"asInt":"2"},{"asInt":"3"}]}}]}]}]}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({"partialSuccess": {"rejectedDataPoints": "2", "errorMessage": "record larger than 1MiB"}})
    );
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn include_metadata_copies_headers_and_is_off_by_default() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(
        json!({"protocols": {"http": {"endpoint": "127.0.0.1:0", "include_metadata": true}}}),
        outputs,
    )
    .await;
    let reply = send(
        receiver.http_addr(),
        Method::POST,
        "/v1/traces",
        &[
            ("content-type", "application/x-protobuf"),
            ("x-tenant", "team-a"),
        ],
        full(sample_traces(1, 1).encode_to_vec()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    receiver.stop().await.expect("clean stop");
    let metas = seen.metas();
    assert_eq!(
        metas[0].metadata.get("x-tenant").map(String::as_str),
        Some("team-a")
    );

    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let reply = send(
        receiver.http_addr(),
        Method::POST,
        "/v1/traces",
        &[
            ("content-type", "application/x-protobuf"),
            ("x-tenant", "team-a"),
        ],
        full(sample_traces(1, 1).encode_to_vec()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    receiver.stop().await.expect("clean stop");
    assert!(seen.metas()[0].metadata.is_empty());
}

#[tokio::test]
async fn configured_paths_replace_the_default_ones() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(
        json!({"protocols": {"http": {"endpoint": "127.0.0.1:0", "traces_url_path": "/otlp/v1/traces"}}}),
        outputs,
    )
    .await;
    let body = sample_traces(1, 1).encode_to_vec();
    let reply = post_protobuf(receiver.http_addr(), "/v1/traces", body.clone()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = post_protobuf(receiver.http_addr(), "/otlp/v1/traces", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(seen.count(), 1);
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_signal_without_pipeline_is_404_not_a_silent_drop() {
    let (outputs, _rx) = held_pipeline(otlake_core::Signal::Traces, 4);
    let receiver = start(config(json!({})), outputs).await;
    let reply = post_protobuf(
        receiver.http_addr(),
        "/v1/logs",
        sample_logs(1, 1).encode_to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let status = RpcStatus::decode(reply.body.as_ref()).expect("status body");
    assert_eq!(status.code, tonic::Code::Unimplemented as i32);
    assert!(
        status.message.contains("no logs pipeline"),
        "{}",
        status.message
    );
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_full_pipeline_answers_503_instead_of_hanging() {
    // Capacity 1 and nobody reading: of two concurrent requests one takes the only slot and waits for its
    // verdict, the other finds no room within queue_wait and is told to retry; whichever it is, it answers first.
    let (outputs, mut rx) = held_pipeline(otlake_core::Signal::Traces, 1);
    let receiver = start(config(json!({"queue_wait": "100ms"})), outputs).await;
    let addr = receiver.http_addr();
    let mut a = tokio::spawn(post_protobuf(
        addr,
        "/v1/traces",
        sample_traces(1, 1).encode_to_vec(),
    ));
    let mut b = tokio::spawn(post_protobuf(
        addr,
        "/v1/traces",
        sample_traces(1, 1).encode_to_vec(),
    ));
    let (refused, queued) = bounded("one of two requests", async {
        tokio::select! {
            reply = &mut a => (reply.expect("task"), b),
            reply = &mut b => (reply.expect("task"), a),
        }
    })
    .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("retry-after"), Some("1"));
    let status = RpcStatus::decode(refused.body.as_ref()).expect("status body");
    assert!(status.message.contains("is full"), "{}", status.message);

    // The queued one is answered as soon as its batch is resolved.
    let batch = bounded("queued batch", rx.recv())
        .await
        .expect("the queued request's batch");
    batch.acks.resolve(Outcome::Delivered);
    let queued = bounded("queued request", queued).await.expect("task");
    assert_eq!(queued.status, StatusCode::OK);
    receiver.stop().await.expect("clean stop");
}
