//! The receiver's YAML section: the OpenTelemetry Collector's `filelog` keys.
//!
//! Parsing is [`otlake_core::parse_config`] (unknown keys are refused with their path); [`FilelogConfig::validate`]
//! is pure and reports every problem at once, including those of the operators (compiled once here, so a bad
//! regex or layout is a `validate` error, never a run-time surprise).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use otlake_core::ConfigError;
use serde::{Deserialize, Deserializer};

use crate::operators::OperatorConfig;

/// Default time between two scans of the include patterns (the Collector's).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Default number of leading bytes that identify a file (the Collector's `1kb`).
pub const DEFAULT_FINGERPRINT_SIZE: u64 = 1000;
/// Default longest entry: 1 MiB, the daemon's log-line limit (`size_limit`'s `max_log_line_bytes`).
pub const DEFAULT_MAX_LOG_SIZE: u64 = 1 << 20;
/// Default number of files read in one poll (the Collector's).
pub const DEFAULT_MAX_CONCURRENT_FILES: usize = 1024;
/// Default wait before a last line without its newline is emitted anyway (the Collector's).
pub const DEFAULT_FORCE_FLUSH_PERIOD: Duration = Duration::from_millis(500);
/// The smallest fingerprint that can still tell files apart (the Collector's minimum).
pub const MIN_FINGERPRINT_SIZE: u64 = 16;
/// The encodings otlake reads.
pub const ENCODINGS: &[&str] = &["utf-8", "utf8"];

/// The `filelog` receiver's configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilelogConfig {
    /// Glob patterns of the files to read (`*`, `?`, `[...]`, `**` for any depth). Required.
    pub include: Vec<String>,
    /// Glob patterns of files not to read, even if `include` matches them.
    pub exclude: Vec<String>,
    /// Where to start in a file found by the first scan that has no checkpoint: `end` (default) or
    /// `beginning`. Files that appear later are always read from their beginning.
    pub start_at: StartAt,
    /// Time between two scans of the include patterns. Default `200ms`.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Leading bytes that identify a file across renames (rotation). A byte size; default `1kb` (1000 bytes).
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub fingerprint_size: u64,
    /// Longest entry. A longer one is cut to this size (at a UTF-8 boundary) and marked with the attribute
    /// `otlake.truncated` (its size before truncation), as the `size_limit` processor marks what it cuts;
    /// the rest of it is skipped. A byte size; default `1MiB`.
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub max_log_size: u64,
    /// Most files read in one poll; the rest are read in the next polls, in turn. Default 1024.
    pub max_concurrent_files: usize,
    /// Add the attribute `log.file.name` (the file's name). Default `true`.
    pub include_file_name: bool,
    /// Add the attribute `log.file.path` (the path as matched). Default `false`.
    pub include_file_path: bool,
    /// Add `log.file.name_resolved` (the name after following symbolic links). Default `false`.
    pub include_file_name_resolved: bool,
    /// Add `log.file.path_resolved` (the path after following symbolic links). Default `false`.
    pub include_file_path_resolved: bool,
    /// Text encoding of the files: `utf-8` (default). Invalid bytes become U+FFFD; a line is never refused.
    pub encoding: String,
    /// How lines join into one entry; absent: one entry per line.
    pub multiline: Option<MultilineConfig>,
    /// Wait before a last line without its newline (or a multiline entry that nothing has ended yet) is
    /// emitted anyway. Default `500ms`; `0s` waits for the newline forever.
    #[serde(with = "humantime_serde")]
    pub force_flush_period: Duration,
    /// Keep a line's leading whitespace. Default `true` (unlike the Collector: a traceback's indentation is
    /// what tells its frames apart).
    pub preserve_leading_whitespaces: bool,
    /// Keep a line's trailing whitespace. Default `false` (a `\r` before the newline goes too); always kept
    /// when a `container` operator is listed (a partial line's trailing spaces belong to the joined line).
    pub preserve_trailing_whitespaces: bool,
    /// Attributes added to every entry (string values).
    pub attributes: BTreeMap<String, String>,
    /// Resource attributes added to every entry (string values).
    pub resource: BTreeMap<String, String>,
    /// Where checkpoints are kept: a directory, or the Collector's `file_storage[/name]` (then
    /// `file_storage_directory` must name the directory, since otlake has no extensions). Absent: no
    /// checkpoints, and a restart starts again from `start_at`.
    pub storage: Option<String>,
    /// The directory of a `file_storage` extension named by `storage` (copy the extension's `directory`).
    pub file_storage_directory: Option<PathBuf>,
    /// Operators applied to every entry, in order (see the README for each type and its keys).
    #[serde(deserialize_with = "operators")]
    pub operators: Vec<OperatorConfig>,
}

