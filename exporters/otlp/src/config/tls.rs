//! The `tls:` section, with the Collector's `configtls` client keys.
//!
//! Whether TLS is used at all: for `otlphttp` the URL scheme decides (`https://`); for `otlp` (gRPC) TLS is on
//! unless `insecure: true` or the endpoint starts with `http://`, as in the Collector. The files are read when
//! the exporter starts (`run`), never during validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use otlake_core::ConfigError;

use super::headers::Secret;

/// TLS versions the `min_version` / `max_version` keys accept.
pub const TLS_VERSIONS: [&str; 2] = ["1.2", "1.3"];

/// Client TLS settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
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

impl TlsConfig {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_without_its_key_is_reported() {
        let tls = TlsConfig {
            cert_file: Some("client.pem".into()),
            min_version: Some("1.1".into()),
            ..Default::default()
        };
        let mut errors = Vec::new();
        tls.validate(&mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn the_inline_key_is_not_printed() {
        let tls = TlsConfig {
            key_pem: Some(Secret::new("-----BEGIN PRIVATE KEY-----s3cr3t")),
            ..Default::default()
        };
        assert!(!format!("{tls:?}").contains("s3cr3t"));
    }
}
