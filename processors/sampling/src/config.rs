//! The `sampling` (and `probabilistic_sampler`) processor's configuration: the Collector's probabilistic
//! sampler keys where they overlap (`sampling_percentage`, `sampling_precision`, `mode`, `fail_closed`), plus
//! rules, log settings and an optional tail mode.
//!
//! Parsed by the factory (`validate`, then `build`); pure, no I/O.

use std::time::Duration;

use otlake_core::ConfigError;
use otlake_core::config::byte_size;
use serde::Deserialize;

/// Default for `sampling_percentage`: keep everything (the Collector has no useful default; ours loses nothing).
pub const DEFAULT_SAMPLING_PERCENTAGE: f64 = 100.0;
/// Default for `sampling_precision`: hex digits of the written threshold (the Collector's).
pub const DEFAULT_SAMPLING_PRECISION: u8 = 4;
/// Default for `logs.min_severity`: WARN (severity number 13) and above are always kept.
pub const DEFAULT_MIN_SEVERITY: &str = "WARN";
/// Default for `tail.decision_wait`: short, because the clients' acknowledgements wait for the decision and
/// OTLP exporters time out after 10 s by default.
pub const DEFAULT_DECISION_WAIT: Duration = Duration::from_secs(2);
/// Longest accepted `tail.decision_wait`.
pub const MAX_DECISION_WAIT: Duration = Duration::from_secs(60);
/// Default for `tail.max_traces`.
pub const DEFAULT_MAX_TRACES: usize = 10_000;
/// Default for `tail.max_bytes`: 64 MiB of held spans (encoded size).
pub const DEFAULT_TAIL_MAX_BYTES: u64 = 64 << 20;
/// Most rules (a trace's rule hits are a 64-bit set).
pub const MAX_RULES: usize = 64;

/// How an incoming threshold (`th` in the span's tracestate) combines with ours.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The stricter of the two thresholds: data already sampled harder upstream passes unchanged.
    Equalizing,
    /// The product of the two probabilities: sampling here again reduces upstream-sampled data further.
    Proportional,
    /// The Collector's legacy hashing mode: not supported (see `hash_seed`); accepted only to explain that.
    HashSeed,
}

/// A span status a rule matches.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StatusMatch {
    Unset,
    Ok,
    Error,
}

/// An attribute condition: the key is present with one of `values` (any value when `values` is empty).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeMatch {
    /// Attribute key, looked up on the span, then on its resource.
    pub key: String,
    /// Accepted values, compared as text (`"chat"`, `"42"`, `"true"`); empty: any value.
    pub values: Vec<String>,
}

/// A rule: conditions (all must hold) and the percentage of matching traces to keep.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    /// Shown in logs and errors; defaults to `rules.<index>`.
    pub name: Option<String>,
    /// Some span of the trace has this status.
    pub status_code: Option<StatusMatch>,
    /// The trace's root span lasted at least this long ("2s"). Needs the root span in the same request, or
    /// tail mode.
    #[serde(with = "humantime_serde::option")]
    pub min_root_duration: Option<Duration>,
    /// Some span of the trace (or its resource) has this attribute value.
    pub attribute: Option<AttributeMatch>,
    /// Percentage of matching traces kept (consistently, like the default ratio).
    pub sampling_percentage: f64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            name: None,
            status_code: None,
            min_root_duration: None,
            attribute: None,
            sampling_percentage: 100.0,
        }
    }
}

/// Log sampling.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Records at or above this severity are always kept: a name (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`,
    /// `FATAL`, optionally with a digit 2-4, e.g. `WARN2`) or a severity number (1-24).
    pub min_severity: SeverityLevel,
    /// Percentage of the other records kept; defaults to the top-level `sampling_percentage`. A record with a
    /// trace id follows that trace's ratio decision.
    pub sampling_percentage: Option<f64>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            min_severity: SeverityLevel::Name(DEFAULT_MIN_SEVERITY.to_owned()),
            sampling_percentage: None,
        }
    }
}

/// A severity as written in the YAML.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SeverityLevel {
    Number(i32),
    Name(String),
}

impl SeverityLevel {
    /// The OTLP severity number, or why it is not one.
    pub fn number(&self) -> Result<i32, String> {
        match self {
            SeverityLevel::Number(n) if (1..=24).contains(n) => Ok(*n),
            SeverityLevel::Number(n) => Err(format!("severity number {n} is outside 1-24")),
            SeverityLevel::Name(name) => {
                let upper = name.trim().to_ascii_uppercase();
                let (base, digit) = match upper.char_indices().last() {
                    Some((i, c @ '2'..='4')) => (&upper[..i], c as i32 - '1' as i32),
                    _ => (upper.as_str(), 0),
                };
                let first = match base {
                    "TRACE" => 1,
                    "DEBUG" => 5,
                    "INFO" => 9,
                    "WARN" | "WARNING" => 13,
                    "ERROR" => 17,
                    "FATAL" => 21,
                    _ => {
                        return Err(format!(
                            "unknown severity `{name}`: expected TRACE, DEBUG, INFO, WARN, ERROR or FATAL (optionally followed by 2-4), or a number 1-24"
                        ));
                    }
                };
                Ok(first + digit)
            }
        }
    }
}

