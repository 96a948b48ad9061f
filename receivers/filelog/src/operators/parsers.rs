//! `json_parser` and `regex_parser`: a string field becomes a map (by default the body's text becomes
//! attributes), then the optional `timestamp:` and `severity:` blocks read the time and level from it.
//!
//! An entry that does not parse (malformed JSON, a line the regex does not match, a non-string field) follows
//! `on_error`: by default it goes on unchanged and a warning names the operator, so bad input costs its own
//! parsing only, never the entry or its neighbours.

use otlake_core::ConfigError;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::severity::{Severity, SeverityConfig};
use super::time::{TimeConfig, TimeLayout};
use super::{OnError, Operator, field};
use crate::entry::{Entry, Field};

/// `json_parser` and `regex_parser`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParserConfig {
    /// The operator's id (default: its type and position).
    pub id: Option<String>,
    /// The id of a later operator to send entries to (default: the next one).
    pub output: Option<String>,
    /// What to do with an entry that does not parse: `send` (default), `send_quiet`, `drop`, `drop_quiet`.
    pub on_error: OnError,
    /// The field to parse. Default `body`.
    pub parse_from: Option<String>,
    /// Where the parsed map goes. Default `attributes`.
    pub parse_to: Option<String>,
    /// `regex_parser` only: the regex; its named captures become the keys of the map. Required there.
    pub regex: Option<String>,
    /// Read the entry's time from a parsed field.
    pub timestamp: Option<TimeConfig>,
    /// Read the entry's severity from a parsed field.
    pub severity: Option<SeverityConfig>,
}

enum Kind {
    Json,
    Regex(Regex),
}

struct Parser {
    id: String,
    kind: std::sync::Arc<Kind>,
    from: Field,
    to: Field,
    on_error: OnError,
    time: Option<TimeLayout>,
    severity: Option<Severity>,
}

impl Parser {
    fn parse(&self, entry: &mut Entry) -> Result<(), String> {
        let text = match self.from.get(entry) {
            Some(Value::String(text)) => text,
            Some(other) => {
                return Err(format!(
                    "expected a string to parse, found {}",
                    kind_of(other)
                ));
            }
            None => return Err("the field to parse is missing".to_owned()),
        };
        let parsed = match &*self.kind {
            Kind::Json if text.trim_start().starts_with('{') => {
                match serde_json::from_str::<Object>(text) {
                    Ok(Object(map)) => Value::Object(map),
                    Err(e) => return Err(format!("not JSON: {e}")),
                }
            }
            Kind::Json => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Value::Object(map),
                Ok(other) => {
                    return Err(format!("expected a JSON object, found {}", kind_of(&other)));
                }
                Err(e) => return Err(format!("not JSON: {e}")),
            },
            Kind::Regex(regex) => {
                let captures = regex
                    .captures(text)
                    .ok_or_else(|| "the regex does not match".to_owned())?;
                let mut map = Map::new();
                for name in regex.capture_names().flatten() {
                    if let Some(m) = captures.name(name) {
                        map.insert(name.to_owned(), Value::String(m.as_str().to_owned()));
                    }
                }
                Value::Object(map)
            }
        };
        self.to.set(entry, parsed);
        if let Some(time) = &self.time {
            time.apply_to(entry)?;
        }
        if let Some(severity) = &self.severity {
            severity.apply_to(entry)?;
        }
        Ok(())
    }
}

/// A JSON object, read as `serde_json::Map`'s own deserializer reads it (a later duplicate key wins) but built
/// at once from its sorted entries rather than by one map insert per key: a log line's keys are many and
/// distinct, and the inserts were the larger part of parsing it.
struct Object(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Object;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Object, A::Error> {
                let mut entries: Vec<(String, Value)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                // `FromIterator` sorts stably and keeps the last of equal keys, as repeated inserts do.
                Ok(Object(entries.into_iter().collect()))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

impl Operator for Parser {
    fn process(&mut self, mut entry: Entry, out: &mut Vec<Entry>) {
        // Parse into a copy only when an error must leave the entry as it was: the map is set before the
        // time and severity blocks run, and those may fail.
        if self.time.is_none() && self.severity.is_none() {
            match self.parse(&mut entry) {
                Ok(()) => out.push(entry),
                Err(e) => self.on_error.handle(&self.id, &e, entry, out),
            }
            return;
        }
        let mut parsed = entry.clone();
        match self.parse(&mut parsed) {
            Ok(()) => out.push(parsed),
            Err(e) => self.on_error.handle(&self.id, &e, entry, out),
        }
    }

    fn fresh(&self) -> Box<dyn Operator> {
        Box::new(Parser {
            id: self.id.clone(),
            kind: std::sync::Arc::clone(&self.kind),
            from: self.from.clone(),
            to: self.to.clone(),
            on_error: self.on_error,
            time: self.time.clone(),
            severity: self.severity.clone(),
        })
    }
}

fn compile(
    id: &str,
    c: &ParserConfig,
    kind: Option<Kind>,
    mut errors: Vec<ConfigError>,
) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let from = field(
        "parse_from",
        c.parse_from.as_deref().unwrap_or("body"),
        &mut errors,
    );
    let to = field(
        "parse_to",
        c.parse_to.as_deref().unwrap_or("attributes"),
        &mut errors,
    );
    let time = c.timestamp.as_ref().and_then(|t| {
        TimeLayout::compile(
            &t.parse_from,
            t.layout_type.as_deref(),
            &t.layout,
            t.location.as_deref(),
        )
        .map_err(|e| errors.extend(e.into_iter().map(|e| e.under("timestamp"))))
        .ok()
    });
    let severity = c.severity.as_ref().and_then(|s| {
        Severity::compile(
            &s.parse_from,
            s.preset.as_deref(),
            &s.mapping,
            s.overwrite_text,
        )
        .map_err(|e| errors.extend(e.into_iter().map(|e| e.under("severity"))))
        .ok()
    });
    match (kind, from, to) {
        (Some(kind), Some(from), Some(to)) if errors.is_empty() => Ok(Box::new(Parser {
            id: id.to_owned(),
            kind: std::sync::Arc::new(kind),
            from,
            to,
            on_error: c.on_error,
            time,
            severity,
        })),
        _ => Err(errors),
    }
}

pub(super) fn json(id: &str, c: &ParserConfig) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    if c.regex.is_some() {
        errors.push(ConfigError::new(
            "regex",
            "json_parser has no `regex` (that is regex_parser's)",
        ));
    }
    compile(id, c, Some(Kind::Json), errors)
}

