//! Component configuration: the one way a plugin turns its YAML section into its typed config, and the kit of
//! value types every plugin shares (the Collector's `configopaque`, `configtls`, `confighttp` in one place).
//!
//! The service hands each factory its section as a JSON-like tree (`serde_json::Value`); an empty section
//! (`debug:`) arrives as `null` and means "all defaults". Errors carry the path inside the component
//! (`protocols.grpc.endpoint`); the service prefixes the component's own path and a line number.
//!
//! The kit: [`Secret`] (a value never printed nor serialised), [`Headers`] (header names to secret values),
//! [`tls`] (server and client TLS settings, and the one PEM reader), [`Compression`] (body compression
//! names), [`byte_size`] (`512KiB`, `30MB`), [`duration`] (`200ms`, `1m`) and [`endpoint`] (`host:port`).

pub mod byte_size;
mod compression;
pub mod duration;
pub mod endpoint;
mod headers;
mod secret;
pub mod tls;

pub use compression::Compression;
pub use headers::Headers;
pub use secret::Secret;

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;

/// A problem with a configuration, at `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending key, relative to whoever reports it; empty for the whole section.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The same error one level down (`prefix.path`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.path = if self.path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.path)
        };
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses a component's section into its config type (`deny_unknown_fields`, defaults for what is absent).
pub fn parse_config<T: DeserializeOwned + Default>(value: &Value) -> Result<T, ConfigError> {
    if value.is_null() {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(path, err.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        endpoint: String,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        inner: Inner,
        #[serde(deserialize_with = "byte_size::deserialize")]
        size: u64,
    }

    #[test]
    fn null_means_defaults() {
        assert_eq!(
            parse_config::<Sample>(&Value::Null).expect("ok"),
            Sample::default()
        );
    }

    #[test]
    fn errors_name_the_nested_path() {
        let err = parse_config::<Sample>(&serde_json::json!({"inner": {"endpont": "x"}}))
            .expect_err("unknown field");
        assert_eq!(err.path, "inner.endpont");
        assert!(err.message.contains("unknown field `endpont`"), "{err}");
        assert!(err.message.contains("endpoint"), "{err}");
    }

    #[test]
    fn byte_sizes_accept_units() {
        assert_eq!(byte_size::parse("30MB"), Ok(30_000_000));
        assert_eq!(byte_size::parse("1MiB"), Ok(1 << 20));
        assert_eq!(byte_size::parse("512"), Ok(512));
        assert!(byte_size::parse("12 parsecs").is_err());
        // As Collector configs write them.
        assert_eq!(byte_size::parse("1kb"), Ok(1_000));
        assert_eq!(byte_size::parse("1mib"), Ok(1 << 20));
        assert_eq!(byte_size::parse("2 gib"), Ok(2 << 30));
        let s: Sample = parse_config(&serde_json::json!({"size": "3kib"})).expect("lowercase unit");
        assert_eq!(s.size, 3 << 10);
        let s: Sample = parse_config(&serde_json::json!({"size": "2KiB"})).expect("ok");
        assert_eq!(s.size, 2048);
    }
}
