//! Component configuration: the one way a plugin turns its YAML section into its typed config.
//!
//! The service hands each factory its section as a JSON-like tree (`serde_json::Value`); an empty section
//! (`debug:`) arrives as `null` and means "all defaults". Errors carry the path inside the component
//! (`protocols.grpc.endpoint`); the service prefixes the component's own path and a line number.

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

/// Byte sizes in configs: a plain number of bytes, or a string with a unit (`512KiB`, `30MB`, `1MiB`).
pub mod byte_size {
    use serde::{Deserialize, Deserializer, de::Error};

    pub fn parse(text: &str) -> Result<u64, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a byte size (e.g. 1048576, 512KiB, 30MB)"))?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => return Err(format!("unknown byte unit `{other}` in `{text}`")),
        };
        Ok((number * factor as f64) as u64)
    }

    /// `#[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]`
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(n),
            Raw::Text(t) => parse(&t).map_err(D::Error::custom),
        }
    }
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
        let s: Sample = parse_config(&serde_json::json!({"size": "2KiB"})).expect("ok");
        assert_eq!(s.size, 2048);
    }
}
