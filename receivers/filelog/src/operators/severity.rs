//! Severity: the `severity_parser` operator and the `severity:` block of the parsers, with the Collector's keys
//! (`parse_from`, `preset`, `mapping`, `overwrite_text`).
//!
//! A mapping names a level (`trace`…`fatal`, or `error2`-style sub-levels) and lists what means it: strings
//! (matched without regard to case), numbers, `{min, max}` ranges and HTTP-style classes (`5xx`). The default
//! preset knows the usual names (`warning`, `err`, `critical`, ...); `preset: none` starts empty.

use std::collections::HashMap;

use otlake_core::ConfigError;
use serde::Deserialize;
use serde_json::Value;

use super::{Applying, OnError, Operator, field};
use crate::entry::{Entry, Field};

/// The `severity:` block of a parser (also the body of `severity_parser`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityConfig {
    /// The field holding the severity. Required.
    pub parse_from: String,
    /// `default` (the usual level names) or `none`.
    pub preset: Option<String>,
    /// Level name → what means it (a string, number, list, `{min, max}` or `2xx`-style class).
    pub mapping: HashMap<String, Value>,
    /// Set `severity_text` to the level's name instead of the value found.
    pub overwrite_text: bool,
}

/// `severity_parser`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityParserConfig {
    /// The operator's id (default: its type and position).
    pub id: Option<String>,
    /// The id of a later operator to send entries to (default: the next one).
    pub output: Option<String>,
    /// What to do with an entry without the field: `send` (default), `send_quiet`, `drop`, `drop_quiet`.
    pub on_error: OnError,
    /// The field holding the severity. Required.
    pub parse_from: String,
    /// `default` (the usual level names) or `none`.
    pub preset: Option<String>,
    /// Level name → what means it.
    pub mapping: HashMap<String, Value>,
    /// Set `severity_text` to the level's name instead of the value found.
    pub overwrite_text: bool,
}

/// The OTel levels: name, severity number, text.
const LEVELS: &[(&str, i32, &str)] = &[
    ("trace", 1, "TRACE"),
    ("trace2", 2, "TRACE2"),
    ("trace3", 3, "TRACE3"),
    ("trace4", 4, "TRACE4"),
    ("debug", 5, "DEBUG"),
    ("debug2", 6, "DEBUG2"),
    ("debug3", 7, "DEBUG3"),
    ("debug4", 8, "DEBUG4"),
    ("info", 9, "INFO"),
    ("info2", 10, "INFO2"),
    ("info3", 11, "INFO3"),
    ("info4", 12, "INFO4"),
    ("warn", 13, "WARN"),
    ("warn2", 14, "WARN2"),
    ("warn3", 15, "WARN3"),
    ("warn4", 16, "WARN4"),
    ("error", 17, "ERROR"),
    ("error2", 18, "ERROR2"),
    ("error3", 19, "ERROR3"),
    ("error4", 20, "ERROR4"),
    ("fatal", 21, "FATAL"),
    ("fatal2", 22, "FATAL2"),
    ("fatal3", 23, "FATAL3"),
    ("fatal4", 24, "FATAL4"),
];

/// What the default preset maps, besides each level's own name.
const DEFAULT_ALIASES: &[(&str, &str)] = &[
    ("warning", "warn"),
    ("err", "error"),
    ("critical", "fatal"),
    ("crit", "fatal"),
    ("panic", "fatal"),
    ("emerg", "fatal"),
    ("emergency", "fatal"),
    ("alert", "fatal"),
    ("notice", "info2"),
    ("information", "info"),
    ("dbg", "debug"),
    ("exception", "error"),
];

/// The level of a name (`warn`, `error2`): its number and text.
pub fn level(name: &str) -> Option<(i32, &'static str)> {
    LEVELS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, number, text)| (number, text))
}

/// The level a plain level word means under the default preset (`WARNING` → WARN, `CRITICAL` → FATAL).
pub fn default_level(word: &str) -> Option<(i32, &'static str)> {
    level(word).or_else(|| {
        DEFAULT_ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(word))
            .and_then(|(_, name)| level(name))
    })
}

