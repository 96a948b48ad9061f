//! `protocols.<grpc|http>.tls`: the listener's certificate and, for mutual TLS, the CA that signs the clients'.
//! The keys are the Collector's `configtls` server keys (`cert_file`, `key_file`, `client_ca_file`).
//!
//! Lifecycle: [`TlsServerConfig::validate`] checks the shape only (no I/O); the files are read by
//! [`TlsServerConfig::server_config`] when the receiver starts, before it binds anything, so a missing file or
//! bad PEM fails the start with an error that names the key and the file. The crypto provider is chosen
//! explicitly (ring), as in the OTLP exporter's `transport/tls.rs`: the binary also links aws-lc-rs through the
//! Delta stack, and rustls refuses to guess between two providers.
//!
//! Guarantees: with `client_ca_file`, a client must present a certificate signed by that CA or the handshake
//! fails; without it no client certificate is asked for. Both HTTP/2 (`h2`, which gRPC clients require) and
//! HTTP/1.1 are offered through ALPN. Key material never appears in an error message.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use otlake_core::ConfigError;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;

/// A listener's TLS settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerConfig {
    /// PEM file of the server's certificate chain (leaf first). Required.
    pub cert_file: Option<PathBuf>,
    /// PEM file of the server's private key (PKCS#8, PKCS#1 or SEC1). Required.
    pub key_file: Option<PathBuf>,
    /// PEM file of the CA(s) that sign client certificates. When set, every client must present a
    /// certificate signed by one of them (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
}

/// Why the TLS settings could not be turned into a working server configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`{key}`: cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{key}`: {}: {message}", path.display())]
    Pem {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{0}")]
    Rustls(String),
}

impl TlsServerConfig {
    /// Shape checks only: both files are named. `prefix` is the section's path (`protocols.grpc.tls`).
    pub fn validate(&self, prefix: &str, errors: &mut Vec<ConfigError>) {
        for (key, value) in [("cert_file", &self.cert_file), ("key_file", &self.key_file)] {
            match value {
                None => errors.push(ConfigError::new(
                    format!("{prefix}.{key}"),
                    "required with `tls`: the server's certificate and its key",
                )),
                Some(path) if path.as_os_str().is_empty() => {
                    errors.push(ConfigError::new(format!("{prefix}.{key}"), "is empty"))
                }
                Some(_) => {}
            }
        }
        if self
            .client_ca_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            errors.push(ConfigError::new(
                format!("{prefix}.client_ca_file"),
                "is empty (leave it out to accept clients without a certificate)",
            ));
        }
    }

    /// Reads the files and builds the rustls server configuration (I/O: called at start-up only).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert_path = required("cert_file", &self.cert_file)?;
        let key_path = required("key_file", &self.key_file)?;
        let certs = certificates("cert_file", cert_path)?;
        let key = private_key(key_path)?;

        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let builder = match &self.client_ca_file {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates("client_ca_file", path)? {
                    roots.add(cert).map_err(|e| TlsError::Pem {
                        key: "client_ca_file",
                        path: path.clone(),
                        message: format!("not a usable CA certificate: {e}"),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| TlsError::Rustls(format!("client_ca_file: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Pem {
                key: "key_file",
                path: key_path.to_owned(),
                message: format!("does not go with `cert_file`: {e}"),
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn required<'a>(key: &'static str, path: &'a Option<PathBuf>) -> Result<&'a Path, TlsError> {
    path.as_deref().ok_or_else(|| {
        TlsError::Rustls(format!(
            "`{key}` is required with `tls` (validation was skipped)"
        ))
    })
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let pem_error = |message: String| TlsError::Pem {
        key,
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(pem_error("no `BEGIN CERTIFICATE` block found".into()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("key_file", path)?;
    // The error text of a key parse never includes key material.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
        key: "key_file",
        path: path.to_owned(),
        message: format!("not a PEM private key: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::parse_config;
    use serde_json::json;

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
    fn keys_parse_and_both_files_are_required() {
        let config: TlsServerConfig = parse_config(&json!({
            "cert_file": "/etc/otlake/server.pem", "key_file": "/etc/otlake/server.key",
            "client_ca_file": "/etc/otlake/ca.pem"
        }))
        .expect("parses");
        let mut errors = Vec::new();
        config.validate("protocols.http.tls", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");

        let mut errors = Vec::new();
        TlsServerConfig::default().validate("protocols.http.tls", &mut errors);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "protocols.http.tls.cert_file",
                "protocols.http.tls.key_file"
            ]
        );
        let err = parse_config::<TlsServerConfig>(&json!({"ca_file": "x"})).expect_err("unknown");
        assert_eq!(err.path, "ca_file");
    }

    #[test]
    fn the_test_certificates_make_a_server_config_with_and_without_client_auth() {
        let config = tls("server.pem", "server.key", None)
            .server_config()
            .expect("valid");
        assert_eq!(config.alpn_protocols[0], b"h2");
        tls("server.pem", "server.key", Some("ca.pem"))
            .server_config()
            .expect("valid with mutual TLS");
    }

    #[test]
    fn start_up_errors_name_the_key_and_the_file() {
        let err = tls("missing.pem", "server.key", None)
            .server_config()
            .expect_err("missing");
        let text = err.to_string();
        assert!(
            text.contains("`cert_file`") && text.contains("missing.pem"),
            "{text}"
        );

        // A key where the certificate should be: no certificate block.
        let err = tls("server.key", "server.key", None)
            .server_config()
            .expect_err("bad PEM");
        let text = err.to_string();
        assert!(
            text.contains("`cert_file`")
                && text.contains("server.key")
                && text.contains("BEGIN CERTIFICATE"),
            "{text}"
        );

        // A certificate where the key should be: no key, and no key material in the message.
        let err = tls("server.pem", "server.pem", None)
            .server_config()
            .expect_err("no key");
        let text = err.to_string();
        assert!(
            text.contains("`key_file`") && text.contains("server.pem"),
            "{text}"
        );

        // The client's key with the server's certificate.
        let err = tls("server.pem", "client.key", None)
            .server_config()
            .expect_err("mismatched key");
        assert!(err.to_string().contains("`key_file`"), "{err}");

        let err = tls("server.pem", "server.key", Some("nothing-here.pem"))
            .server_config()
            .expect_err("missing CA");
        let text = err.to_string();
        assert!(
            text.contains("`client_ca_file`") && text.contains("nothing-here.pem"),
            "{text}"
        );
    }
}
