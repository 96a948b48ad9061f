//! `scheme: https` with `tls_config`: a target behind a certificate from a test CA (tests/data/tls) is scraped
//! when the CA is trusted (with `server_name`, since the certificate names `localhost`, not 127.0.0.1) or
//! verification is off, and is `up` = 0 when the certificate cannot be verified.

// Each test binary uses part of the shared helpers.
#[allow(dead_code)]
mod support;

use std::path::PathBuf;
use std::sync::Arc;

use otlake_core::MemoryBudget;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use support::{
    config, gauge, gauge_value, metrics_of, next_request, resource_attribute, start, stop,
};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(name)
}

/// An HTTPS server answering every request with one gauge.
async fn https_target() -> u16 {
    let certs = CertificateDer::pem_file_iter(data("server.pem"))
        .expect("server.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(data("server.key")).expect("server.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(socket).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "secure_gauge 42\n";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

/// Runs the receiver with one https job (`tls_config` as given) until its first scrape; returns `up` and the
/// gauge, if scraped.
async fn first_scrape(port: u16, tls_config: &str) -> (f64, Option<f64>) {
    let yaml = format!(
        "config:\n  scrape_configs:\n    - job_name: secure\n      scheme: https\n      scrape_interval: 100ms\n      scrape_timeout: 100ms\n      tls_config: {tls_config}\n      static_configs: [{{ targets: [\"127.0.0.1:{port}\"] }}]\n"
    );
    let mut running = start(config(&yaml), MemoryBudget::new(64 << 20), 8);
    let request = next_request(&mut running.rx, "secure").await;
    stop(running).await;
    assert_eq!(
        resource_attribute(&request, "url.scheme").as_deref(),
        Some("https")
    );
    let metrics = metrics_of(request);
    (gauge(&metrics, "up"), gauge_value(&metrics, "secure_gauge"))
}

#[tokio::test]
async fn a_trusted_ca_with_server_name_scrapes_over_tls() {
    let port = https_target().await;
    let ca = data("ca.pem").display().to_string();
    let trusted = format!("{{ ca_file: \"{ca}\", server_name: localhost }}");
    assert_eq!(first_scrape(port, &trusted).await, (1.0, Some(42.0)));
}

#[tokio::test]
async fn an_unverifiable_certificate_is_up_0_unless_verification_is_off() {
    let port = https_target().await;
    let ca = data("ca.pem").display().to_string();
    // The CA is trusted but the certificate names localhost, not 127.0.0.1.
    let wrong_name = format!("{{ ca_file: \"{ca}\" }}");
    assert_eq!(first_scrape(port, &wrong_name).await, (0.0, None));
    // Only the system roots, which do not include the test CA.
    assert_eq!(first_scrape(port, "{}").await, (0.0, None));
    assert_eq!(
        first_scrape(port, "{ insecure_skip_verify: true }").await,
        (1.0, Some(42.0))
    );
}
