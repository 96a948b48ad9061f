//! Bearer-token authentication on both protocols, with TLS (as it is meant to be deployed) and without: no
//! token or a wrong one is refused (HTTP 401 + `WWW-Authenticate: Bearer`, gRPC `UNAUTHENTICATED`) and nothing
//! reaches a pipeline; the right token is served, and its header is not copied into the batch metadata.

use std::net::SocketAddr;

use http::StatusCode;
use otlake_core::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlake_core::rpc_status::RpcStatus;
use otlake_core::test_util::sample_traces;
use prost::Message;
use serde_json::json;
use tonic::Code;

use crate::support::*;
use crate::tls_client::{Identity, https_client, https_origin, server_tls};

const TOKEN: &str = "0tlake-test-t0ken";

fn auth_config(tls: bool) -> serde_json::Value {
    let mut config = json!({
        "protocols": {
            "grpc": {"endpoint": "127.0.0.1:0", "include_metadata": true},
            "http": {"endpoint": "127.0.0.1:0", "include_metadata": true}
        },
        "auth": {"bearer_token": TOKEN}
    });
    if tls {
        config["protocols"]["grpc"]["tls"] = server_tls(false);
        config["protocols"]["http"]["tls"] = server_tls(false);
    }
    config
}

fn with_token(
    authorization: Option<&str>,
) -> tonic::Request<otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest> {
    let mut request = tonic::Request::new(sample_traces(2, 3));
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("metadata"));
    }
    request
}

async fn post_plain(addr: SocketAddr, authorization: Option<&str>, json_body: bool) -> Reply {
    let (content_type, body) = if json_body {
        ("application/json", br#"{"resourceSpans":[]}"#.to_vec())
    } else {
        (
            "application/x-protobuf",
            sample_traces(2, 3).encode_to_vec(),
        )
    };
    let mut headers = vec![("content-type", content_type)];
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    send(addr, http::Method::POST, "/v1/traces", &headers, full(body)).await
}

#[tokio::test]
async fn requests_without_the_right_token_are_refused_on_both_protocols_and_deliver_nothing() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(auth_config(false), outputs).await;
    let wrong = format!("Bearer {TOKEN}x");

    for authorization in [
        None,
        Some(wrong.as_str()),
        Some("Basic b3RsYWtl"),
        Some(TOKEN),
    ] {
        let reply = post_plain(receiver.http_addr(), authorization, false).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{authorization:?}: {reply:?}"
        );
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
        let status = RpcStatus::decode(reply.body.as_ref()).expect("google.rpc.Status");
        assert_eq!(status.code, Code::Unauthenticated as i32);
        assert!(!status.message.contains(TOKEN), "{status:?}");
    }
    // A JSON request is answered in JSON.
    let reply = post_plain(receiver.http_addr(), None, true).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["code"], json!(16), "{reply:?}");

    // Any path: an unauthenticated client learns nothing about the routes.
    let reply = send(
        receiver.http_addr(),
        http::Method::GET,
        "/nothing",
        &[],
        full(Vec::new()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let mut client =
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(receiver.grpc_addr()));
    for authorization in [None, Some(wrong.as_str())] {
        let status = bounded("export", client.export(with_token(authorization)))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(!status.message().contains(TOKEN), "{status:?}");
    }

    assert_eq!(seen.count(), 0, "a refused request reached the pipeline");
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn the_right_token_is_served_and_not_passed_on_as_metadata() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(auth_config(false), outputs).await;
    let right = format!("Bearer {TOKEN}");

    let reply = post_plain(receiver.http_addr(), Some(&right), false).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let mut client =
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(receiver.grpc_addr()));
    bounded("export", client.export(with_token(Some(&right))))
        .await
        .expect("served");

    assert_eq!(seen.count(), 2);
    for meta in seen.metas() {
        assert!(
            !meta.metadata.is_empty(),
            "include_metadata kept the other headers"
        );
        assert!(!meta.metadata.contains_key("authorization"), "{meta:?}");
        assert!(!format!("{meta:?}").contains(TOKEN));
    }
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn token_and_tls_together_over_https_and_grpc_tls() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(auth_config(true), outputs).await;
    let right = format!("Bearer {TOKEN}");
    let body = || full(sample_traces(2, 3).encode_to_vec());
    let url = format!("{}v1/traces", https_origin(receiver.http_addr()));
    let https = https_client::<TestBody>("ca.pem", Identity::None, false);

    let refused = crate::request(
        &https,
        url.clone(),
        &[("content-type", "application/x-protobuf")],
        body(),
    )
    .await
    .expect("answered");
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let served = crate::request(
        &https,
        url,
        &[
            ("content-type", "application/x-protobuf"),
            ("authorization", &right),
        ],
        body(),
    )
    .await
    .expect("answered");
    assert_eq!(served.status, StatusCode::OK, "{served:?}");

    let channel = https_client::<tonic::body::Body>("ca.pem", Identity::None, true);
    let mut client = TraceServiceClient::with_origin(channel, https_origin(receiver.grpc_addr()));
    let status = bounded("export", client.export(with_token(None)))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    bounded("export", client.export(with_token(Some(&right))))
        .await
        .expect("served");

    assert_eq!(
        seen.count(),
        2,
        "only the two authenticated requests arrived"
    );
    receiver.stop().await.expect("clean stop");
}
