//! The `delta` exporter's YAML section, its defaults and its validation.
//!
//! Parsing is strict (`deny_unknown_fields`); [`DeltaExporterConfig::validate`] is pure (no I/O) and reports
//! every problem at once, each with the key it is about. Nothing here touches storage: the location is only
//! parsed, tables are opened when the exporter runs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use otlake_core::{ConfigError, Signal};
use serde::Deserialize;

use crate::location::Location;

/// Where tables go when `location` is not set.
pub const DEFAULT_LOCATION: &str = "./data";
/// Commit when this many bytes (OTLP-encoded size) are buffered for one table.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// Commit when this many rows are buffered for one table.
pub const DEFAULT_MAX_ROWS: u64 = 500_000;
/// Commit at the latest this long after the oldest buffered row arrived. Clients wait for their
/// acknowledgement inside the OTel SDK's 10 s export timeout, so this stays well below it.
pub const DEFAULT_MAX_LATENCY: Duration = Duration::from_secs(2);
/// zstd level of the Parquet files (1 = fastest, 22 = smallest).
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;
/// Rows per Parquet row group.
pub const DEFAULT_ROW_GROUP_SIZE: usize = 128 * 1024;
/// Threads of the exporter's writer pool (Arrow conversion, Parquet encoding, commits).
pub const DEFAULT_WRITER_THREADS: usize = 1;
/// Background compaction: how often each table is compacted, when enabled.
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(3600);
/// Background compaction: files smaller than this are rewritten.
pub const DEFAULT_COMPACTION_TARGET_SIZE: u64 = 128 << 20;
/// Background compaction: a table with fewer small files than this is left alone.
pub const DEFAULT_COMPACTION_MIN_FILES: usize = 10;

/// Which table layout to write (table property `otel.schemaVersion`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SchemaVersion {
    /// Attribute maps as `MAP<STRING,STRING>`, log body as `STRING`, unpartitioned.
    #[default]
    V1,
    /// Attribute maps, log body and metric metadata as `VARIANT`, plus record_id, time, date, service_name;
    /// partitioned by date.
    V2,
}

impl SchemaVersion {
    /// The value of the table property `otel.schemaVersion`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaVersion::V1 => "v1",
            SchemaVersion::V2 => "v2",
        }
    }
}

/// How `severity_number` is written. Unverified which one the managed tables use: configurable.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SeverityNumberFormat {
    /// The number as text: `"9"`.
    #[default]
    Number,
    /// The proto enum name: `"SEVERITY_NUMBER_INFO"`.
    Name,
}

/// The `delta` exporter's configuration.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeltaExporterConfig {
    /// Base URI under which each table is a directory: a local path, `file://`, `s3://`, `abfss://`, `az://`,
    /// or `gs://`.
    pub location: String,
    /// Prefix of the three table names (`<prefix>_otel_spans`); empty gives `otel_spans`, `otel_logs`,
    /// `otel_metrics`.
    pub table_prefix: String,
    /// Name of the spans table, overriding the prefix rule.
    pub spans_table: Option<String>,
    /// Name of the logs table, overriding the prefix rule.
    pub logs_table: Option<String>,
    /// Name of the metrics table, overriding the prefix rule.
    pub metrics_table: Option<String>,
    /// Table layout: `v1` (maps of strings, the default) or `v2` (VARIANT columns).
    pub schema_version: SchemaVersion,
    /// Options handed to the object store (credentials, endpoint, region, ...). Values are never logged.
    pub storage_options: BTreeMap<String, String>,
    /// `number` (`"9"`, the default) or `name` (`"SEVERITY_NUMBER_INFO"`).
    pub severity_number_format: SeverityNumberFormat,
    /// Commit a table once this many bytes (OTLP-encoded size) are buffered for it.
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub max_bytes: u64,
    /// Commit a table once this many rows are buffered for it.
    pub max_rows: u64,
    /// Commit a table at the latest this long after its oldest buffered row arrived.
    #[serde(with = "humantime_serde")]
    pub max_latency: Duration,
    /// zstd compression level of the Parquet files, 1..=22.
    pub compression_level: i32,
    /// Rows per Parquet row group.
    pub row_group_size: usize,
    /// The application id recorded with every commit (Delta `txn`), which makes commits idempotent. Default:
    /// derived from the table location and this exporter's id, so it is stable across restarts. Two processes
    /// writing the same table must have different ids.
    pub writer_id: Option<String>,
    /// Threads that convert to Arrow, encode Parquet and commit, off the receivers' async reactor.
    pub writer_threads: usize,
    /// Optional background compaction of small files.
    pub compaction: Option<CompactionSchedule>,
}

