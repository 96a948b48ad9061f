//! Real TLS clients for the access tests: hyper over rustls (ring), trusting the test CA of
//! `exporters/otlp/tests/testdata/tls` (see its `generate.sh`), optionally presenting the client certificate.
//! The server certificate names `localhost` only, so the clients connect to 127.0.0.1 and verify `localhost`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../exporters/otlp/tests/testdata/tls")
        .join(name)
}

/// `tls:` for the receiver: the test server certificate, and `client_ca_file` when `mutual`.
pub fn server_tls(mutual: bool) -> serde_json::Value {
    let path = |name: &str| testdata(name).display().to_string();
    let mut tls =
        serde_json::json!({"cert_file": path("server.pem"), "key_file": path("server.key")});
    if mutual {
        tls["client_ca_file"] = path("ca.pem").into();
    }
    tls
}

fn certificates(name: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(testdata(name))
        .expect("read PEM")
        .collect::<Result<_, _>>()
        .expect("certificates")
}

/// Which client certificate to present.
#[derive(Clone, Copy)]
pub enum Identity {
    None,
    Client,
}

fn client_config(ca: &str, identity: Identity) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca) {
        roots.add(cert).expect("CA");
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
    match identity {
        Identity::None => builder.with_no_client_auth(),
        Identity::Client => {
            let key = PrivateKeyDer::from_pem_file(testdata("client.key")).expect("client key");
            builder
                .with_client_auth_cert(certificates("client.pem"), key)
                .expect("client identity")
        }
    }
}

/// An HTTPS client (HTTP/1.1, or HTTP/2 only for gRPC) trusting `ca`.
pub fn https_client<B>(
    ca: &str,
    identity: Identity,
    http2: bool,
) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(client_config(ca, identity))
        .https_only()
        .with_server_name_resolver(FixedServerNameResolver::new(
            ServerName::try_from("localhost").expect("name"),
        ));
    let connector = if http2 {
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build(connector)
}

pub fn https_origin(addr: SocketAddr) -> http::Uri {
    format!("https://{addr}").parse().expect("uri")
}
