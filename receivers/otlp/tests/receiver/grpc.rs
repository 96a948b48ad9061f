//! OTLP/gRPC with opentelemetry-proto's generated tonic clients: delivery, the verdict → status mapping,
//! RetryInfo, metadata, and a signal without pipeline.

use std::time::Duration;

use otlake_core::proto::collector::logs::v1::logs_service_client::LogsServiceClient;
use otlake_core::proto::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use otlake_core::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlake_core::rpc_status::RpcStatus;
use otlake_core::test_util::{sample_logs, sample_metrics, sample_traces};
use otlake_core::{Outcome, Payload, Signal};
use prost::Message;
use serde_json::json;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn every_signal_is_delivered_as_sent() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let origin = grpc_origin(receiver.grpc_addr());

    let traces = sample_traces(2, 2);
    let logs = sample_logs(2, 2);
    let metrics = sample_metrics(1);
    let reply = bounded(
        "traces export",
        TraceServiceClient::with_origin(grpc_channel(), origin.clone()).export(traces.clone()),
    )
    .await
    .expect("OK");
    assert_eq!(reply.into_inner().partial_success, None);
    bounded(
        "logs export",
        LogsServiceClient::with_origin(grpc_channel(), origin.clone()).export(logs.clone()),
    )
    .await
    .expect("OK");
    bounded(
        "metrics export",
        MetricsServiceClient::with_origin(grpc_channel(), origin).export(metrics.clone()),
    )
    .await
    .expect("OK");

    assert_eq!(
        seen.payloads(),
        vec![
            Payload::from(traces),
            Payload::from(logs),
            Payload::from(metrics)
        ]
    );
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn verdicts_map_to_grpc_codes() {
    // The span count picks the verdict.
    let (outputs, _) = answering_pipelines(|batch| match batch.item_count() {
        1 => Outcome::Retryable {
            reason: "delta commit failed".into(),
            retry_after: Some(Duration::from_secs(3)),
        },
        2 => Outcome::retryable("no delay known"),
        3 => Outcome::rejected("schema mismatch"),
        _ => {
            batch.acks.reject_items(1, "span too large");
            Outcome::Delivered
        }
    });
    let receiver = start(config(json!({})), outputs).await;
    let mut client =
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(receiver.grpc_addr()));

    let status = bounded("export", client.export(sample_traces(1, 1)))
        .await
        .expect_err("retryable");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "delta commit failed");
    let details = RpcStatus::decode(status.details()).expect("google.rpc.Status details");
    assert_eq!(details.retry_delay(), Some(Duration::from_secs(3)));

    let status = bounded("export", client.export(sample_traces(1, 2)))
        .await
        .expect_err("retryable");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.details().is_empty(), "no RetryInfo without a delay");

    let status = bounded("export", client.export(sample_traces(1, 3)))
        .await
        .expect_err("rejected");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "schema mismatch");

    let reply = bounded("export", client.export(sample_traces(1, 4)))
        .await
        .expect("partial success is OK");
    let partial = reply.into_inner().partial_success.expect("partial_success");
    assert_eq!(partial.rejected_spans, 1);
    assert_eq!(partial.error_message, "span too large");
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_signal_without_pipeline_is_unimplemented() {
    let (outputs, _rx) = held_pipeline(Signal::Traces, 4);
    let receiver = start(config(json!({})), outputs).await;
    let status = bounded(
        "logs export",
        LogsServiceClient::with_origin(grpc_channel(), grpc_origin(receiver.grpc_addr()))
            .export(sample_logs(1, 1)),
    )
    .await
    .expect_err("no logs pipeline");
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(status.message().contains("no logs pipeline"), "{status:?}");
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn include_metadata_copies_grpc_metadata() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(
        json!({"protocols": {"grpc": {"endpoint": "127.0.0.1:0", "include_metadata": true}}}),
        outputs,
    )
    .await;
    let mut request = tonic::Request::new(sample_traces(1, 1));
    request
        .metadata_mut()
        .insert("x-tenant", "team-b".parse().expect("ascii"));
    bounded(
        "export",
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(receiver.grpc_addr()))
            .export(request),
    )
    .await
    .expect("OK");
    receiver.stop().await.expect("clean stop");
    assert_eq!(
        seen.metas()[0].metadata.get("x-tenant").map(String::as_str),
        Some("team-b")
    );
}

#[tokio::test]
async fn a_full_pipeline_answers_unavailable_instead_of_hanging() {
    let (outputs, mut rx) = held_pipeline(Signal::Traces, 1);
    let receiver = start(config(json!({"queue_wait": "100ms"})), outputs).await;
    let origin = grpc_origin(receiver.grpc_addr());
    let call = |origin: http::Uri| async move {
        TraceServiceClient::with_origin(grpc_channel(), origin)
            .export(sample_traces(1, 1))
            .await
    };
    let mut a = tokio::spawn(call(origin.clone()));
    let mut b = tokio::spawn(call(origin));
    let (refused, queued) = bounded("one of two calls", async {
        tokio::select! {
            reply = &mut a => (reply.expect("task"), b),
            reply = &mut b => (reply.expect("task"), a),
        }
    })
    .await;
    let status = refused.expect_err("no room");
    assert_eq!(status.code(), Code::Unavailable);
    let details = RpcStatus::decode(status.details()).expect("details");
    assert_eq!(details.retry_delay(), Some(Duration::from_secs(1)));

    let batch = bounded("queued batch", rx.recv()).await.expect("batch");
    batch.acks.resolve(Outcome::Delivered);
    bounded("queued call", queued)
        .await
        .expect("task")
        .expect("OK once resolved");
    receiver.stop().await.expect("clean stop");
}
