//! The `tls:` section → the one rustls `ClientConfig` both transports use (built by `otlake-tls-client`).
//!
//! Runs in `run` (it reads files and the system trust store).
//! - Trust: the CAs in `ca_file`/`ca_pem`, plus the system roots when none are given or when
//!   `include_system_ca_certs_pool` is set. `insecure_skip_verify` accepts any certificate (tests only).
//! - `server_name_override` changes the name the certificate is checked against.
//! - A client certificate (`cert_file` + `key_file`, or the `_pem` forms) turns on mutual TLS.

use otlake_core::config::tls::{PemSource, TlsClientConfig};
use otlake_tls_client::{ClientTls, MissingSystemRoots, PemInput, TlsVersion};
use rustls::ClientConfig;

use crate::error::Result;

/// A client config for `tls`. `needs_roots` is false when no destination uses TLS (plain `http://`), so the
/// system trust store is not read for nothing.
pub fn client_config(tls: &TlsClientConfig, needs_roots: bool) -> Result<ClientConfig> {
    let ca = match (&tls.ca_file, &tls.ca_pem) {
        (Some(path), _) => Some(PemInput {
            key: "ca_file",
            source: PemSource::File(path),
        }),
        (None, Some(text)) => Some(PemInput {
            key: "ca_pem",
            source: PemSource::Inline(text.as_bytes()),
        }),
        (None, None) => None,
    };
    let cert = match (&tls.cert_file, &tls.cert_pem) {
        (Some(path), _) => Some(PemInput {
            key: "cert_file",
            source: PemSource::File(path),
        }),
        (None, Some(text)) => Some(PemInput {
            key: "cert_pem",
            source: PemSource::Inline(text.as_bytes()),
        }),
        (None, None) => None,
    };
    let key = match (&tls.key_file, &tls.key_pem) {
        (Some(path), _) => Some(PemInput {
            key: "key_file",
            source: PemSource::File(path),
        }),
        (None, Some(text)) => Some(PemInput {
            key: "key_pem",
            source: PemSource::Inline(text.expose().as_bytes()),
        }),
        (None, None) => None,
    };
    Ok(otlake_tls_client::client_config(&ClientTls {
        ca,
        include_system_roots: tls.include_system_ca_certs_pool,
        needs_roots,
        missing_system_roots: MissingSystemRoots::Fail,
        no_roots_message: "no trust roots: the exporter was configured for plain-text destinations",
        ca_key: "tls.ca_file",
        server_name: tls
            .server_name_override
            .as_deref()
            .map(|name| ("tls.server_name_override", name)),
        insecure_skip_verify: tls.insecure_skip_verify,
        min_version: tls.min_version.as_deref().map(version),
        max_version: tls.max_version.as_deref().map(version),
        // Validation refuses a certificate without its key (and a key without its certificate).
        identity: cert.zip(key),
    })?)
}

/// `min_version`/`max_version` are "1.2" or "1.3"; validation refuses anything else.
fn version(name: &str) -> TlsVersion {
    if name == "1.3" {
        TlsVersion::V1_3
    } else {
        TlsVersion::V1_2
    }
}
