//! The `batch` processor's configuration: the OpenTelemetry Collector's keys, plus `send_batch_max_bytes`.
//!
//! Parsed once by the factory (`validate`, then `build`); pure, no I/O.

use std::time::Duration;

use otlake_core::ConfigError;
use otlake_core::config::byte_size;
use serde::Deserialize;

/// Default for `timeout` (the Collector's).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// Default for `send_batch_size` (the Collector's).
pub const DEFAULT_SEND_BATCH_SIZE: usize = 8192;
/// Default for `send_batch_max_size`: no item cap beyond what one trigger collects (the Collector's).
pub const DEFAULT_SEND_BATCH_MAX_SIZE: usize = 0;
/// Default for `send_batch_max_bytes`: 8 MiB, so a pending batch of a sidecar stays small and a default
/// `send_batch_size` of typical spans (~0.7 KB each, ~5.5 MB) is usually reached first.
pub const DEFAULT_SEND_BATCH_MAX_BYTES: u64 = 8 << 20;
/// Default for `metadata_cardinality_limit` (the Collector's).
pub const DEFAULT_METADATA_CARDINALITY_LIMIT: usize = 1000;
/// Default for `send_when_idle`: off, so batches fill as in the Collector.
pub const DEFAULT_SEND_WHEN_IDLE: bool = false;

/// `processors.batch` in the YAML.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Longest time the first item of a batch waits before the batch is sent, whatever its size ("200ms").
    /// `0s` sends every request at once (still split by the caps).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Send as soon as this many items (spans, log records, metric data points) are pending.
    pub send_batch_size: usize,
    /// Upper bound on the items of one sent batch; larger batches are split. `0`: no bound.
    pub send_batch_max_size: usize,
    /// Send as soon as this many encoded (protobuf) bytes are pending, and split anything larger. `0`: no bound.
    #[serde(deserialize_with = "byte_size::deserialize")]
    pub send_batch_max_bytes: u64,
    /// Request metadata keys (client headers the receiver keeps) whose values separate batches, e.g. a tenant
    /// header. Case-insensitive. Empty: one batch for everybody.
    pub metadata_keys: Vec<String>,
    /// Most distinct combinations of `metadata_keys` values with data pending at once; data of a further
    /// combination is sent on its own, unbatched, rather than refused.
    pub metadata_cardinality_limit: usize,
    /// Also send whatever is pending as soon as no further request is waiting in the pipeline's input, instead
    /// of holding it for `timeout`. Every client of otlake waits for the export of its data, so a client that
    /// sends again only once answered (an SDK's batch exporter, a closed-loop load) otherwise waits `timeout`
    /// each time; with this on, requests that arrive together still travel together, and a lone request leaves
    /// at once. Costs smaller batches under light load.
    pub send_when_idle: bool,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            timeout: DEFAULT_TIMEOUT,
            send_batch_size: DEFAULT_SEND_BATCH_SIZE,
            send_batch_max_size: DEFAULT_SEND_BATCH_MAX_SIZE,
            send_batch_max_bytes: DEFAULT_SEND_BATCH_MAX_BYTES,
            metadata_keys: Vec::new(),
            metadata_cardinality_limit: DEFAULT_METADATA_CARDINALITY_LIMIT,
            send_when_idle: DEFAULT_SEND_WHEN_IDLE,
        }
    }
}

impl BatchConfig {
    /// Every problem with the configuration, each with its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.send_batch_size == 0 {
            errors.push(ConfigError::new(
                "send_batch_size",
                "must be at least 1 (use `timeout` alone by setting a large send_batch_size)",
            ));
        }
        if self.send_batch_max_size != 0 && self.send_batch_max_size < self.send_batch_size {
            errors.push(ConfigError::new(
                "send_batch_max_size",
                format!(
                    "must be 0 (no bound) or at least send_batch_size ({}), got {}",
                    self.send_batch_size, self.send_batch_max_size
                ),
            ));
        }
        let mut seen = Vec::new();
        for (i, key) in self.metadata_keys.iter().enumerate() {
            let lower = key.to_ascii_lowercase();
            if key.trim().is_empty() {
                errors.push(ConfigError::new(
                    format!("metadata_keys.{i}"),
                    "must not be empty",
                ));
            } else if seen.contains(&lower) {
                errors.push(ConfigError::new(
                    format!("metadata_keys.{i}"),
                    format!("`{key}` is listed twice (keys are case-insensitive)"),
                ));
            }
            seen.push(lower);
        }
        if !self.metadata_keys.is_empty() && self.metadata_cardinality_limit == 0 {
            errors.push(ConfigError::new(
                "metadata_cardinality_limit",
                "must be at least 1 when metadata_keys is set",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// `send_batch_max_size` as a split bound (`usize::MAX` for none).
    pub fn max_items(&self) -> usize {
        match self.send_batch_max_size {
            0 => usize::MAX,
            n => n,
        }
    }

    /// `send_batch_max_bytes` as a trigger and split bound (`usize::MAX` for none).
    pub fn max_bytes(&self) -> usize {
        match self.send_batch_max_bytes {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::parse_config;
    use serde_json::{Value, json};

    #[test]
    fn defaults_match_the_collector_and_the_docs() {
        let config: BatchConfig = parse_config(&Value::Null).expect("defaults");
        assert_eq!(config, BatchConfig::default());
        assert_eq!(config.timeout, Duration::from_millis(200));
        assert_eq!(config.send_batch_size, 8192);
        assert_eq!(config.send_batch_max_size, 0);
        assert_eq!(config.send_batch_max_bytes, 8 * 1024 * 1024);
        assert!(config.metadata_keys.is_empty());
        assert_eq!(config.metadata_cardinality_limit, 1000);
        assert!(!config.send_when_idle);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn every_key_parses() {
        let config: BatchConfig = parse_config(&json!({
            "timeout": "2s",
            "send_batch_size": 100,
            "send_batch_max_size": 150,
            "send_batch_max_bytes": "1MiB",
            "metadata_keys": ["X-Tenant"],
            "metadata_cardinality_limit": 10,
            "send_when_idle": true,
        }))
        .expect("valid");
        assert_eq!(
            config,
            BatchConfig {
                timeout: Duration::from_secs(2),
                send_batch_size: 100,
                send_batch_max_size: 150,
                send_batch_max_bytes: 1 << 20,
                metadata_keys: vec!["X-Tenant".into()],
                metadata_cardinality_limit: 10,
                send_when_idle: true,
            }
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = parse_config::<BatchConfig>(&json!({"send_batch_sise": 10})).expect_err("typo");
        assert!(err.message.contains("send_batch_sise"), "{err}");
    }

    #[test]
    fn validate_reports_every_problem() {
        let config = BatchConfig {
            send_batch_size: 0,
            send_batch_max_size: 0,
            metadata_keys: vec!["tenant".into(), "Tenant".into(), " ".into()],
            metadata_cardinality_limit: 0,
            ..Default::default()
        };
        let errors = config.validate().expect_err("invalid");
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "send_batch_size",
                "metadata_keys.1",
                "metadata_keys.2",
                "metadata_cardinality_limit"
            ]
        );

        let too_small = BatchConfig {
            send_batch_size: 100,
            send_batch_max_size: 50,
            ..Default::default()
        };
        let errors = too_small.validate().expect_err("max below size");
        assert_eq!(errors[0].path, "send_batch_max_size");
    }
}