/// A compiled mapping.
#[derive(Clone, Debug)]
pub struct Severity {
    from: Field,
    exact: HashMap<String, (i32, &'static str)>,
    ranges: Vec<(i64, i64, i32, &'static str)>,
    overwrite_text: bool,
}

impl Severity {
    /// Compiles the keys of a severity block; errors are relative to the block.
    pub fn compile(
        parse_from: &str,
        preset: Option<&str>,
        mapping: &HashMap<String, Value>,
        overwrite_text: bool,
    ) -> Result<Severity, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let from = if parse_from.is_empty() {
            errors.push(ConfigError::new("parse_from", "is required"));
            None
        } else {
            field("parse_from", parse_from, &mut errors)
        };
        let mut exact = HashMap::new();
        match preset.unwrap_or("default") {
            "default" => {
                for &(name, number, text) in LEVELS {
                    exact.insert(name.to_owned(), (number, text));
                }
                for &(alias, name) in DEFAULT_ALIASES {
                    if let Some(level) = level(name) {
                        exact.insert(alias.to_owned(), level);
                    }
                }
            }
            "none" => {}
            other => errors.push(ConfigError::new(
                "preset",
                format!("unknown preset `{other}`: expected default or none"),
            )),
        }
        let mut ranges = Vec::new();
        let mut names: Vec<&String> = mapping.keys().collect();
        names.sort();
        for name in names {
            let key = format!("mapping.{name}");
            let Some((number, text)) = level(name) else {
                let known: Vec<&str> = LEVELS.iter().map(|l| l.0).collect();
                errors.push(ConfigError::new(
                    key,
                    format!("unknown level `{name}` (known: {})", known.join(", ")),
                ));
                continue;
            };
            let values = match &mapping[name] {
                Value::Array(values) => values.clone(),
                other => vec![other.clone()],
            };
            for value in values {
                match value {
                    Value::String(s) => match http_class(&s) {
                        Some((min, max)) => ranges.push((min, max, number, text)),
                        None => {
                            exact.insert(s.to_lowercase(), (number, text));
                        }
                    },
                    Value::Number(n) => {
                        exact.insert(n.to_string(), (number, text));
                    }
                    Value::Object(range) => {
                        let bound = |k: &str| range.get(k).and_then(Value::as_i64);
                        match (bound("min"), bound("max")) {
                            (Some(min), Some(max)) if min <= max => {
                                ranges.push((min, max, number, text))
                            }
                            _ => errors.push(ConfigError::new(
                                key.clone(),
                                "a range needs integer `min` and `max`, min ≤ max",
                            )),
                        }
                    }
                    _ => errors.push(ConfigError::new(
                        key.clone(),
                        "expected a string, a number, a list or {min, max}",
                    )),
                }
            }
        }
        match from {
            Some(from) if errors.is_empty() => Ok(Severity {
                from,
                exact,
                ranges,
                overwrite_text,
            }),
            _ => Err(errors),
        }
    }

    /// Sets the entry's severity from its field; `Err` if the field is absent.
    pub fn apply_to(&self, entry: &mut Entry) -> Result<(), String> {
        let value = self
            .from
            .get(entry)
            .ok_or_else(|| "the severity field is missing".to_owned())?;
        let raw = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        let found = self.exact.get(&raw.to_lowercase()).copied().or_else(|| {
            let n: i64 = raw.parse().ok()?;
            self.ranges
                .iter()
                .find(|(min, max, _, _)| (*min..=*max).contains(&n))
                .map(|&(_, _, number, text)| (number, text))
        });
        match found {
            Some((number, text)) => {
                entry.severity_number = number;
                entry.severity_text = if self.overwrite_text {
                    text.to_owned()
                } else {
                    raw
                };
            }
            None => {
                entry.severity_number = 0;
                entry.severity_text = raw;
            }
        }
        Ok(())
    }
}

/// `2xx` → 200..=299.
fn http_class(s: &str) -> Option<(i64, i64)> {
    let bytes = s.as_bytes();
    if bytes.len() == 3 && bytes[0].is_ascii_digit() && s[1..].eq_ignore_ascii_case("xx") {
        let base = i64::from(bytes[0] - b'0') * 100;
        return Some((base, base + 99));
    }
    None
}

impl super::Apply for Severity {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        self.apply_to(entry)
    }
}

pub(super) fn compile_operator(
    id: &str,
    c: &SeverityParserConfig,
) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let severity = Severity::compile(
        &c.parse_from,
        c.preset.as_deref(),
        &c.mapping,
        c.overwrite_text,
    )?;
    Ok(Box::new(Applying {
        id: id.to_owned(),
        inner: severity,
        on_error: c.on_error,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_one, run};
    use serde_json::json;

    #[test]
    fn default_preset_and_custom_mapping() {
        let mut chain = compile_one(json!({
            "type": "severity_parser", "parse_from": "body",
            "mapping": {"error": ["oops", "5xx"], "warn": {"min": 400, "max": 499}, "info": 200}
        }))
        .expect("valid");
        let out = run(
            &mut chain,
            &[
                "WARNING", "critical", "oops", "503", "404", "200", "whatever",
            ],
        );
        let numbers: Vec<i32> = out.iter().map(|e| e.severity_number).collect();
        assert_eq!(numbers, [13, 21, 17, 17, 13, 9, 0]);
        assert_eq!(
            out[0].severity_text, "WARNING",
            "the value found, by default"
        );
    }

    #[test]
    fn overwrite_text_and_preset_none() {
        let mut chain = compile_one(json!({
            "type": "severity_parser", "parse_from": "body", "preset": "none",
            "overwrite_text": true, "mapping": {"fatal2": "boom"}
        }))
        .expect("valid");
        let out = run(&mut chain, &["boom", "error"]);
        assert_eq!(
            (out[0].severity_number, out[0].severity_text.as_str()),
            (22, "FATAL2")
        );
        assert_eq!(out[1].severity_number, 0, "preset none knows no names");
    }

    #[test]
    fn bad_mappings_are_config_errors() {
        let errors = compile_one(json!({
            "type": "severity_parser", "parse_from": "body", "preset": "loud",
            "mapping": {"severe": "x", "warn": {"min": 5}}
        }))
        .err()
        .expect("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "operators.0.preset",
                "operators.0.mapping.severe",
                "operators.0.mapping.warn"
            ]
        );
        assert!(errors[1].message.contains("fatal"), "{errors:?}");
    }
}
