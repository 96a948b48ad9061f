//! The `redaction` processor's YAML: the Collector's keys (`allow_all_keys`, `allowed_keys`, `ignored_keys`,
//! `blocked_values`, `allowed_values`, `blocked_key_patterns`, `hash_function`, `summary`) and ours
//! (`builtin_patterns`, `content`, `content_default`). Parsed by the factory; pure, no I/O.

use std::collections::BTreeMap;

use otlake_core::ConfigError;
use serde::Deserialize;

use crate::patterns::{BUILTIN, builtin_names};

/// The GenAI content attributes: prompts, completions and instructions as the semantic conventions, MLflow,
/// OpenInference and Traceloop write them. A key also covers its dotted children (`gen_ai.prompt.0.content`).
pub const CONTENT_KEYS: &[&str] = &[
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "mlflow.spanInputs",
    "mlflow.spanOutputs",
    "input.value",
    "output.value",
    "traceloop.entity.input",
    "traceloop.entity.output",
];

/// What happens to a content attribute.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ContentMode {
    /// The whole value becomes `****`.
    Mask,
    /// The whole value becomes its hash (`hash_function`, SHA-256 when that is `none`).
    Hash,
    /// The attribute is removed.
    Drop,
    /// The value keeps its first N characters (then `…`); what is kept is still scanned for blocked values.
    Truncate(usize),
    /// Scanned like any other value (the default).
    Scan,
}

/// The hash of masked text (the Collector's `hash_function`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HashFunction {
    /// Masked text becomes `****`.
    #[default]
    None,
    /// Masked text becomes its SHA-256 in hex (joinable across rows without revealing the value).
    Sha256,
    /// The Collector's other choices: refused (use `sha256`).
    Md5,
    Sha1,
    Sha3,
}

/// How much the processor says about what it did, as attributes on the changed item (the Collector's).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Summary {
    /// `redaction.redacted.keys` / `.count` and `redaction.masked.keys` / `.count`.
    #[default]
    Debug,
    /// The counts only.
    Info,
    /// Nothing.
    Silent,
}

/// `processors.redaction` in the YAML.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Keep every attribute key (`false`, the Collector's default: only `allowed_keys` are kept on spans, span
    /// events and links, log records and data points; resource and scope attributes are never removed).
    pub allow_all_keys: bool,
    /// Keys kept when `allow_all_keys` is false.
    pub allowed_keys: Vec<String>,
    /// Keys left exactly as they are: not removed, not scanned.
    pub ignored_keys: Vec<String>,
    /// Regexes: the parts of string values they match are masked.
    pub blocked_values: Vec<String>,
    /// Regexes: a value matching one is never masked by `blocked_values` or `builtin_patterns`.
    pub allowed_values: Vec<String>,
    /// Regexes on keys: the whole value of a matching key is masked.
    pub blocked_key_patterns: Vec<String>,
    /// `none` (`****`) or `sha256`.
    pub hash_function: HashFunction,
    /// `debug`, `info` or `silent`.
    pub summary: Summary,
    /// Built-in value patterns by name: email, card_number (Luhn-checked), phone_number, ipv4, ipv6,
    /// bearer_token, api_key (`sk-…`, `AKIA…`, `ghp_…`, JWTs).
    pub builtin_patterns: Vec<String>,
    /// Per content key, its mode (`mask`, `hash`, `drop`, `{truncate: N}`, `scan`); keys beyond the built-in
    /// list may be added.
    pub content: BTreeMap<String, ContentMode>,
    /// The mode of the built-in content keys `content` does not name.
    pub content_default: ContentMode,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            allow_all_keys: false,
            allowed_keys: Vec::new(),
            ignored_keys: Vec::new(),
            blocked_values: Vec::new(),
            allowed_values: Vec::new(),
            blocked_key_patterns: Vec::new(),
            hash_function: HashFunction::None,
            summary: Summary::Debug,
            builtin_patterns: Vec::new(),
            content: BTreeMap::new(),
            content_default: ContentMode::Scan,
        }
    }
}

/// Compiles each regex of `list`, recording those that do not compile.
pub fn compile_all(
    list: &[String],
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<regex::Regex> {
    list.iter()
        .enumerate()
        .filter_map(|(i, p)| match regex::Regex::new(p) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(ConfigError::new(
                    format!("{path}.{i}"),
                    format!("`{p}` is not a valid regex: {e}"),
                ));
                None
            }
        })
        .collect()
}

impl RedactionConfig {
    /// Every problem with the configuration, each with its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        compile_all(&self.blocked_values, "blocked_values", &mut errors);
        compile_all(&self.allowed_values, "allowed_values", &mut errors);
        compile_all(
            &self.blocked_key_patterns,
            "blocked_key_patterns",
            &mut errors,
        );
        for (i, name) in self.builtin_patterns.iter().enumerate() {
            if !BUILTIN.iter().any(|(n, _)| n == name) {
                errors.push(ConfigError::new(
                    format!("builtin_patterns.{i}"),
                    format!(
                        "unknown pattern `{name}`: expected one of {}",
                        builtin_names()
                    ),
                ));
            }
        }
        if matches!(
            self.hash_function,
            HashFunction::Md5 | HashFunction::Sha1 | HashFunction::Sha3
        ) {
            errors.push(ConfigError::new(
                "hash_function",
                "only `none` and `sha256` are supported",
            ));
        }
        for (key, mode) in self
            .content
            .iter()
            .map(|(k, m)| (k.as_str(), *m))
            .chain([("content_default", self.content_default)])
        {
            if mode == ContentMode::Truncate(0) {
                errors.push(ConfigError::new(
                    if key == "content_default" {
                        key.to_owned()
                    } else {
                        format!("content.{key}")
                    },
                    "truncate needs a length above 0 (use `drop` to remove the value)",
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
