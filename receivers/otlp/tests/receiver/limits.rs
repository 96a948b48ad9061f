//! Bad input, over HTTP and gRPC: each case gets its own error answer, and the next good request on the same
//! receiver succeeds (nothing a client sends can take the daemon down).

use http::{Method, StatusCode};
use otlake_core::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlake_core::rpc_status::RpcStatus;
use otlake_core::test_util::sample_traces;
use prost::Message;
use serde_json::json;
use std::net::SocketAddr;
use tonic::Code;
use tonic::codec::CompressionEncoding;

use crate::support::*;

async fn good_http_request_succeeds(addr: SocketAddr) {
    let reply = post_protobuf(addr, "/v1/traces", sample_traces(1, 2).encode_to_vec()).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the next good request: {reply:?}"
    );
}

async fn good_grpc_request_succeeds(addr: SocketAddr) {
    bounded(
        "good export",
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(addr))
            .export(sample_traces(1, 2)),
    )
    .await
    .expect("the next good request succeeds");
}

fn status_message(reply: &Reply) -> String {
    RpcStatus::decode(reply.body.as_ref())
        .expect("a google.rpc.Status body")
        .message
}

/// A trace request whose only span's name is `name`.
fn traces_named(name: String) -> Vec<u8> {
    let mut request = sample_traces(1, 1);
    request.resource_spans[0].scope_spans[0].spans[0].name = name;
    request.encode_to_vec()
}

/// A trace request with invalid UTF-8 in a span name.
fn traces_with_invalid_utf8() -> Vec<u8> {
    let mut bytes = traces_named("NAME".into());
    let at = bytes.windows(4).position(|w| w == b"NAME").expect("name");
    bytes[at] = 0xff;
    bytes
}

