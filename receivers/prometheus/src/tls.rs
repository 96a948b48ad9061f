//! `tls_config` → the rustls client config of a job's HTTP client (built by `otlake-tls-client`).
//!
//! Runs in `run` (it reads files and the system trust store), once per job. Trust: `ca_file` when given, else the
//! system roots (read only for `https` jobs). `server_name` changes the name the certificate is checked against;
//! `insecure_skip_verify` accepts any certificate; a client certificate (`cert_file` + `key_file`) turns on
//! mutual TLS.

use otlake_core::config::tls::PemSource;
use otlake_tls_client::{ClientTls, MissingSystemRoots, PemInput, TlsVersion};
use rustls::ClientConfig;

use crate::config::TlsConfig;

/// The client config for `tls`; `https` says whether the job's targets use TLS (plain jobs read no roots).
pub fn client_config(tls: &TlsConfig, https: bool) -> Result<ClientConfig, String> {
    let identity = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some((
            PemInput {
                key: "cert_file",
                source: PemSource::File(cert),
            },
            PemInput {
                key: "key_file",
                source: PemSource::File(key),
            },
        )),
        _ => None,
    };
    otlake_tls_client::client_config(&ClientTls {
        ca: tls.ca_file.as_deref().map(|path| PemInput {
            key: "ca_file",
            source: PemSource::File(path),
        }),
        include_system_roots: false,
        needs_roots: https,
        // A target that is not TLS needs no roots; one that is fails its handshake with a message.
        missing_system_roots: MissingSystemRoots::TrustNothing,
        no_roots_message: "no trust roots: set tls_config.ca_file",
        ca_key: "tls_config.ca_file",
        server_name: tls
            .server_name
            .as_deref()
            .map(|name| ("tls_config.server_name", name)),
        insecure_skip_verify: tls.insecure_skip_verify,
        // Validation allows `TLS12` and `TLS13` only.
        min_version: match tls.min_version.as_deref() {
            Some("TLS13") => Some(TlsVersion::V1_3),
            _ => None,
        },
        max_version: None,
        identity,
    })
    .map_err(|e| format!("tls_config: {e}"))
}
