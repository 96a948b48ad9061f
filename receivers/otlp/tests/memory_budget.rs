//! The memory budget, end to end in one receiver: with the process-wide budget spent by a request whose verdict
//! is pending, the next requests are answered retryable without being decoded (HTTP 503 + `Retry-After`, gRPC
//! `UNAVAILABLE` + `RetryInfo`), nothing of them reaches a pipeline, and once the pending request's verdict
//! comes its reservation is released and requests are accepted again.
//!
//! A test binary of its own: it sets the size of the process-wide budget, which no other test may see.

#[path = "receiver/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::Duration;

use http::{Method, StatusCode};
use otlake_core::memory::EXPANSION;
use otlake_core::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlake_core::rpc_status::RpcStatus;
use otlake_core::test_util::sample_traces;
use otlake_core::{MemoryBudget, Outcome, Signal};
use prost::Message;
use serde_json::json;
use tonic::Code;

use support::*;

#[tokio::test]
async fn a_spent_budget_answers_retryable_before_decoding_and_recovers_after_the_verdict() {
    let request = sample_traces(4, 50).encode_to_vec();
    let wire = request.len() as u64;
    let budget = MemoryBudget::global();
    // Room for one request in flight, not two.
    budget.set_limit(wire * EXPANSION * 3 / 2);

    let (outputs, mut rx) = held_pipeline(Signal::Traces, 8);
    let receiver = start(config(json!({})), outputs).await;
    let http = receiver.http_addr();

    // The first request takes the budget and waits for its verdict.
    let first = tokio::spawn(post_protobuf(http, "/v1/traces", request.clone()));
    let held = bounded("first batch", rx.recv()).await.expect("batch");
    assert_eq!(budget.used(), wire * EXPANSION, "held until the verdict");

    // HTTP with a Content-Length: refused before the body is read.
    let reply = post_protobuf(http, "/v1/traces", request.clone()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.header("retry-after"), Some("1"));
    let status = RpcStatus::decode(reply.body.as_ref()).expect("google.rpc.Status");
    assert!(status.message.contains("memory budget"), "{status:?}");

    // HTTP without a length (chunked): refused once read, before it is decoded.
    let reply = send(
        http,
        Method::POST,
        "/v1/traces",
        &[("content-type", "application/x-protobuf")],
        chunked(request.clone(), 4096),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.header("retry-after"), Some("1"));

    // gRPC: UNAVAILABLE with a RetryInfo.
    let mut client =
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(receiver.grpc_addr()));
    let status = bounded("export", client.export(sample_traces(4, 50)))
        .await
        .expect_err("budget spent");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let details = RpcStatus::decode(status.details()).expect("details");
    assert_eq!(details.retry_delay(), Some(Duration::from_secs(1)));

    // Nothing of the refused requests reached the pipeline.
    assert!(rx.try_recv().is_none(), "a refused request was sent on");

    // The verdict releases the reservation; the first request gets its answer.
    held.acks.resolve(Outcome::Delivered);
    let reply = bounded("first answer", first)
        .await
        .expect("first request task");
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(budget.used(), 0, "released with the verdict");

    // And requests are admitted again, on both protocols.
    let again = tokio::spawn(post_protobuf(http, "/v1/traces", request.clone()));
    bounded("second batch", rx.recv())
        .await
        .expect("batch")
        .acks
        .resolve(Outcome::Delivered);
    let reply = bounded("second answer", again).await.expect("task");
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let grpc = tokio::spawn(async move { client.export(sample_traces(4, 50)).await });
    bounded("gRPC batch", rx.recv())
        .await
        .expect("batch")
        .acks
        .resolve(Outcome::Delivered);
    bounded("gRPC answer", grpc)
        .await
        .expect("task")
        .expect("accepted after the budget was released");
    assert_eq!(budget.used(), 0);

    receiver.stop().await.expect("clean stop");
}
