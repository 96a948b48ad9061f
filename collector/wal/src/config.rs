//! `sending_queue: {storage: wal, ...}` in an exporter's section: the write-ahead log's settings, and how they
//! are taken out of the exporter's own configuration.
//!
//! The keys live where the Collector puts its persistent queue (`sending_queue.storage`), so a Collector user
//! finds them where they expect. The service takes the log's keys out before the exporter's factory sees its
//! section ([`split_exporter_config`]); whatever else is in `sending_queue` stays for the exporter.

use std::path::PathBuf;

use otlake_core::{ComponentId, ConfigError, parse_config};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The only storage this crate provides.
pub const STORAGE_WAL: &str = "wal";
/// Where logs go by default: one subdirectory per exporter, beside the default Delta location.
pub const DEFAULT_DIRECTORY: &str = "./data/wal";
/// 1 GiB: minutes of a sidecar's traffic while the destination is down.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// 64 MiB segments: truncation deletes whole segments.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// 32 MiB of encoded payload handed to the exporter and not yet acknowledged by it: decoded, about 96 MiB of
/// the daemon's default 256 MiB memory budget, leaving room for new requests while a backlog drains.
pub const DEFAULT_IN_FLIGHT_BYTES: u64 = 32 << 20;
/// Acknowledge only what is fsynced.
pub const DEFAULT_FSYNC: bool = true;
/// The smallest segment (a segment is also capped at a quarter of `max_bytes`).
pub const MIN_SEGMENT_SIZE: u64 = 4 << 10;

/// The keys of `sending_queue` that belong to the log.
pub const WAL_KEYS: [&str; 6] = [
    "storage",
    "directory",
    "max_bytes",
    "segment_size",
    "in_flight_bytes",
    "fsync",
];

/// `sending_queue:` keys of the write-ahead log.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// `wal`: keep the exporter's queue in a write-ahead log on disk.
    pub storage: String,
    /// The directory holding the logs; each exporter gets its own subdirectory (`delta`, `otlp_gateway`).
    pub directory: PathBuf,
    /// The most disk space the log may take (default 1GiB); when full, clients are answered retryable.
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub max_bytes: u64,
    /// Size of one segment file (default 64MiB, at most a quarter of `max_bytes`).
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub segment_size: u64,
    /// Encoded bytes handed to the exporter and not yet acknowledged by it (default 32MiB): the memory the
    /// log lets the exporter hold (counted in the daemon's memory budget). Above the exporter's commit window
    /// (Delta's `max_bytes`), windows commit by size; below it, by `max_latency`.
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub in_flight_bytes: u64,
    /// `fdatasync` before acknowledging (default true). Off, an acknowledged request survives a killed
    /// process but not a power loss or kernel crash.
    pub fsync: bool,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            storage: STORAGE_WAL.to_owned(),
            directory: PathBuf::from(DEFAULT_DIRECTORY),
            max_bytes: DEFAULT_MAX_BYTES,
            segment_size: DEFAULT_SEGMENT_SIZE,
            in_flight_bytes: DEFAULT_IN_FLIGHT_BYTES,
            fsync: DEFAULT_FSYNC,
        }
    }
}