impl Default for FilelogConfig {
    fn default() -> Self {
        FilelogConfig {
            include: Vec::new(),
            exclude: Vec::new(),
            start_at: StartAt::End,
            poll_interval: DEFAULT_POLL_INTERVAL,
            fingerprint_size: DEFAULT_FINGERPRINT_SIZE,
            max_log_size: DEFAULT_MAX_LOG_SIZE,
            max_concurrent_files: DEFAULT_MAX_CONCURRENT_FILES,
            include_file_name: true,
            include_file_path: false,
            include_file_name_resolved: false,
            include_file_path_resolved: false,
            encoding: "utf-8".to_owned(),
            multiline: None,
            force_flush_period: DEFAULT_FORCE_FLUSH_PERIOD,
            preserve_leading_whitespaces: true,
            preserve_trailing_whitespaces: false,
            attributes: BTreeMap::new(),
            resource: BTreeMap::new(),
            storage: None,
            file_storage_directory: None,
            operators: Vec::new(),
        }
    }
}

/// `start_at`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// Read only what is written after the receiver starts.
    #[default]
    End,
    /// Read the whole file.
    Beginning,
}

/// `multiline`: exactly one of the two patterns.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultilineConfig {
    /// A line matching this regex starts a new entry; the lines after it, up to the next such line, join it.
    pub line_start_pattern: Option<String>,
    /// A line matching this regex ends the current entry.
    pub line_end_pattern: Option<String>,
}

/// An `operators:` list; `null` (a bare `operators:`) is an empty list.
fn operators<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<OperatorConfig>, D::Error> {
    Ok(Option::<Vec<OperatorConfig>>::deserialize(d)?.unwrap_or_default())
}

/// Where checkpoints go, once `storage` is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// No checkpoints.
    None,
    /// Checkpoints in this directory.
    Directory(PathBuf),
}

impl FilelogConfig {
    /// Every problem at once, each with its path in the section.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.include.is_empty() {
            errors.push(ConfigError::new(
                "include",
                "at least one glob pattern is required",
            ));
        }
        for (key, patterns) in [("include", &self.include), ("exclude", &self.exclude)] {
            for (i, pattern) in patterns.iter().enumerate() {
                if let Err(e) = glob::Pattern::new(pattern) {
                    errors.push(ConfigError::new(
                        format!("{key}.{i}"),
                        format!("`{pattern}` is not a glob pattern: {e}"),
                    ));
                }
            }
        }
        if self.poll_interval.is_zero() {
            errors.push(ConfigError::new("poll_interval", "must be greater than 0"));
        }
        if self.fingerprint_size < MIN_FINGERPRINT_SIZE {
            errors.push(ConfigError::new(
                "fingerprint_size",
                format!("must be at least {MIN_FINGERPRINT_SIZE} bytes"),
            ));
        }
        if self.max_log_size == 0 {
            errors.push(ConfigError::new("max_log_size", "must be greater than 0"));
        }
        if self.max_concurrent_files == 0 {
            errors.push(ConfigError::new(
                "max_concurrent_files",
                "must be at least 1",
            ));
        }
        if !ENCODINGS.contains(&self.encoding.to_ascii_lowercase().as_str()) {
            errors.push(ConfigError::new(
                "encoding",
                format!(
                    "unknown encoding `{}`: otlake reads {}",
                    self.encoding,
                    ENCODINGS.join(", ")
                ),
            ));
        }
        if let Some(multiline) = &self.multiline {
            multiline.validate(&mut errors);
        }
        if let Err(e) = self.storage() {
            errors.push(e);
        }
        if let Err(mut problems) = crate::operators::validate(&self.operators, self) {
            errors.append(&mut problems);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Resolves `storage`: a directory, or `file_storage[/name]` with `file_storage_directory`.
    pub fn storage(&self) -> Result<Storage, ConfigError> {
        let Some(storage) = self.storage.as_deref() else {
            return Ok(Storage::None);
        };
        let is_extension = storage == "file_storage" || storage.starts_with("file_storage/");
        match (is_extension, &self.file_storage_directory) {
            (true, Some(dir)) => Ok(Storage::Directory(dir.clone())),
            (true, None) => Err(ConfigError::new(
                "storage",
                format!(
                    "`{storage}` names a Collector extension, which otlake does not run: set \
                     `file_storage_directory` to its `directory`, or give `storage` the directory itself"
                ),
            )),
            (false, _) if storage.trim().is_empty() => {
                Err(ConfigError::new("storage", "must name a directory"))
            }
            (false, _) => Ok(Storage::Directory(PathBuf::from(storage))),
        }
    }
}