/// Background compaction settings (`compaction:` in the exporter config).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionSchedule {
    /// How often each table is compacted.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Files smaller than this are rewritten into files of about this size.
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub target_file_size: u64,
    /// Only compact when at least this many small files exist.
    pub min_files: usize,
}

impl Default for CompactionSchedule {
    fn default() -> Self {
        CompactionSchedule {
            interval: DEFAULT_COMPACTION_INTERVAL,
            target_file_size: DEFAULT_COMPACTION_TARGET_SIZE,
            min_files: DEFAULT_COMPACTION_MIN_FILES,
        }
    }
}

impl Default for DeltaExporterConfig {
    fn default() -> Self {
        DeltaExporterConfig {
            location: DEFAULT_LOCATION.to_owned(),
            table_prefix: String::new(),
            spans_table: None,
            logs_table: None,
            metrics_table: None,
            schema_version: SchemaVersion::default(),
            storage_options: BTreeMap::new(),
            severity_number_format: SeverityNumberFormat::default(),
            max_bytes: DEFAULT_MAX_BYTES,
            max_rows: DEFAULT_MAX_ROWS,
            max_latency: DEFAULT_MAX_LATENCY,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            row_group_size: DEFAULT_ROW_GROUP_SIZE,
            writer_id: None,
            writer_threads: DEFAULT_WRITER_THREADS,
            compaction: None,
        }
    }
}

impl fmt::Debug for DeltaExporterConfig {
    /// Storage option values are credentials: only their keys are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaExporterConfig")
            .field("location", &self.location)
            .field("table_prefix", &self.table_prefix)
            .field("spans_table", &self.spans_table)
            .field("logs_table", &self.logs_table)
            .field("metrics_table", &self.metrics_table)
            .field("schema_version", &self.schema_version)
            .field(
                "storage_options",
                &self.storage_options.keys().collect::<Vec<_>>(),
            )
            .field("severity_number_format", &self.severity_number_format)
            .field("max_bytes", &self.max_bytes)
            .field("max_rows", &self.max_rows)
            .field("max_latency", &self.max_latency)
            .field("compression_level", &self.compression_level)
            .field("row_group_size", &self.row_group_size)
            .field("writer_id", &self.writer_id)
            .field("writer_threads", &self.writer_threads)
            .field("compaction", &self.compaction)
            .finish()
    }
}

/// The table each signal lands in: its name without a prefix, and the YAML key that overrides that name.
pub trait SignalTable {
    /// The table name without a prefix (`otel_spans`).
    fn base_name(self) -> &'static str;
    /// The YAML key that overrides this table's name (`spans_table`).
    fn config_key(self) -> &'static str;
}

impl SignalTable for Signal {
    fn base_name(self) -> &'static str {
        match self {
            Signal::Traces => "otel_spans",
            Signal::Logs => "otel_logs",
            Signal::Metrics => "otel_metrics",
        }
    }

    fn config_key(self) -> &'static str {
        match self {
            Signal::Traces => "spans_table",
            Signal::Logs => "logs_table",
            Signal::Metrics => "metrics_table",
        }
    }
}