#[tokio::test]
async fn http_malformed_bodies_are_400_naming_the_problem() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let addr = receiver.http_addr();

    let reply = post_protobuf(addr, "/v1/traces", b"\x0a\xff\xff\xff\xff\x0f".to_vec()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = status_message(&reply);
    assert!(
        message.contains("invalid protobuf in ExportTraceServiceRequest"),
        "{message}"
    );
    good_http_request_succeeds(addr).await;

    let reply = post_protobuf(addr, "/v1/traces", traces_with_invalid_utf8()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(status_message(&reply).contains("UTF-8"), "{reply:?}");
    good_http_request_succeeds(addr).await;

    let reply = post_json(
        addr,
        "/v1/traces",
        &b"{\"resourceSpans\": [{\"scopeSpans\": [{\"spans\": [{\"name\": \"\xff\"}]}]}]}"[..],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    good_http_request_succeeds(addr).await;

    let reply = send(
        addr,
        Method::POST,
        "/v1/traces",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        full(b"this is not gzip".to_vec()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(status_message(&reply).contains("decompress"), "{reply:?}");
    good_http_request_succeeds(addr).await;

    receiver.stop().await.expect("clean stop");
    assert_eq!(
        seen.count(),
        4,
        "only the good requests reached the pipeline"
    );
}

#[tokio::test]
async fn http_wrong_type_path_and_method() {
    let (outputs, _) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let addr = receiver.http_addr();
    let body = || full(sample_traces(1, 1).encode_to_vec());

    let reply = send(
        addr,
        Method::POST,
        "/v1/traces",
        &[("content-type", "text/plain")],
        body(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        reply.json()["message"]
            .as_str()
            .expect("message")
            .contains("text/plain")
    );
    let reply = send(addr, Method::POST, "/v1/traces", &[], body()).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let reply = send(
        addr,
        Method::POST,
        "/v1/traces",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "br"),
        ],
        body(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(status_message(&reply).contains("`br`"));
    good_http_request_succeeds(addr).await;

    let reply = post_protobuf(addr, "/v1/trace", sample_traces(1, 1).encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(status_message(&reply).contains("/v1/trace"));
    good_http_request_succeeds(addr).await;

    let reply = send(addr, Method::GET, "/v1/traces", &[], full(Vec::new())).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("POST"));
    good_http_request_succeeds(addr).await;

    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn http_body_over_the_default_limit_is_413() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let addr = receiver.http_addr();
    // 31 MB against the default 30 MB: refused on its Content-Length, before decoding.
    let reply = post_protobuf(addr, "/v1/traces", traces_named("x".repeat(31_000_000))).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        status_message(&reply).contains("max_request_bytes (30000000 bytes)"),
        "{reply:?}"
    );
    good_http_request_succeeds(addr).await;
    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn http_content_length_over_the_limit_is_refused_unread() {
    let (outputs, _) = delivering_pipelines();
    let receiver = start(config(json!({"max_request_bytes": "1MB"})), outputs).await;
    let addr = receiver.http_addr();
    // The body announces 2 MB, sends 10 bytes and then stalls forever: only an answer that reads nothing returns.
    let reply = send(
        addr,
        Method::POST,
        "/v1/traces",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-length", "2000000"),
        ],
        stalling(vec![0u8; 10]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.header("connection"), Some("close"));
    good_http_request_succeeds(addr).await;
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn http_chunked_body_over_the_limit_is_413() {
    let (outputs, _) = delivering_pipelines();
    let receiver = start(config(json!({"max_request_bytes": "1MB"})), outputs).await;
    let addr = receiver.http_addr();
    let reply = send(
        addr,
        Method::POST,
        "/v1/traces",
        &[("content-type", "application/x-protobuf")],
        chunked(traces_named("y".repeat(1_500_000)), 64 << 10),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    good_http_request_succeeds(addr).await;
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn http_gzip_and_zstd_bodies_and_a_gzip_bomb() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({"max_request_bytes": "1MB"})), outputs).await;
    let addr = receiver.http_addr();
    let compressed = |encoding: &'static str, body: Vec<u8>| async move {
        let headers = [
            ("content-type", "application/x-protobuf"),
            ("content-encoding", encoding),
        ];
        send(addr, Method::POST, "/v1/traces", &headers, full(body)).await
    };

    let request = sample_traces(2, 3).encode_to_vec();
    let reply = compressed("gzip", gzip(&request)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = compressed(
        "zstd",
        zstd::encode_all(request.as_slice(), 3).expect("zstd"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    // 8 MB of one span name gzips to a few KB: small on the wire, refused on its decompressed size.
    let bomb = gzip(&traces_named("z".repeat(8_000_000)));
    assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
    let reply = compressed("gzip", bomb).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        status_message(&reply).contains("max_request_bytes"),
        "{reply:?}"
    );
    good_http_request_succeeds(addr).await;

    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 3);
}

#[tokio::test]
async fn grpc_malformed_messages_are_invalid_argument() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let addr = receiver.grpc_addr();

    let reply = grpc_raw(addr, TRACE_EXPORT, b"\x0a\xff\xff\xff\xff\x0f", None).await;
    assert_eq!(
        reply.grpc_status(),
        Some(Code::InvalidArgument as i32),
        "{reply:?}"
    );
    let message = reply.grpc_message().expect("grpc-message");
    assert!(
        message.contains("invalid protobuf in ExportTraceServiceRequest"),
        "{message}"
    );
    good_grpc_request_succeeds(addr).await;

    let unknown = "/opentelemetry.proto.collector.trace.v1.TraceService/Import";
    let reply = grpc_raw(addr, unknown, &sample_traces(1, 1).encode_to_vec(), None).await;
    assert_eq!(
        reply.grpc_status(),
        Some(Code::Unimplemented as i32),
        "{reply:?}"
    );
    good_grpc_request_succeeds(addr).await;

    let reply = grpc_raw(addr, TRACE_EXPORT, &traces_with_invalid_utf8(), None).await;
    assert_eq!(
        reply.grpc_status(),
        Some(Code::InvalidArgument as i32),
        "{reply:?}"
    );
    good_grpc_request_succeeds(addr).await;

    let reply = grpc_raw(addr, TRACE_EXPORT, b"not gzip at all", Some("gzip")).await;
    assert_eq!(
        reply.grpc_status(),
        Some(Code::InvalidArgument as i32),
        "{reply:?}"
    );
    good_grpc_request_succeeds(addr).await;

    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 4);
}

#[tokio::test]
async fn grpc_message_over_the_default_limit_is_resource_exhausted() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let addr = receiver.grpc_addr();
    let mut request = sample_traces(1, 1);
    request.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(31_000_000);
    let status = bounded(
        "oversized export",
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(addr)).export(request),
    )
    .await
    .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    good_grpc_request_succeeds(addr).await;
    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn grpc_gzip_requests_and_a_gzip_bomb() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({"max_request_bytes": "1MB"})), outputs).await;
    let addr = receiver.grpc_addr();

    let client = || TraceServiceClient::with_origin(grpc_channel(), grpc_origin(addr));
    bounded(
        "gzip export",
        client()
            .send_compressed(CompressionEncoding::Gzip)
            .export(sample_traces(2, 2)),
    )
    .await
    .expect("gzip accepted");
    bounded(
        "zstd export",
        client()
            .send_compressed(CompressionEncoding::Zstd)
            .export(sample_traces(2, 2)),
    )
    .await
    .expect("zstd accepted");

    let bomb = gzip(&traces_named("z".repeat(8_000_000)));
    let reply = grpc_raw(addr, TRACE_EXPORT, &bomb, Some("gzip")).await;
    assert_eq!(
        reply.grpc_status(),
        Some(Code::ResourceExhausted as i32),
        "{reply:?}"
    );
    good_grpc_request_succeeds(addr).await;

    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 3);
}

