//! TLS for both exporters against real TLS servers, with the test PKI in `tests/testdata/tls` (see its
//! `generate.sh`: the server certificate names `localhost` only).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde_json::{Value, json};

use otlake_core::test_util::build_exporter;
use otlake_core::test_util::{batch_with_ack, sample_traces};
use otlake_core::{ComponentId, ExporterContext, Outcome, Signal};
use otlake_exporter_otlp::{OtlpFactory, OtlpHttpFactory};

use crate::common::{WAIT, start, verdict};
use crate::grpc_server::GrpcServer;
use crate::http_server::HttpServer;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata/tls")
        .join(name)
}

fn path(name: &str) -> String {
    testdata(name).display().to_string()
}

fn server_tls(require_client_cert: bool, alpn: &[u8]) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(testdata("ca.pem")).expect("ca") {
            roots.add(cert.expect("cert")).expect("root");
        }
        builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("verifier"),
        )
    } else {
        builder.with_no_client_auth()
    };
    let certs = CertificateDer::pem_file_iter(testdata("server.pem"))
        .expect("server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(testdata("server.key")).expect("server.key");
    let mut config = builder.with_single_cert(certs, key).expect("server config");
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// Sends one batch with `tls` settings and returns the outcome (one attempt: retries off).
async fn send_once(server: &HttpServer, host: &str, tls: Value) -> Outcome {
    let exporter = start(
        &OtlpHttpFactory,
        json!({
            "endpoint": format!("https://{host}:{}", server.port()),
            "tls": tls,
            "retry_on_failure": {"enabled": false},
        }),
        &[Signal::Traces],
    );
    let (batch, ack) = batch_with_ack(sample_traces(1, 2));
    exporter.input.send(batch).await.expect("running");
    let outcome = verdict(ack).await.outcome;
    exporter.stop().await;
    outcome
}

#[tokio::test]
async fn https_with_the_ca_file_delivers() {
    let server = HttpServer::start_tls(server_tls(false, b"http/1.1")).await;
    let outcome = send_once(&server, "localhost", json!({"ca_file": path("ca.pem")})).await;
    assert_eq!(outcome, Outcome::Delivered);
    assert_eq!(server.recorder.count(), 1);
}

#[tokio::test]
async fn the_certificate_name_is_checked_and_server_name_override_changes_it() {
    let server = HttpServer::start_tls(server_tls(false, b"http/1.1")).await;
    // The certificate names `localhost`, not 127.0.0.1.
    let outcome = send_once(&server, "127.0.0.1", json!({"ca_file": path("ca.pem")})).await;
    assert!(matches!(outcome, Outcome::Retryable { .. }), "{outcome:?}");
    let outcome = send_once(
        &server,
        "127.0.0.1",
        json!({"ca_file": path("ca.pem"), "server_name_override": "localhost"}),
    )
    .await;
    assert_eq!(outcome, Outcome::Delivered);
    assert_eq!(server.recorder.count(), 1);
}

#[tokio::test]
async fn an_unknown_ca_fails_unless_insecure_skip_verify() {
    let server = HttpServer::start_tls(server_tls(false, b"http/1.1")).await;
    let outcome = send_once(
        &server,
        "localhost",
        json!({"ca_file": path("other-ca.pem")}),
    )
    .await;
    match &outcome {
        Outcome::Retryable { reason, .. } => assert!(reason.contains("certificate"), "{reason}"),
        other => panic!("expected a failed handshake, got {other:?}"),
    }
    assert_eq!(server.recorder.count(), 0);
    let outcome = send_once(&server, "localhost", json!({"insecure_skip_verify": true})).await;
    assert_eq!(outcome, Outcome::Delivered);
}

#[tokio::test]
async fn mutual_tls_sends_the_client_certificate() {
    let server = HttpServer::start_tls(server_tls(true, b"http/1.1")).await;
    let without = send_once(&server, "localhost", json!({"ca_file": path("ca.pem")})).await;
    assert!(matches!(without, Outcome::Retryable { .. }), "{without:?}");
    let with = send_once(
        &server,
        "localhost",
        json!({"ca_file": path("ca.pem"), "cert_file": path("client.pem"), "key_file": path("client.key")}),
    )
    .await;
    assert_eq!(with, Outcome::Delivered);
    assert_eq!(server.recorder.count(), 1);
}

#[tokio::test]
async fn grpc_over_tls_with_a_client_certificate() {
    let server = GrpcServer::start_tls(server_tls(true, b"h2")).await;
    let exporter = start(
        &OtlpFactory,
        json!({
            "endpoint": format!("localhost:{}", server.addr.port()),
            "tls": {"ca_file": path("ca.pem"), "cert_file": path("client.pem"), "key_file": path("client.key")},
        }),
        &[Signal::Traces],
    );
    let sent = sample_traces(1, 3);
    let (batch, ack) = batch_with_ack(sent.clone());
    exporter.input.send(batch).await.expect("running");
    assert_eq!(verdict(ack).await.outcome, Outcome::Delivered);
    assert_eq!(
        server.recorder.received()[0].payload,
        otlake_core::Payload::from(sent)
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_missing_ca_file_stops_the_exporter_at_start_with_its_path() {
    let id = ComponentId::new("otlp");
    let exporter = build_exporter(
        &OtlpFactory,
        &json!({"endpoint": "localhost:4317", "tls": {"ca_file": "/nonexistent/ca.pem"}}),
        &[Signal::Traces],
    )
    .expect("validation does no I/O");
    let (_tx, rx) = otlake_core::batch::channel("otlp-tls", 1);
    let err = tokio::time::timeout(WAIT, exporter.run(rx, ExporterContext { id }))
        .await
        .expect("returns")
        .expect_err("cannot start without its CA");
    // What the daemon prints: the error with its causes.
    let text = otlake_core::Chain(&err).to_string();
    assert!(text.contains("/nonexistent/ca.pem"), "{text}");
}