pub(super) fn regex(id: &str, c: &ParserConfig) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let kind = match c.regex.as_deref() {
        None | Some("") => {
            errors.push(ConfigError::new("regex", "is required"));
            None
        }
        Some(pattern) => match Regex::new(pattern) {
            Ok(regex) if regex.capture_names().flatten().next().is_none() => {
                errors.push(ConfigError::new(
                    "regex",
                    "needs at least one named capture (?P<name>...)",
                ));
                None
            }
            Ok(regex) => Some(Kind::Regex(regex)),
            Err(e) => {
                errors.push(ConfigError::new("regex", format!("not a regex: {e}")));
                None
            }
        },
    };
    compile(id, c, kind, errors)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_one, run};
    use serde_json::json;

    #[test]
    fn json_into_attributes_with_time_and_severity() {
        let mut chain = compile_one(json!({
            "type": "json_parser",
            "timestamp": {"parse_from": "attributes.ts", "layout_type": "epoch", "layout": "s"},
            "severity": {"parse_from": "attributes.level"}
        }))
        .expect("valid");
        let out = run(
            &mut chain,
            &[r#"{"msg": "hi", "ts": 10, "level": "warn", "n": {"a": 1}}"#],
        );
        assert_eq!(out[0].attributes["msg"], json!("hi"));
        assert_eq!(out[0].attributes["n"], json!({"a": 1}));
        assert_eq!(out[0].timestamp, Some(10_000_000_000));
        assert_eq!(out[0].severity_number, 13);
    }

    #[test]
    fn malformed_json_goes_on_unchanged_or_is_dropped_as_asked() {
        let mut chain = compile_one(json!({"type": "json_parser"})).expect("valid");
        let lines = ["{\"a\": 1", "[1, 2]", "not json at all", "{\"ok\": true}"];
        let out = run(&mut chain, &lines);
        assert_eq!(out.len(), 4, "nothing lost");
        assert_eq!(out[0].body, json!("{\"a\": 1"));
        assert!(out[0].attributes.is_empty());
        assert_eq!(out[3].attributes["ok"], json!(true));

        let mut chain =
            compile_one(json!({"type": "json_parser", "on_error": "drop_quiet"})).expect("valid");
        assert_eq!(run(&mut chain, &lines).len(), 1);

        // A failing time block leaves the entry as it was, not half-parsed.
        let mut chain = compile_one(json!({
            "type": "json_parser", "timestamp": {"parse_from": "attributes.t", "layout": "%Y"}
        }))
        .expect("valid");
        let out = run(&mut chain, &[r#"{"t": "never"}"#]);
        assert!(out[0].attributes.is_empty());
    }

    #[test]
    fn objects_parse_as_serde_json_values_do() {
        // The object path (sorted entries, built at once) against serde_json's own map, duplicates included.
        let lines = [
            r#"{"b": 1, "a": {"z": [1, {"y": null}], "c": "x"}, "b": 2, "": "", "é": 1.5e300}"#,
            r#"  {"k": "v\n\u00e9", "k": "last", "n": -9223372036854775808, "u": 18446744073709551615}"#,
            "{}",
            r#"{"unterminated": "#,
        ];
        let mut chain = compile_one(json!({"type": "json_parser"})).expect("valid");
        let out = run(&mut chain, &lines);
        for (line, entry) in lines.iter().zip(&out) {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(want)) => assert_eq!(entry.attributes, want, "{line}"),
                _ => assert!(entry.attributes.is_empty(), "unparsed: {line}"),
            }
        }
    }

    #[test]
    fn regex_named_captures() {
        let mut chain = compile_one(json!({
            "type": "regex_parser", "regex": "^(?P<level>\\w+) (?P<msg>.*)$", "parse_to": "body",
            "severity": {"parse_from": "body.level"}
        }))
        .expect("valid");
        let out = run(&mut chain, &["ERROR disk full", "no-match"]);
        assert_eq!(out[0].body, json!({"level": "ERROR", "msg": "disk full"}));
        assert_eq!(out[0].severity_number, 17);
        assert_eq!(out[1].body, json!("no-match"));
    }

    #[test]
    fn regex_config_errors() {
        for (regex, message) in [
            (json!(null), "required"),
            (json!("("), "not a regex"),
            (json!("a+"), "named"),
        ] {
            let errors = compile_one(json!({"type": "regex_parser", "regex": regex}))
                .err()
                .expect("invalid");
            assert_eq!(errors[0].path, "operators.0.regex");
            assert!(errors[0].message.contains(message), "{errors:?}");
        }
        let errors = compile_one(json!({
            "type": "json_parser", "severity": {"parse_from": "attributes.l", "mapping": {"loud": "x"}}
        }))
        .err()
        .expect("invalid");
        assert_eq!(errors[0].path, "operators.0.severity.mapping.loud");
    }
}
