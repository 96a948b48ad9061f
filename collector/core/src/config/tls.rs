//! TLS settings with the Collector's `configtls` keys, for listeners ([`TlsServerConfig`]) and senders
//! ([`TlsClientConfig`]), and the one place PEM text is read ([`certificates`], [`private_key`]).
//!
//! Lifecycle: `validate` checks the shape only (no I/O); the files are read when the component starts, so a
//! missing file or a bad PEM fails the start with an error that names the key and the file. Building the
//! rustls configuration from these is the plugin's job (it chooses the crypto provider). Key material never
//! appears in a message: the inline key is a [`Secret`], and a key's parse error quotes nothing of it.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::{ConfigError, Secret};

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
}

/// TLS versions the `min_version` / `max_version` keys accept.
pub const TLS_VERSIONS: [&str; 2] = ["1.2", "1.3"];

/// A sender's TLS settings (the Collector's `configtls` client keys).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientConfig {
    /// gRPC only: send in plain text (no TLS). `otlphttp` takes this from the URL scheme instead.
    pub insecure: bool,
    /// Use TLS but accept any server certificate. For tests only: it defeats server authentication.
    pub insecure_skip_verify: bool,
    /// PEM file of the CA(s) that sign the server's certificate; without it (and without `ca_pem`) the system
    /// roots are used.
    pub ca_file: Option<PathBuf>,
    /// The same as `ca_file`, inline.
    pub ca_pem: Option<String>,
    /// PEM file of the client certificate chain, for mutual TLS (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// The same as `cert_file`, inline.
    pub cert_pem: Option<String>,
    /// PEM file of the client private key, for mutual TLS (with `cert_file`).
    pub key_file: Option<PathBuf>,
    /// The same as `key_file`, inline; never printed.
    pub key_pem: Option<Secret>,
    /// Also trust the system roots when `ca_file`/`ca_pem` is given (default: only the given CAs).
    pub include_system_ca_certs_pool: bool,
    /// The server name to verify and send in SNI, instead of the endpoint's host.
    pub server_name_override: Option<String>,
    /// Lowest TLS version to offer: `"1.2"` (default) or `"1.3"`.
    pub min_version: Option<String>,
    /// Highest TLS version to offer: `"1.2"` or `"1.3"` (default).
    pub max_version: Option<String>,
}

impl TlsClientConfig {
    pub fn validate(&self, errors: &mut Vec<ConfigError>) {
        if self.ca_file.is_some() && self.ca_pem.is_some() {
            errors.push(ConfigError::new(
                "tls",
                "give `ca_file` or `ca_pem`, not both",
            ));
        }
        if self.cert_file.is_some() && self.cert_pem.is_some() {
            errors.push(ConfigError::new(
                "tls",
                "give `cert_file` or `cert_pem`, not both",
            ));
        }
        if self.key_file.is_some() && self.key_pem.is_some() {
            errors.push(ConfigError::new(
                "tls",
                "give `key_file` or `key_pem`, not both",
            ));
        }
        let has_cert = self.cert_file.is_some() || self.cert_pem.is_some();
        let has_key = self.key_file.is_some() || self.key_pem.is_some();
        if has_cert != has_key {
            errors.push(ConfigError::new(
                "tls",
                "a client certificate needs its key: give both `cert_file` and `key_file` (or neither)",
            ));
        }
        for (key, value) in [
            ("min_version", &self.min_version),
            ("max_version", &self.max_version),
        ] {
            if let Some(v) = value
                && !TLS_VERSIONS.contains(&v.as_str())
            {
                errors.push(ConfigError::new(
                    format!("tls.{key}"),
                    format!("unsupported TLS version `{v}`: expected \"1.2\" or \"1.3\""),
                ));
            }
        }
        if let (Some(min), Some(max)) = (&self.min_version, &self.max_version)
            && TLS_VERSIONS.contains(&min.as_str())
            && TLS_VERSIONS.contains(&max.as_str())
            && min > max
        {
            errors.push(ConfigError::new(
                "tls",
                format!("`min_version` {min} is above `max_version` {max}"),
            ));
        }
        if let Some(name) = &self.server_name_override
            && rustls_pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            errors.push(ConfigError::new(
                "tls.server_name_override",
                format!("`{name}` is not a DNS name or IP address"),
            ));
        }
    }
}

/// Where PEM text comes from: a file named by a key (`cert_file`), or the YAML itself (`cert_pem`).
#[derive(Clone, Copy, Debug)]
pub enum PemSource<'a> {
    File(&'a Path),
    Inline(&'a [u8]),
}

/// A certificate or key that could not be read or parsed. `key` is the YAML key that named it.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("`{key}`: cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{key}`: {origin}: {message}")]
    Invalid {
        key: &'static str,
        /// The file's path, or `inline PEM`.
        origin: String,
        message: String,
    },
}

fn read(key: &'static str, source: PemSource<'_>) -> Result<(Vec<u8>, String), PemError> {
    match source {
        PemSource::File(path) => std::fs::read(path)
            .map(|pem| (pem, path.display().to_string()))
            .map_err(|source| PemError::Read {
                key,
                path: path.to_owned(),
                source,
            }),
        PemSource::Inline(pem) => Ok((pem.to_vec(), "inline PEM".to_owned())),
    }
}

/// Every certificate in `source` (a chain, or a CA bundle); at least one.
pub fn certificates(
    key: &'static str,
    source: PemSource<'_>,
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let (pem, origin) = read(key, source)?;
    let invalid = |message: String| PemError::Invalid {
        key,
        origin: origin.clone(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no `BEGIN CERTIFICATE` block found".into()));
    }
    Ok(certs)
}

/// The private key in `source` (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(
    key: &'static str,
    source: PemSource<'_>,
) -> Result<PrivateKeyDer<'static>, PemError> {
    let (pem, origin) = read(key, source)?;
    // The error text of a key parse never includes key material.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| PemError::Invalid {
        key,
        origin,
        message: format!("not a PEM private key: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_without_its_key_is_reported() {
        let tls = TlsClientConfig {
            cert_file: Some("client.pem".into()),
            min_version: Some("1.1".into()),
            ..Default::default()
        };
        let mut errors = Vec::new();
        tls.validate(&mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn server_keys_parse_and_both_files_are_required() {
        let config: TlsServerConfig = crate::parse_config(&serde_json::json!({
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
        let err = crate::parse_config::<TlsServerConfig>(&serde_json::json!({"ca_file": "x"}))
            .expect_err("unknown");
        assert_eq!(err.path, "ca_file");
    }

    #[test]
    fn pem_errors_name_the_key_and_the_origin_but_no_content() {
        let err = certificates(
            "cert_file",
            PemSource::File(Path::new("/nonexistent/ca.pem")),
        )
        .expect_err("missing");
        let text = err.to_string();
        assert!(
            text.contains("`cert_file`") && text.contains("/nonexistent/ca.pem"),
            "{text}"
        );
        let err = certificates("ca_pem", PemSource::Inline(b"s3cr3t")).expect_err("no block");
        let text = err.to_string();
        assert!(
            text.contains("BEGIN CERTIFICATE") && !text.contains("s3cr3t"),
            "{text}"
        );
        let err = private_key(
            "key_pem",
            PemSource::Inline(b"-----BEGIN PRIVATE KEY-----\ns3cr3t"),
        )
        .expect_err("bad key");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn the_inline_key_is_not_printed() {
        let tls = TlsClientConfig {
            key_pem: Some(Secret::new("-----BEGIN PRIVATE KEY-----s3cr3t")),
            ..Default::default()
        };
        assert!(!format!("{tls:?}").contains("s3cr3t"));
    }
}
