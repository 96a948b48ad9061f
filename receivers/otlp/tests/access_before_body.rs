//! A request without a valid bearer token is refused from its headers alone: its body is never read (the
//! answer comes while the client still holds the body back) and no share of the memory budget is reserved,
//! even for a large declared `Content-Length` (which an authenticated request would reserve before reading).
//!
//! A test binary of its own: it reads the process-wide memory budget, which no other test may move.

#[path = "receiver/support.rs"]
#[allow(dead_code)]
mod support;

use http::{Method, StatusCode};
use otlake_core::{MemoryBudget, Signal};
use serde_json::json;

use support::*;

const TOKEN: &str = "0tlake-test-t0ken";

#[tokio::test]
async fn an_unauthenticated_large_body_is_refused_unread_without_touching_the_budget() {
    let budget = MemoryBudget::global();
    let (outputs, mut rx) = held_pipeline(Signal::Traces, 8);
    let receiver = start(config(json!({"auth": {"bearer_token": TOKEN}})), outputs).await;
    let used_before = budget.used();
    assert_eq!(used_before, 0);

    // 20 MB declared, 1 KiB sent, the rest held back for ever: only an answer from the headers can come.
    let declared = (20_000_000).to_string();
    for authorization in [None, Some("Bearer wrong-token")] {
        let mut headers = vec![
            ("content-type", "application/x-protobuf"),
            ("content-length", declared.as_str()),
        ];
        if let Some(value) = authorization {
            headers.push(("authorization", value));
        }
        let reply = send(
            receiver.http_addr(),
            Method::POST,
            "/v1/traces",
            &headers,
            stalling(vec![0u8; 1024]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        assert_eq!(
            reply.header("connection"),
            Some("close"),
            "the unread body ends the connection"
        );
        assert_eq!(budget.used(), 0, "the budget moved for a refused request");
    }

    // gRPC: a 1 MiB message (not even valid protobuf: decoding it would answer INVALID_ARGUMENT).
    let reply = grpc_raw(
        receiver.grpc_addr(),
        TRACE_EXPORT,
        &vec![0xffu8; 1 << 20],
        None,
    )
    .await;
    assert_eq!(
        reply.grpc_status(),
        Some(tonic::Code::Unauthenticated as i32),
        "{reply:?}"
    );
    assert_eq!(budget.used(), 0);

    assert!(
        rx.try_recv().is_none(),
        "a refused request reached the pipeline"
    );
    receiver.stop().await.expect("clean stop");
}
