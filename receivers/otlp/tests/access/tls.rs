//! TLS on the listeners: a client trusting the test CA is served on both protocols; plain text to a TLS port
//! and a client trusting another CA fail; with `client_ca_file` a client without a certificate is refused and
//! one with a certificate signed by that CA is served.

use otlake_core::Factory;
use otlake_core::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlake_core::test_util::sample_traces;
use prost::Message;
use serde_json::json;

use crate::support::*;
use crate::tls_client::{Identity, https_client, https_origin, server_tls};
use crate::{Answer, request};

const PROTOBUF: [(&str, &str); 1] = [("content-type", "application/x-protobuf")];

fn tls_config(mutual: bool) -> serde_json::Value {
    json!({"protocols": {
        "grpc": {"endpoint": "127.0.0.1:0", "tls": server_tls(mutual)},
        "http": {"endpoint": "127.0.0.1:0", "tls": server_tls(mutual)}
    }})
}

async fn post_https(
    addr: std::net::SocketAddr,
    ca: &str,
    identity: Identity,
) -> Result<Answer, String> {
    let client = https_client(ca, identity, false);
    let body = sample_traces(2, 3).encode_to_vec();
    request(
        &client,
        format!("{}v1/traces", https_origin(addr)),
        &PROTOBUF,
        full(body),
    )
    .await
}

async fn export_grpc_tls(
    addr: std::net::SocketAddr,
    ca: &str,
    identity: Identity,
) -> Result<(), tonic::Status> {
    let client = https_client::<tonic::body::Body>(ca, identity, true);
    let mut client = TraceServiceClient::with_origin(client, https_origin(addr));
    bounded("gRPC export", client.export(sample_traces(2, 3)))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn clients_trusting_the_ca_are_served_over_https_and_grpc_tls() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(tls_config(false), outputs).await;

    let answer = post_https(receiver.http_addr(), "ca.pem", Identity::None)
        .await
        .expect("HTTPS request served");
    assert_eq!(answer.status, http::StatusCode::OK, "{answer:?}");
    export_grpc_tls(receiver.grpc_addr(), "ca.pem", Identity::None)
        .await
        .expect("gRPC over TLS served");
    assert_eq!(seen.count(), 2, "both requests reached the pipeline");

    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn plain_text_and_untrusted_servers_fail_and_deliver_nothing() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(tls_config(false), outputs).await;

    // Plain-text HTTP/1.1 to the TLS port: the handshake fails, the connection closes, no answer.
    let body = sample_traces(2, 3).encode_to_vec();
    let plain = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<TestBody>();
    let result = request(
        &plain,
        format!("http://{}/v1/traces", receiver.http_addr()),
        &PROTOBUF,
        full(body),
    )
    .await;
    assert!(
        result.is_err(),
        "plain text was served on a TLS port: {result:?}"
    );

    // Plain-text gRPC (h2c) to the TLS port.
    let mut client =
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(receiver.grpc_addr()));
    let status = bounded("h2c export", client.export(sample_traces(2, 3)))
        .await
        .expect_err("h2c was served on a TLS port");
    assert_ne!(status.code(), tonic::Code::Ok);

    // A client that trusts another CA refuses the server's certificate.
    let result = post_https(receiver.http_addr(), "other-ca.pem", Identity::None).await;
    let err = result.expect_err("an untrusted certificate was accepted");
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "{err}"
    );

    assert_eq!(seen.count(), 0, "nothing reached the pipeline");
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_and_serves_those_with_one() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(tls_config(true), outputs).await;

    let refused = post_https(receiver.http_addr(), "ca.pem", Identity::None).await;
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );
    export_grpc_tls(receiver.grpc_addr(), "ca.pem", Identity::None)
        .await
        .expect_err("gRPC served without a client certificate");
    assert_eq!(
        seen.count(),
        0,
        "nothing of the refused clients was delivered"
    );

    let answer = post_https(receiver.http_addr(), "ca.pem", Identity::Client)
        .await
        .expect("served with a client certificate");
    assert_eq!(answer.status, http::StatusCode::OK, "{answer:?}");
    export_grpc_tls(receiver.grpc_addr(), "ca.pem", Identity::Client)
        .await
        .expect("gRPC served with a client certificate");
    assert_eq!(seen.count(), 2);

    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_missing_certificate_file_fails_the_start_naming_it() {
    let mut config = tls_config(false);
    config["protocols"]["http"]["tls"]["cert_file"] = json!("/nonexistent/otlake/server.pem");
    let (outputs, _seen) = delivering_pipelines();
    let parsed = otlake_receiver_otlp::OtlpReceiverFactory
        .parse(&config)
        .expect("valid shape");
    let receiver = otlake_receiver_otlp::OtlpReceiver::new(parsed);
    let cx = otlake_core::ReceiverContext {
        id: otlake_core::ComponentId::new("otlp"),
        outputs,
        shutdown: tokio_util::sync::CancellationToken::new(),
        stop: otlake_core::StopHandle::new(),
    };
    let err = bounded("run", otlake_core::Receiver::run(Box::new(receiver), cx))
        .await
        .expect_err("the start fails");
    // What the daemon prints: the error with its causes.
    let text = otlake_core::Chain(&err).to_string();
    assert!(
        text.contains("protocols.http.tls")
            && text.contains("cert_file")
            && text.contains("/nonexistent/otlake/server.pem"),
        "{text}"
    );
}

#[tokio::test]
async fn a_silent_client_does_not_hold_up_the_others() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(tls_config(false), outputs).await;

    // Connections that never start their handshake (the handshake runs beside the accept loop).
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(
            tokio::net::TcpStream::connect(receiver.http_addr())
                .await
                .expect("connect"),
        );
    }
    let answer = post_https(receiver.http_addr(), "ca.pem", Identity::None)
        .await
        .expect("served while silent connections wait");
    assert_eq!(answer.status, http::StatusCode::OK, "{answer:?}");
    assert_eq!(seen.count(), 1);

    drop(silent);
    receiver.stop().await.expect("clean stop");
}