/// Tail mode: hold spans per trace and decide on whole traces.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TailConfig {
    /// Hold spans and decide per whole trace. Clients' acknowledgements wait for the decision.
    pub enabled: bool,
    /// How long after a trace's first span the decision is made ("2s").
    #[serde(with = "humantime_serde")]
    pub decision_wait: Duration,
    /// Most traces held at once; beyond it the oldest trace is decided early.
    pub max_traces: usize,
    /// Most encoded span bytes held at once; beyond it the oldest traces are decided early.
    #[serde(deserialize_with = "byte_size::deserialize")]
    pub max_bytes: u64,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            enabled: false,
            decision_wait: DEFAULT_DECISION_WAIT,
            max_traces: DEFAULT_MAX_TRACES,
            max_bytes: DEFAULT_TAIL_MAX_BYTES,
        }
    }
}

/// `processors.sampling` (or `processors.probabilistic_sampler`) in the YAML.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Percentage of traces (and, unless `logs.sampling_percentage` says otherwise, logs) kept, 0-100.
    pub sampling_percentage: f64,
    /// Hex digits of precision of the sampling threshold (1-14).
    pub sampling_precision: u8,
    /// `equalizing` or `proportional`: how an incoming `th` combines with ours. Absent, the factory's default:
    /// `equalizing` for `sampling`, `proportional` for `probabilistic_sampler` (as in the Collector).
    /// `hash_seed` is not supported (see `hash_seed`).
    pub mode: Option<Mode>,
    /// Drop spans whose randomness is unknown (no valid trace id) unless kept at 100%; `false` keeps them.
    pub fail_closed: bool,
    /// Not supported: otlake samples consistently by trace id (OTEP 235), so every instance agrees without a
    /// shared seed. Accepted only to explain that.
    pub hash_seed: Option<u32>,
    /// Rules evaluated before the ratio, in order; the first rule a trace matches sets its percentage.
    pub rules: Vec<Rule>,
    /// Log sampling.
    pub logs: LogsConfig,
    /// Tail mode (traces only).
    pub tail: TailConfig,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            sampling_percentage: DEFAULT_SAMPLING_PERCENTAGE,
            sampling_precision: DEFAULT_SAMPLING_PRECISION,
            mode: None,
            fail_closed: true,
            hash_seed: None,
            rules: Vec::new(),
            logs: LogsConfig::default(),
            tail: TailConfig::default(),
        }
    }
}

fn check_percentage(path: String, value: f64, errors: &mut Vec<ConfigError>) {
    if !(0.0..=100.0).contains(&value) {
        errors.push(ConfigError::new(
            path,
            format!("must be between 0 and 100, got {value}"),
        ));
    }
}

