//! The rustls `ClientConfig` of every outgoing TLS connection otlake makes: the OTLP exporter's destinations and
//! the Prometheus receiver's scrape targets. Each component maps its own YAML section (the Collector's `tls`,
//! Prometheus' `tls_config`) onto [`ClientTls`]; trust, server-name overrides, mutual TLS and the certificate
//! verifiers are written once, here.
//!
//! Kept out of `otlake-core` so that the core (and every plugin that makes no TLS connection) does not carry
//! rustls.

mod verifiers;

use std::sync::Arc;

use otlake_core::config::tls::{self as pem, PemError, PemSource};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

use verifiers::{AcceptAnyCertificate, OverrideServerName, TrustNothing};

/// A TLS protocol version a component allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// A PEM input and the YAML key it came from (for messages).
#[derive(Clone, Copy, Debug)]
pub struct PemInput<'a> {
    pub key: &'static str,
    pub source: PemSource<'a>,
}

/// What to do when the configuration names no CA and the system trust store is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingSystemRoots {
    /// Refuse to start: every destination of the component uses TLS.
    Fail,
    /// Trust nothing: a TLS connection fails at its handshake, with `no_roots_message`.
    TrustNothing,
}

/// The settings every client TLS section reduces to.
#[derive(Clone, Debug)]
pub struct ClientTls<'a> {
    /// The CA certificates that sign the servers' certificates; `None`: the system's.
    pub ca: Option<PemInput<'a>>,
    /// Also trust the system roots when `ca` is given (the Collector's `include_system_ca_certs_pool`).
    pub include_system_roots: bool,
    /// Whether any connection uses TLS. When none does, the system trust store is not read for nothing.
    pub needs_roots: bool,
    pub missing_system_roots: MissingSystemRoots,
    /// The YAML key that names a CA file (for the message that asks for one, e.g. `tls.ca_file`).
    pub ca_key: &'static str,
    /// The handshake error when no certificate is trusted (names the key to set).
    pub no_roots_message: &'static str,
    /// The name certificates are checked against instead of the host's, with its YAML key.
    pub server_name: Option<(&'static str, &'a str)>,
    /// Accept any certificate: encrypted, but no server is authenticated.
    pub insecure_skip_verify: bool,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
    /// A client certificate chain and its key: mutual TLS.
    pub identity: Option<(PemInput<'a>, PemInput<'a>)>,
}

/// Why a client TLS configuration cannot be built. Every message names the YAML key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("`{key}`: not a usable CA certificate: {source}")]
    UnusableCa {
        key: &'static str,
        source: rustls::Error,
    },
    #[error(
        "no system CA certificates found (is the ca-certificates package installed?); set `{ca_key}`"
    )]
    NoSystemRoots { ca_key: &'static str },
    #[error("`{key}`: {message}")]
    ServerName { key: &'static str, message: String },
    #[error("client certificate: {0}")]
    ClientCertificate(rustls::Error),
    #[error("TLS versions: {0}")]
    Versions(rustls::Error),
    #[error("certificate verifier: {0}")]
    Verifier(String),
}

/// Builds the client config for `tls`.
pub fn client_config(tls: &ClientTls<'_>) -> Result<ClientConfig, ClientTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::V1_2, &rustls::version::TLS12),
        (TlsVersion::V1_3, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| {
        tls.min_version.is_none_or(|min| *v >= min) && tls.max_version.is_none_or(|max| *v <= max)
    })
    .map(|(_, version)| version)
    .collect();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(ClientTlsError::Versions)?;

    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate::new(Arc::clone(&provider)))
    } else {
        let roots = trust_roots(tls)?;
        if roots.is_empty() {
            // Nothing to trust: any TLS connection (a redirect to https://) fails rather than going
            // unauthenticated.
            Arc::new(TrustNothing::new(
                Arc::clone(&provider),
                tls.no_roots_message,
            ))
        } else {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| ClientTlsError::Verifier(e.to_string()))?;
            match tls.server_name {
                Some((key, name)) => Arc::new(OverrideServerName::new(
                    ServerName::try_from(name.to_owned()).map_err(|e| {
                        ClientTlsError::ServerName {
                            key,
                            message: e.to_string(),
                        }
                    })?,
                    webpki,
                )),
                None => webpki,
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);

    match &tls.identity {
        Some((cert, key)) => {
            let certs = pem::certificates(cert.key, cert.source)?;
            let key = pem::private_key(key.key, key.source)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(ClientTlsError::ClientCertificate)
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

fn trust_roots(tls: &ClientTls<'_>) -> Result<RootCertStore, ClientTlsError> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = &tls.ca {
        for cert in pem::certificates(ca.key, ca.source)? {
            roots
                .add(cert)
                .map_err(|source| ClientTlsError::UnusableCa {
                    key: ca.key,
                    source,
                })?;
        }
    }
    if tls.needs_roots && (tls.ca.is_none() || tls.include_system_roots) {
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 && tls.ca.is_none() && tls.missing_system_roots == MissingSystemRoots::Fail {
            return Err(ClientTlsError::NoSystemRoots { ca_key: tls.ca_key });
        }
    }
    Ok(roots)
}