/// The name of a table: `<prefix>_<base>`, or `<base>` with an empty prefix.
pub fn table_name(prefix: &str, signal: Signal) -> String {
    if prefix.is_empty() {
        signal.base_name().to_owned()
    } else {
        format!("{prefix}_{}", signal.base_name())
    }
}

/// Whether `name` is usable as a table name: ASCII letters, digits and underscores, not empty.
pub fn is_valid_table_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_valid_writer_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl DeltaExporterConfig {
    /// The name of the table of `signal`.
    pub fn table_name(&self, signal: Signal) -> String {
        let explicit = match signal {
            Signal::Traces => &self.spans_table,
            Signal::Logs => &self.logs_table,
            Signal::Metrics => &self.metrics_table,
        };
        explicit
            .clone()
            .unwrap_or_else(|| table_name(&self.table_prefix, signal))
    }

    /// Every problem with this configuration, each at its key. Pure: touches no storage.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if let Err(message) = Location::parse(&self.location) {
            errors.push(ConfigError::new("location", message));
        }
        if !self.table_prefix.is_empty() && !is_valid_table_name(&self.table_prefix) {
            errors.push(ConfigError::new(
                "table_prefix",
                format!(
                    "`{}` is not a valid table prefix: use ASCII letters, digits and underscores",
                    self.table_prefix
                ),
            ));
        }
        let mut seen: Vec<(String, Signal)> = Vec::new();
        for signal in Signal::ALL {
            let name = self.table_name(signal);
            let explicit = match signal {
                Signal::Traces => self.spans_table.is_some(),
                Signal::Logs => self.logs_table.is_some(),
                Signal::Metrics => self.metrics_table.is_some(),
            };
            if explicit && !is_valid_table_name(&name) {
                errors.push(ConfigError::new(
                    signal.config_key(),
                    format!(
                        "`{name}` is not a valid table name: use ASCII letters, digits and underscores"
                    ),
                ));
            }
            if let Some((_, other)) = seen.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                errors.push(ConfigError::new(
                    signal.config_key(),
                    format!(
                        "table name `{name}` is also used for {}: each signal needs its own table",
                        other.config_key()
                    ),
                ));
            }
            seen.push((name, signal));
        }
        if self.max_bytes < 1024 {
            errors.push(ConfigError::new("max_bytes", "must be at least 1KiB"));
        }
        if self.max_rows == 0 {
            errors.push(ConfigError::new("max_rows", "must be at least 1"));
        }
        if self.max_latency.is_zero() {
            errors.push(ConfigError::new(
                "max_latency",
                "must be greater than zero (e.g. 2s)",
            ));
        }
        if !(1..=22).contains(&self.compression_level) {
            errors.push(ConfigError::new(
                "compression_level",
                format!(
                    "zstd level {} is out of range 1..=22",
                    self.compression_level
                ),
            ));
        }
        if self.row_group_size == 0 {
            errors.push(ConfigError::new("row_group_size", "must be at least 1"));
        }
        if let Some(id) = &self.writer_id
            && !is_valid_writer_id(id)
        {
            errors.push(ConfigError::new(
                "writer_id",
                format!(
                    "`{id}` is not a valid writer id: use 1 to 200 ASCII letters, digits, `_`, `-` or `.`"
                ),
            ));
        }
        if self.writer_threads == 0 || self.writer_threads > 64 {
            errors.push(ConfigError::new(
                "writer_threads",
                "must be between 1 and 64",
            ));
        }
        if let Some(compaction) = &self.compaction {
            if compaction.interval.is_zero() {
                errors.push(ConfigError::new(
                    "compaction.interval",
                    "must be greater than zero (e.g. 1h)",
                ));
            }
            if compaction.target_file_size < 1 << 20 {
                errors.push(ConfigError::new(
                    "compaction.target_file_size",
                    "must be at least 1MiB",
                ));
            }
            if compaction.min_files < 2 {
                errors.push(ConfigError::new(
                    "compaction.min_files",
                    "must be at least 2",
                ));
            }
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
    use serde_json::json;

    #[test]
    fn defaults_match_the_documentation() {
        let config: DeltaExporterConfig = parse_config(&serde_json::Value::Null).expect("defaults");
        assert_eq!(config.location, "./data");
        assert_eq!(config.schema_version, SchemaVersion::V1);
        assert_eq!(config.severity_number_format, SeverityNumberFormat::Number);
        assert_eq!(config.max_latency, Duration::from_secs(2));
        assert_eq!(config.compression_level, 3);
        assert_eq!(config.table_name(Signal::Traces), "otel_spans");
        assert_eq!(config.table_name(Signal::Logs), "otel_logs");
        assert_eq!(config.table_name(Signal::Metrics), "otel_metrics");
        assert!(config.compaction.is_none());
        config.validate().expect("defaults are valid");
    }

    #[test]
    fn prefix_and_single_names() {
        let config: DeltaExporterConfig = parse_config(&json!({
            "table_prefix": "prod",
            "logs_table": "my_logs",
            "max_bytes": "8MiB",
            "max_latency": "500ms",
            "schema_version": "v2",
            "severity_number_format": "name",
            "storage_options": {"AWS_SECRET_ACCESS_KEY": "hunter2"},
            "compaction": {"interval": "10m"},
        }))
        .expect("valid");
        assert_eq!(config.table_name(Signal::Traces), "prod_otel_spans");
        assert_eq!(config.table_name(Signal::Logs), "my_logs");
        assert_eq!(config.table_name(Signal::Metrics), "prod_otel_metrics");
        assert_eq!(config.max_bytes, 8 << 20);
        assert_eq!(config.max_latency, Duration::from_millis(500));
        assert_eq!(config.schema_version, SchemaVersion::V2);
        assert_eq!(config.severity_number_format, SeverityNumberFormat::Name);
        let compaction = config.compaction.clone().expect("set");
        assert_eq!(compaction.interval, Duration::from_secs(600));
        assert_eq!(compaction.min_files, DEFAULT_COMPACTION_MIN_FILES);
        config.validate().expect("valid");
        let shown = format!("{config:?}");
        assert!(shown.contains("AWS_SECRET_ACCESS_KEY"), "{shown}");
        assert!(!shown.contains("hunter2"), "credentials leaked: {shown}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse_config::<DeltaExporterConfig>(&json!({"locaton": "/tmp/x"}))
            .expect_err("unknown key");
        assert_eq!(err.path, "locaton");
        assert!(err.message.contains("unknown field"), "{err}");
    }

    #[test]
    fn invalid_names_and_values_are_all_reported() {
        let config: DeltaExporterConfig = parse_config(&json!({
            "table_prefix": "prod-eu",
            "spans_table": "spans.v1",
            "logs_table": "x",
            "metrics_table": "X",
            "compression_level": 30,
            "max_rows": 0,
            "max_latency": "0s",
            "writer_id": "has space",
            "location": "ftp://host/path",
        }))
        .expect("parses");
        let errors = config.validate().expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for key in [
            "table_prefix",
            "spans_table",
            "metrics_table",
            "compression_level",
            "max_rows",
            "max_latency",
            "writer_id",
            "location",
        ] {
            assert!(paths.contains(&key), "{key} missing from {errors:?}");
        }
    }

    #[test]
    fn empty_prefix_gives_plain_names_and_underscored_prefixes_work() {
        assert_eq!(table_name("", Signal::Metrics), "otel_metrics");
        assert_eq!(table_name("a_1", Signal::Traces), "a_1_otel_spans");
        assert!(is_valid_table_name("abc_123"));
        assert!(!is_valid_table_name(""));
        assert!(!is_valid_table_name("a-b"));
        assert!(!is_valid_table_name("é"));
    }
}