impl MultilineConfig {
    fn validate(&self, errors: &mut Vec<ConfigError>) {
        match (&self.line_start_pattern, &self.line_end_pattern) {
            (Some(_), Some(_)) => errors.push(ConfigError::new(
                "multiline",
                "set only one of line_start_pattern and line_end_pattern",
            )),
            (None, None) => errors.push(ConfigError::new(
                "multiline",
                "set line_start_pattern or line_end_pattern",
            )),
            (Some(p), None) | (None, Some(p)) => {
                let key = if self.line_start_pattern.is_some() {
                    "multiline.line_start_pattern"
                } else {
                    "multiline.line_end_pattern"
                };
                if let Err(e) = regex::Regex::new(p) {
                    errors.push(ConfigError::new(key, format!("not a regex: {e}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::parse_config;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<FilelogConfig, ConfigError> {
        parse_config(&value)
    }

    #[test]
    fn defaults_are_the_collectors() {
        let config = parse(json!({"include": ["/var/log/*.log"]})).expect("parses");
        assert_eq!(config.start_at, StartAt::End);
        assert_eq!(config.poll_interval, Duration::from_millis(200));
        assert_eq!(config.fingerprint_size, 1000);
        assert_eq!(config.max_log_size, 1 << 20);
        assert!(config.include_file_name);
        assert!(!config.include_file_path);
        assert_eq!(config.force_flush_period, Duration::from_millis(500));
        assert_eq!(config.storage(), Ok(Storage::None));
        config.validate().expect("valid");
    }

    #[test]
    fn collector_keys_parse() {
        let config = parse(json!({
            "include": ["/logs/**/*.log"], "exclude": ["/logs/old/*"], "start_at": "beginning",
            "poll_interval": "1s", "fingerprint_size": "2KiB", "max_log_size": "64KiB",
            "max_concurrent_files": 10, "include_file_path": true, "encoding": "UTF-8",
            "multiline": {"line_start_pattern": "^\\d{4}-"}, "force_flush_period": "0s",
            "storage": "/var/lib/otlake", "operators": [{"type": "json_parser"}]
        }))
        .expect("parses");
        assert_eq!(config.fingerprint_size, 2048);
        let collector =
            parse(json!({"include": ["/x"], "fingerprint_size": "1kb", "max_log_size": "1mib"}))
                .expect("the Collector's spelling");
        assert_eq!(
            (collector.fingerprint_size, collector.max_log_size),
            (1000, 1 << 20)
        );
        assert_eq!(
            config.storage(),
            Ok(Storage::Directory("/var/lib/otlake".into()))
        );
        config.validate().expect("valid");
    }

    #[test]
    fn validate_reports_every_problem() {
        let config = parse(json!({
            "include": ["[unclosed"], "poll_interval": "0s", "fingerprint_size": 4, "max_log_size": 0,
            "encoding": "latin-9", "multiline": {"line_start_pattern": "(", "line_end_pattern": "x"},
            "storage": "file_storage/checkpoints"
        }))
        .expect("parses");
        let errors = config.validate().expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "include.0",
                "poll_interval",
                "fingerprint_size",
                "max_log_size",
                "encoding",
                "multiline",
                "storage"
            ]
        );
        assert!(errors[4].message.contains("utf-8"), "{errors:?}");
    }

    #[test]
    fn the_collectors_file_storage_form_needs_its_directory() {
        let config = parse(json!({
            "include": ["/x/*.log"], "storage": "file_storage/filelog",
            "file_storage_directory": "/var/lib/otelcol/file_storage"
        }))
        .expect("parses");
        assert_eq!(
            config.storage(),
            Ok(Storage::Directory("/var/lib/otelcol/file_storage".into()))
        );
    }

    #[test]
    fn unknown_keys_and_operators_name_what_exists() {
        let err = parse(json!({"include": ["/x"], "poll_intervall": "1s"})).expect_err("unknown");
        assert_eq!(err.path, "poll_intervall");
        assert!(err.message.contains("poll_interval"), "{err}");
        let err = parse(json!({"include": ["/x"], "operators": [{"type": "xml_parser"}]}))
            .expect_err("unknown operator");
        assert!(err.path.starts_with("operators"), "{err:?}");
        for known in ["json_parser", "regex_parser", "container", "python", "move"] {
            assert!(err.message.contains(known), "{err}");
        }
        let err = parse(
            json!({"include": ["/x"], "operators": [{"type": "json_parser", "parse_frm": "body"}]}),
        )
        .expect_err("unknown operator key");
        assert!(err.message.contains("parse_from"), "{err}");
    }
}