impl WalConfig {
    /// Every problem, with paths relative to `sending_queue`.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.storage != STORAGE_WAL {
            errors.push(ConfigError::new(
                "storage",
                format!(
                    "unknown storage `{}`: `wal` is the only one (remove `storage` to keep the queue in memory)",
                    self.storage
                ),
            ));
        }
        if self.directory.as_os_str().is_empty() {
            errors.push(ConfigError::new("directory", "must not be empty"));
        }
        if self.max_bytes < 4 * MIN_SEGMENT_SIZE {
            errors.push(ConfigError::new(
                "max_bytes",
                format!("must be at least {} bytes", 4 * MIN_SEGMENT_SIZE),
            ));
        }
        if self.segment_size < MIN_SEGMENT_SIZE {
            errors.push(ConfigError::new(
                "segment_size",
                format!("must be at least {MIN_SEGMENT_SIZE} bytes"),
            ));
        }
        if self.in_flight_bytes == 0 {
            errors.push(ConfigError::new(
                "in_flight_bytes",
                "must be greater than 0",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The log directory of exporter `id`: `directory/<type>[_<name>]`.
    pub fn log_dir(&self, id: &ComponentId) -> PathBuf {
        let name = match &id.name {
            Some(name) => format!("{}_{name}", id.type_name),
            None => id.type_name.clone(),
        };
        self.directory.join(name)
    }

    /// The segment size in force: `segment_size`, at most a quarter of `max_bytes`.
    pub fn effective_segment_size(&self) -> u64 {
        self.segment_size
            .min(self.max_bytes / 4)
            .max(MIN_SEGMENT_SIZE)
    }
}

/// Splits an exporter's section into what its factory gets and the write-ahead log's settings, if
/// `sending_queue.storage` asks for one. Errors carry paths inside the exporter's section.
pub fn split_exporter_config(
    config: &Value,
) -> Result<(Value, Option<WalConfig>), Vec<ConfigError>> {
    let Some(queue) = config.get("sending_queue").and_then(Value::as_object) else {
        return Ok((config.clone(), None));
    };
    if !queue.contains_key("storage") {
        return Ok((config.clone(), None));
    }
    let mut rest = config.clone();
    let mut wal_keys = Map::new();
    if let Some(queue) = rest.get_mut("sending_queue").and_then(Value::as_object_mut) {
        for key in WAL_KEYS {
            if let Some(value) = queue.remove(key) {
                wal_keys.insert(key.to_owned(), value);
            }
        }
        if queue.is_empty()
            && let Some(section) = rest.as_object_mut()
        {
            section.remove("sending_queue");
        }
    }
    let under = |e: ConfigError| e.under("sending_queue");
    let wal: WalConfig = parse_config(&Value::Object(wal_keys)).map_err(|e| vec![under(e)])?;
    wal.validate()
        .map_err(|errors| errors.into_iter().map(under).collect::<Vec<_>>())?;
    Ok((rest, Some(wal)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_log_keys_are_taken_out_and_the_rest_stays_for_the_exporter() {
        let section = json!({
            "endpoint": "127.0.0.1:4317",
            "sending_queue": {"storage": "wal", "directory": "/var/lib/otlake", "max_bytes": "2MiB",
                              "fsync": false, "num_consumers": 4}
        });
        let (rest, wal) = split_exporter_config(&section).expect("valid");
        assert_eq!(
            rest,
            json!({"endpoint": "127.0.0.1:4317", "sending_queue": {"num_consumers": 4}})
        );
        let wal = wal.expect("a log");
        assert_eq!(wal.max_bytes, 2 << 20);
        assert!(!wal.fsync);
        assert_eq!(wal.effective_segment_size(), (2 << 20) / 4);
        let id: ComponentId = "otlp/gateway".parse().expect("id");
        assert_eq!(
            wal.log_dir(&id),
            PathBuf::from("/var/lib/otlake/otlp_gateway")
        );
    }

    #[test]
    fn a_queue_made_only_of_log_keys_disappears_and_defaults_fill_in() {
        let (rest, wal) =
            split_exporter_config(&json!({"location": "./x", "sending_queue": {"storage": "wal"}}))
                .expect("valid");
        assert_eq!(rest, json!({"location": "./x"}));
        assert_eq!(wal, Some(WalConfig::default()));
    }

    #[test]
    fn without_storage_nothing_changes() {
        let section = json!({"sending_queue": {"num_consumers": 2}});
        let (rest, wal) = split_exporter_config(&section).expect("valid");
        assert_eq!((rest, wal), (section, None));
        assert_eq!(
            split_exporter_config(&Value::Null).expect("ok"),
            (Value::Null, None)
        );
    }

    #[test]
    fn every_problem_is_reported_under_sending_queue() {
        let errors = split_exporter_config(&json!({"sending_queue": {
            "storage": "file_storage", "max_bytes": 10, "segment_size": 1, "in_flight_bytes": 0}}))
        .expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sending_queue.storage",
                "sending_queue.max_bytes",
                "sending_queue.segment_size",
                "sending_queue.in_flight_bytes"
            ]
        );
        let typo = split_exporter_config(
            &json!({"sending_queue": {"storage": "wal", "max_bytes": "1 parsec"}}),
        )
        .expect_err("bad size");
        assert_eq!(typo[0].path, "sending_queue.max_bytes");
    }
}