#[tokio::test]
async fn grpc_max_recv_msg_size_mib_replaces_max_request_bytes() {
    let (outputs, _) = delivering_pipelines();
    let receiver = start(
        json!({
            "protocols": {"grpc": {"endpoint": "127.0.0.1:0", "max_recv_msg_size_mib": 1}},
            "max_request_bytes": "100MB"
        }),
        outputs,
    )
    .await;
    let addr = receiver.grpc_addr();
    let mut request = sample_traces(1, 1);
    request.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(2 << 20);
    let status = bounded(
        "2 MiB export",
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(addr)).export(request),
    )
    .await
    .expect_err("over 1 MiB");
    assert_eq!(status.code(), Code::ResourceExhausted);
    good_grpc_request_succeeds(addr).await;
    receiver.stop().await.expect("clean stop");
}

// Multi-thread runtime, as in the daemon: large bodies take the `block_in_place` decode path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_large_requests_under_the_limit_are_accepted() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({"max_request_bytes": "8MB"})), outputs).await;
    let addr = receiver.http_addr();
    let body = traces_named("w".repeat(5_000_000));
    let reply = post_protobuf(addr, "/v1/traces", body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let headers = [
        ("content-type", "application/x-protobuf"),
        ("content-encoding", "gzip"),
    ];
    let reply = send(
        addr,
        Method::POST,
        "/v1/traces",
        &headers,
        full(gzip(&body)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    receiver.stop().await.expect("clean stop");
    let payloads = seen.payloads();
    assert_eq!(payloads.len(), 2);
    assert!(payloads.iter().all(|p| p.encode_to_vec() == body));
}

// Multi-thread runtime, as in the daemon: large messages take the `block_in_place` decode path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_large_messages_under_the_limit_are_accepted() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({"max_request_bytes": "8MB"})), outputs).await;
    let mut request = sample_traces(1, 1);
    request.resource_spans[0].scope_spans[0].spans[0].name = "w".repeat(5_000_000);
    let client =
        || TraceServiceClient::with_origin(grpc_channel(), grpc_origin(receiver.grpc_addr()));
    bounded("large export", client().export(request.clone()))
        .await
        .expect("OK");
    bounded(
        "large gzip export",
        client()
            .send_compressed(CompressionEncoding::Gzip)
            .export(request.clone()),
    )
    .await
    .expect("OK");
    receiver.stop().await.expect("clean stop");
    let expected = otlake_core::Payload::from(request);
    assert_eq!(seen.payloads(), vec![expected.clone(), expected]);
}