impl SamplingConfig {
    /// Every problem with the configuration, each with its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        check_percentage(
            "sampling_percentage".into(),
            self.sampling_percentage,
            &mut errors,
        );
        if !(1..=14).contains(&self.sampling_precision) {
            errors.push(ConfigError::new(
                "sampling_precision",
                format!("must be 1-14 hex digits, got {}", self.sampling_precision),
            ));
        }
        if self.mode == Some(Mode::HashSeed) {
            errors.push(ConfigError::new(
                "mode",
                "`hash_seed` mode is not supported: otlake samples consistently by trace id (OTEP 235); \
                 use `equalizing` or `proportional`",
            ));
        }
        if self.hash_seed.is_some() {
            errors.push(ConfigError::new(
                "hash_seed",
                "not supported: otlake samples consistently by trace id (OpenTelemetry threshold sampling, \
                 OTEP 235), so every instance makes the same decision without a shared seed; remove the key",
            ));
        }
        if self.rules.len() > MAX_RULES {
            errors.push(ConfigError::new(
                "rules",
                format!("at most {MAX_RULES} rules, got {}", self.rules.len()),
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let path = format!("rules.{i}");
            if rule.status_code.is_none()
                && rule.min_root_duration.is_none()
                && rule.attribute.is_none()
            {
                errors.push(ConfigError::new(
                    path.clone(),
                    "needs at least one condition: status_code, min_root_duration or attribute",
                ));
            }
            if rule.attribute.as_ref().is_some_and(|a| a.key.is_empty()) {
                errors.push(ConfigError::new(
                    format!("{path}.attribute.key"),
                    "must not be empty",
                ));
            }
            check_percentage(
                format!("{path}.sampling_percentage"),
                rule.sampling_percentage,
                &mut errors,
            );
        }
        if let Err(message) = self.logs.min_severity.number() {
            errors.push(ConfigError::new("logs.min_severity", message));
        }
        if let Some(pct) = self.logs.sampling_percentage {
            check_percentage("logs.sampling_percentage".into(), pct, &mut errors);
        }
        if self.tail.enabled {
            if self.tail.decision_wait.is_zero() || self.tail.decision_wait > MAX_DECISION_WAIT {
                errors.push(ConfigError::new(
                    "tail.decision_wait",
                    format!(
                        "must be more than 0 and at most {}s (clients wait for the decision), got {:?}",
                        MAX_DECISION_WAIT.as_secs(),
                        self.tail.decision_wait
                    ),
                ));
            }
            if self.tail.max_traces == 0 {
                errors.push(ConfigError::new("tail.max_traces", "must be at least 1"));
            }
            if self.tail.max_bytes == 0 {
                errors.push(ConfigError::new("tail.max_bytes", "must be more than 0"));
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
    use serde_json::{Value, json};

    #[test]
    fn defaults_keep_everything_and_validate() {
        let config: SamplingConfig = parse_config(&Value::Null).expect("defaults");
        assert_eq!(config, SamplingConfig::default());
        assert_eq!(config.sampling_percentage, 100.0);
        assert_eq!(config.sampling_precision, 4);
        assert_eq!(config.mode, None, "the factory's default");
        assert!(config.fail_closed);
        assert!(config.rules.is_empty());
        assert_eq!(config.logs.min_severity.number(), Ok(13));
        assert_eq!(config.logs.sampling_percentage, None);
        assert!(!config.tail.enabled);
        assert_eq!(config.tail.decision_wait, Duration::from_secs(2));
        assert_eq!(config.tail.max_traces, 10_000);
        assert_eq!(config.tail.max_bytes, 64 << 20);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn every_key_parses() {
        let config: SamplingConfig = parse_config(&json!({
            "sampling_percentage": 12.5,
            "sampling_precision": 6,
            "mode": "proportional",
            "fail_closed": false,
            "rules": [
                {"name": "errors", "status_code": "error"},
                {"min_root_duration": "1500ms", "sampling_percentage": 50},
                {"attribute": {"key": "gen_ai.operation.name", "values": ["chat"]}, "sampling_percentage": 25.0},
            ],
            "logs": {"min_severity": "error", "sampling_percentage": 5},
            "tail": {"enabled": true, "decision_wait": "3s", "max_traces": 100, "max_bytes": "1MiB"},
        }))
        .expect("valid");
        assert_eq!(config.sampling_percentage, 12.5);
        assert_eq!(config.sampling_precision, 6);
        assert_eq!(config.mode, Some(Mode::Proportional));
        assert!(!config.fail_closed);
        assert_eq!(config.rules.len(), 3);
        assert_eq!(config.rules[0].status_code, Some(StatusMatch::Error));
        assert_eq!(config.rules[0].sampling_percentage, 100.0);
        assert_eq!(
            config.rules[1].min_root_duration,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            config.rules[2].attribute,
            Some(AttributeMatch {
                key: "gen_ai.operation.name".into(),
                values: vec!["chat".into()]
            })
        );
        assert_eq!(config.logs.min_severity.number(), Ok(17));
        assert_eq!(config.logs.sampling_percentage, Some(5.0));
        assert_eq!(
            config.tail,
            TailConfig {
                enabled: true,
                decision_wait: Duration::from_secs(3),
                max_traces: 100,
                max_bytes: 1 << 20
            }
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err =
            parse_config::<SamplingConfig>(&json!({"sampling_percent": 10})).expect_err("typo");
        assert!(err.message.contains("sampling_percent"), "{err}");
        let err = parse_config::<SamplingConfig>(&json!({"rules": [{"status": "error"}]}))
            .expect_err("typo in a rule");
        assert_eq!(err.path, "rules[0].status");
    }

    #[test]
    fn validate_reports_every_problem() {
        let config: SamplingConfig = parse_config(&json!({
            "sampling_percentage": 101,
            "sampling_precision": 0,
            "mode": "hash_seed",
            "hash_seed": 22,
            "rules": [{"sampling_percentage": -1}],
            "logs": {"min_severity": "LOUD"},
            "tail": {"enabled": true, "decision_wait": "0s", "max_traces": 0, "max_bytes": 0},
        }))
        .expect("parses");
        let errors = config.validate().expect_err("invalid");
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sampling_percentage",
                "sampling_precision",
                "mode",
                "hash_seed",
                "rules.0",
                "rules.0.sampling_percentage",
                "logs.min_severity",
                "tail.decision_wait",
                "tail.max_traces",
                "tail.max_bytes",
            ]
        );
        assert!(errors[3].message.contains("consistently by trace id"));
    }

    #[test]
    fn severity_names_and_numbers() {
        let level = |v: Value| serde_json::from_value::<SeverityLevel>(v).expect("parses");
        assert_eq!(level(json!("info")).number(), Ok(9));
        assert_eq!(level(json!("WARN3")).number(), Ok(15));
        assert_eq!(level(json!("fatal4")).number(), Ok(24));
        assert_eq!(level(json!(17)).number(), Ok(17));
        assert!(level(json!(25)).number().is_err());
    }
}
