//! `protocols.<grpc|http>.tls`: the listener's certificate and, for mutual TLS, the CA that signs the clients'.
//! The keys are the Collector's `configtls` server keys (`cert_file`, `key_file`, `client_ca_file`).
//!
//! The settings and their PEM reader are the core's config kit (`otlake_core::config::tls`); this module turns
//! them into a rustls server. Lifecycle: `TlsServerConfig::validate` checks the shape only (no I/O); the files
//! are read by [`server_config`] when the receiver starts, before it binds anything, so a missing file or
//! bad PEM fails the start with an error that names the key and the file. The crypto provider is chosen
//! explicitly (ring), as in the OTLP exporter's `transport/tls.rs`: the binary also links aws-lc-rs through the
//! Delta stack, and rustls refuses to guess between two providers.
//!
//! Guarantees: with `client_ca_file`, a client must present a certificate signed by that CA or the handshake
//! fails; without it no client certificate is asked for. Both HTTP/2 (`h2`, which gRPC clients require) and
//! HTTP/1.1 are offered through ALPN. Key material never appears in an error message.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use otlake_core::config::tls::{self as pem, PemError, PemSource, TlsServerConfig};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

use crate::error::Error;

/// Reads the files of `tls` and builds the rustls server configuration (I/O: called at start-up only).
pub fn server_config(tls: &TlsServerConfig) -> Result<Arc<ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert_path = required("cert_file", &tls.cert_file)?;
    let key_path = required("key_file", &tls.key_file)?;
    let certs = pem::certificates("cert_file", PemSource::File(cert_path))?;
    let key = pem::private_key("key_file", PemSource::File(key_path))?;

    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let builder = match &tls.client_ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in pem::certificates("client_ca_file", PemSource::File(path))? {
                roots.add(cert).map_err(|e| PemError::Invalid {
                    key: "client_ca_file",
                    origin: path.display().to_string(),
                    message: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::Tls(format!("client_ca_file: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| PemError::Invalid {
            key: "key_file",
            origin: key_path.display().to_string(),
            message: format!("does not go with `cert_file`: {e}"),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn required<'a>(key: &'static str, path: &'a Option<PathBuf>) -> Result<&'a Path, Error> {
    path.as_deref().ok_or_else(|| {
        Error::Tls(format!(
            "`{key}` is required with `tls` (validation was skipped)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../exporters/otlp/tests/testdata/tls")
            .join(name)
    }

    fn tls(cert: &str, key: &str, ca: Option<&str>) -> TlsServerConfig {
        TlsServerConfig {
            cert_file: Some(testdata(cert)),
            key_file: Some(testdata(key)),
            client_ca_file: ca.map(testdata),
        }
    }

    #[test]
    fn the_test_certificates_make_a_server_config_with_and_without_client_auth() {
        let config = server_config(&tls("server.pem", "server.key", None)).expect("valid");
        assert_eq!(config.alpn_protocols[0], b"h2");
        server_config(&tls("server.pem", "server.key", Some("ca.pem")))
            .expect("valid with mutual TLS");
    }

    #[test]
    fn start_up_errors_name_the_key_and_the_file() {
        let err = server_config(&tls("missing.pem", "server.key", None)).expect_err("missing");
        let text = err.to_string();
        assert!(
            text.contains("`cert_file`") && text.contains("missing.pem"),
            "{text}"
        );

        // A key where the certificate should be: no certificate block.
        let err = server_config(&tls("server.key", "server.key", None)).expect_err("bad PEM");
        let text = err.to_string();
        assert!(
            text.contains("`cert_file`")
                && text.contains("server.key")
                && text.contains("BEGIN CERTIFICATE"),
            "{text}"
        );

        // A certificate where the key should be: no key, and no key material in the message.
        let err = server_config(&tls("server.pem", "server.pem", None)).expect_err("no key");
        let text = err.to_string();
        assert!(
            text.contains("`key_file`") && text.contains("server.pem"),
            "{text}"
        );

        // The client's key with the server's certificate.
        let err =
            server_config(&tls("server.pem", "client.key", None)).expect_err("mismatched key");
        assert!(err.to_string().contains("`key_file`"), "{err}");

        let err = server_config(&tls("server.pem", "server.key", Some("nothing-here.pem")))
            .expect_err("missing CA");
        let text = err.to_string();
        assert!(
            text.contains("`client_ca_file`") && text.contains("nothing-here.pem"),
            "{text}"
        );
    }
}
