//! The `size_limit` processor's configuration. Defaults are the limits of the managed OpenTelemetry tables
//! (30 MB per request, 10 MB per record, 1 MB per log line), so data that passes here also fits there.
//!
//! Parsed by the factory (`validate`, then `build`); pure, no I/O.

use otlake_core::ConfigError;
use otlake_core::config::byte_size;
use serde::Deserialize;

/// Default for `max_request_bytes`: 30 MB.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 30_000_000;
/// Default for `max_record_bytes`: 10 MB.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 10_000_000;
/// Default for `max_log_line_bytes`: 1 MB.
pub const DEFAULT_MAX_LOG_LINE_BYTES: u64 = 1_000_000;

/// What to do with an item over its limit.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Drop the item and report it to the client as rejected (OTLP `partial_success`).
    Reject,
    /// Shorten its largest strings until it fits and mark it with `otlake.truncated`.
    Truncate,
}

/// `processors.size_limit` in the YAML.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SizeLimitConfig {
    /// A request whose encoded (protobuf) size is above this is refused whole, as rejected.
    #[serde(deserialize_with = "byte_size::deserialize")]
    pub max_request_bytes: u64,
    /// Largest encoded size of one record: a span, a log record or a metric data point.
    #[serde(deserialize_with = "byte_size::deserialize")]
    pub max_record_bytes: u64,
    /// Largest log body string, in bytes.
    #[serde(deserialize_with = "byte_size::deserialize")]
    pub max_log_line_bytes: u64,
    /// For a record over `max_record_bytes`: `reject` (default) or `truncate`.
    pub record_action: Action,
    /// For a log body over `max_log_line_bytes`: `truncate` (default, at a UTF-8 boundary) or `reject`.
    pub log_line_action: Action,
}

impl Default for SizeLimitConfig {
    fn default() -> Self {
        SizeLimitConfig {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_log_line_bytes: DEFAULT_MAX_LOG_LINE_BYTES,
            record_action: Action::Reject,
            log_line_action: Action::Truncate,
        }
    }
}

impl SizeLimitConfig {
    /// Every problem with the configuration, each with its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        for (key, value) in [
            ("max_request_bytes", self.max_request_bytes),
            ("max_record_bytes", self.max_record_bytes),
            ("max_log_line_bytes", self.max_log_line_bytes),
        ] {
            if value == 0 {
                errors.push(ConfigError::new(key, "must be more than 0 bytes"));
            }
        }
        if self.max_record_bytes > self.max_request_bytes {
            errors.push(ConfigError::new(
                "max_record_bytes",
                format!(
                    "{} bytes is more than max_request_bytes ({} bytes): no request could carry such a record",
                    self.max_record_bytes, self.max_request_bytes
                ),
            ));
        }
        if self.max_log_line_bytes > self.max_record_bytes {
            errors.push(ConfigError::new(
                "max_log_line_bytes",
                format!(
                    "{} bytes is more than max_record_bytes ({} bytes): no record could carry such a line",
                    self.max_log_line_bytes, self.max_record_bytes
                ),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::parse_config;
    use serde_json::{Value, json};

    #[test]
    fn defaults_are_the_managed_tables_limits() {
        let config: SizeLimitConfig = parse_config(&Value::Null).expect("defaults");
        assert_eq!(config, SizeLimitConfig::default());
        assert_eq!(config.max_request_bytes, 30_000_000);
        assert_eq!(config.max_record_bytes, 10_000_000);
        assert_eq!(config.max_log_line_bytes, 1_000_000);
        assert_eq!(config.record_action, Action::Reject);
        assert_eq!(config.log_line_action, Action::Truncate);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn every_key_parses() {
        let config: SizeLimitConfig = parse_config(&json!({
            "max_request_bytes": "4MiB",
            "max_record_bytes": "1MiB",
            "max_log_line_bytes": 65536,
            "record_action": "truncate",
            "log_line_action": "reject",
        }))
        .expect("valid");
        assert_eq!(
            config,
            SizeLimitConfig {
                max_request_bytes: 4 << 20,
                max_record_bytes: 1 << 20,
                max_log_line_bytes: 65536,
                record_action: Action::Truncate,
                log_line_action: Action::Reject,
            }
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn unknown_keys_and_actions_are_rejected() {
        let err =
            parse_config::<SizeLimitConfig>(&json!({"max_record_size": 1})).expect_err("typo");
        assert!(err.message.contains("max_record_size"), "{err}");
        let err = parse_config::<SizeLimitConfig>(&json!({"record_action": "drop"}))
            .expect_err("unknown action");
        assert_eq!(err.path, "record_action");
    }

    #[test]
    fn validate_reports_every_problem() {
        let config = SizeLimitConfig {
            max_request_bytes: 0,
            max_record_bytes: 10,
            max_log_line_bytes: 20,
            ..Default::default()
        };
        let errors = config.validate().expect_err("invalid");
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "max_request_bytes",
                "max_record_bytes",
                "max_log_line_bytes"
            ]
        );
    }
}
