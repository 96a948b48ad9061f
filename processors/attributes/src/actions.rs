//! The action engine the `attributes` and `resource` processors share: the Collector's `insert`, `update`,
//! `upsert`, `delete`, `hash`, `extract` and `convert`, compiled once from the YAML and applied in order to one
//! attribute list.
//!
//! [`Actions::would_change`] reads a list without changing or allocating anything, so a processor can let a
//! request pass untouched (still in wire form, still shared with other pipelines) when no action applies. It
//! is conservative: when it says "no", applying would change nothing, because an action that does not apply to
//! the original list leaves it as it was for the next one.

use otlake_core::ConfigError;
use otlake_core::attributes::{Attributes, ValueRef};
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{ActionConfig, ActionKind, ConvertedType};

/// When a set action writes its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetMode {
    Insert,
    Update,
    Upsert,
}

/// Where a set action's value comes from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    Literal(any_value::Value),
    FromAttribute(String),
}

/// Keys a `delete` or `hash` acts on: the named key, and every key the pattern matches.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    key: Option<String>,
    pattern: Option<Regex>,
}

impl Target {
    fn matches(&self, key: &str) -> bool {
        self.key.as_deref() == Some(key) || self.pattern.as_ref().is_some_and(|p| p.is_match(key))
    }
}

/// One compiled action.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    Set {
        key: String,
        mode: SetMode,
        source: Source,
    },
    Delete(Target),
    Hash(Target),
    Extract {
        key: String,
        pattern: Regex,
    },
    Convert {
        key: String,
        to: ConvertedType,
    },
}

/// A YAML scalar as an attribute value; `None` for lists, maps and null.
pub fn literal(value: &Value) -> Option<any_value::Value> {
    Some(match value {
        Value::String(s) => any_value::Value::StringValue(s.clone()),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64()?),
        },
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    })
}

/// Compiles `pattern` at `path`, or records why it cannot.
pub fn compile_regex(pattern: &str, path: &str, errors: &mut Vec<ConfigError>) -> Option<Regex> {
    match Regex::new(pattern) {
        Ok(regex) => Some(regex),
        Err(e) => {
            errors.push(ConfigError::new(
                path,
                format!("`{pattern}` is not a valid regex: {e}"),
            ));
            None
        }
    }
}

impl Action {
    /// Compiles one action, or records every problem with it under `path`.
    pub(crate) fn compile(
        config: &ActionConfig,
        path: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Action> {
        let before = errors.len();
        let mut error = |key: &str, message: &str| {
            errors.push(ConfigError::new(format!("{path}.{key}"), message));
        };
        let Some(kind) = config.action else {
            error(
                "action",
                "required: insert, update, upsert, delete, hash, extract or convert",
            );
            return None;
        };
        if config.from_context.is_some() {
            error(
                "from_context",
                "not supported: otlake does not carry client request metadata into items; use `value` or `from_attribute`",
            );
        }
        let key = config.key.as_ref().filter(|k| !k.is_empty());
        let uses_pattern_on_keys = matches!(kind, ActionKind::Delete | ActionKind::Hash);
        if key.is_none() && !(uses_pattern_on_keys && config.pattern.is_some()) {
            error(
                "key",
                if uses_pattern_on_keys {
                    "required (or a `pattern` for the keys)"
                } else {
                    "required"
                },
            );
        }
        let is_set = matches!(
            kind,
            ActionKind::Insert | ActionKind::Update | ActionKind::Upsert
        );
        if is_set {
            match (&config.value, &config.from_attribute) {
                (Some(_), Some(_)) => {
                    error("value", "give either `value` or `from_attribute`, not both")
                }
                (None, None) => error("value", "required for this action (or `from_attribute`)"),
                (Some(v), None) if literal(v).is_none() => {
                    error("value", "must be a string, number or boolean")
                }
                _ => {}
            }
        } else {
            if config.value.is_some() {
                error("value", "only insert, update and upsert take a `value`");
            }
            if config.from_attribute.is_some() {
                error(
                    "from_attribute",
                    "only insert, update and upsert take `from_attribute`",
                );
            }
        }
        if (is_set || kind == ActionKind::Convert) && config.pattern.is_some() {
            error("pattern", "only extract, delete and hash take a `pattern`");
        }
        if kind == ActionKind::Extract && config.pattern.is_none() {
            error("pattern", "required: a regex with named captures");
        }
        match (kind, config.converted_type) {
            (ActionKind::Convert, None) => {
                error("converted_type", "required: int, double or string")
            }
            (ActionKind::Convert, Some(_)) | (_, None) => {}
            (_, Some(_)) => error("converted_type", "only convert takes `converted_type`"),
        }
        let pattern = config
            .pattern
            .as_deref()
            .and_then(|p| compile_regex(p, &format!("{path}.pattern"), errors));
        if kind == ActionKind::Extract
            && pattern
                .as_ref()
                .is_some_and(|p| p.capture_names().flatten().next().is_none())
        {
            errors.push(ConfigError::new(
                format!("{path}.pattern"),
                "needs at least one named capture, e.g. `^(?P<user>\\w+)@`",
            ));
        }
        if errors.len() > before {
            return None;
        }
        let key_owned = key.cloned().unwrap_or_default();
        let set = |mode| {
            Some(Action::Set {
                key: key_owned.clone(),
                mode,
                source: match (&config.value, &config.from_attribute) {
                    (Some(v), _) => Source::Literal(literal(v)?),
                    (None, Some(from)) => Source::FromAttribute(from.clone()),
                    (None, None) => return None,
                },
            })
        };
        let target = || Target {
            key: key.cloned(),
            pattern: pattern.clone(),
        };
        match kind {
            ActionKind::Insert => set(SetMode::Insert),
            ActionKind::Update => set(SetMode::Update),
            ActionKind::Upsert => set(SetMode::Upsert),
            ActionKind::Delete => Some(Action::Delete(target())),
            ActionKind::Hash => Some(Action::Hash(target())),
            ActionKind::Extract => Some(Action::Extract {
                key: key_owned.clone(),
                pattern: pattern.clone()?,
            }),
            ActionKind::Convert => Some(Action::Convert {
                key: key_owned.clone(),
                to: config.converted_type?,
            }),
        }
    }

    /// Whether this action would change `attrs` (conservatively: it may say yes and change nothing). Reads
    /// a decoded list or one still on the wire alike; allocates nothing.
    fn applies<'a>(&self, attrs: impl Attributes<'a>) -> bool {
        match self {
            Action::Set { key, mode, source } => {
                if let Source::FromAttribute(from) = source
                    && matches!(attrs.get(from), None | Some(ValueRef::Empty))
                {
                    return false;
                }
                let present = attrs.has(key);
                match mode {
                    SetMode::Insert => !present,
                    SetMode::Update => present,
                    SetMode::Upsert => true,
                }
            }
            Action::Delete(target) => attrs.any(|key, _| target.matches(key)),
            Action::Hash(target) => attrs.any(|key, value| target.matches(key) && hashable(value)),
            Action::Extract { key, pattern } => attrs
                .get(key)
                .and_then(ValueRef::as_str)
                .is_some_and(|s| pattern.is_match(s)),
            Action::Convert { key, to } => attrs.get(key).is_some_and(|v| converts(v, *to)),
        }
    }

    /// Applies this action to `attrs`.
    fn apply(&self, attrs: &mut Vec<KeyValue>) {
        match self {
            Action::Set { key, mode, source } => {
                let value = match source {
                    Source::Literal(v) => v.clone(),
                    Source::FromAttribute(from) => match value_of(attrs, from) {
                        Some(v) => v.clone(),
                        None => return,
                    },
                };
                match (position(attrs, key), mode) {
                    (Some(i), SetMode::Update | SetMode::Upsert) => {
                        attrs[i].value = Some(AnyValue { value: Some(value) });
                    }
                    (None, SetMode::Insert | SetMode::Upsert) => attrs.push(kv(key, value)),
                    _ => {}
                }
            }
            Action::Delete(target) => attrs.retain(|kv| !target.matches(&kv.key)),
            Action::Hash(target) => {
                for kv in attrs.iter_mut().filter(|kv| target.matches(&kv.key)) {
                    if let Some(digest) = hash_input(kv.value.as_ref()).map(|b| sha256_hex(&b)) {
                        kv.value = Some(AnyValue {
                            value: Some(any_value::Value::StringValue(digest)),
                        });
                    }
                }
            }
            Action::Extract { key, pattern } => {
                let captures: Vec<(String, String)> = match value_of(attrs, key) {
                    Some(any_value::Value::StringValue(s)) => match pattern.captures(s) {
                        Some(caps) => pattern
                            .capture_names()
                            .flatten()
                            .filter_map(|name| {
                                caps.name(name)
                                    .map(|m| (name.to_owned(), m.as_str().to_owned()))
                            })
                            .collect(),
                        None => return,
                    },
                    _ => return,
                };
                for (name, value) in captures {
                    upsert(attrs, &name, any_value::Value::StringValue(value));
                }
            }
            Action::Convert { key, to } => {
                if let Some(i) = position(attrs, key)
                    && let Some(converted) = attrs[i]
                        .value
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                        .and_then(|v| convert(v, *to))
                {
                    attrs[i].value = Some(AnyValue {
                        value: Some(converted),
                    });
                }
            }
        }
    }
}

/// The compiled actions of one processor, applied in order.
#[derive(Clone, Debug, Default)]
pub struct Actions(Vec<Action>);

impl Actions {
    /// Compiles every action of `configs` (which must have passed validation: invalid ones are skipped).
    pub fn compile(configs: &[ActionConfig], path: &str) -> Result<Actions, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let actions = configs
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Action::compile(c, &format!("{path}.{i}"), &mut errors))
            .collect();
        if errors.is_empty() {
            Ok(Actions(actions))
        } else {
            Err(errors)
        }
    }

    /// Whether applying would change `attrs` (decoded, or read on the wire); reads only, allocates nothing.
    pub fn would_change<'a>(&self, attrs: impl Attributes<'a>) -> bool {
        self.0.iter().any(|a| a.applies(attrs))
    }

    /// Applies every action in order.
    pub fn apply(&self, attrs: &mut Vec<KeyValue>) {
        for action in &self.0 {
            if action.applies(&attrs[..]) {
                action.apply(attrs);
            }
        }
    }
}

fn position(attrs: &[KeyValue], key: &str) -> Option<usize> {
    attrs.iter().position(|kv| kv.key == key)
}

fn value_of<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn upsert(attrs: &mut Vec<KeyValue>, key: &str, value: any_value::Value) {
    match position(attrs, key) {
        Some(i) => attrs[i].value = Some(AnyValue { value: Some(value) }),
        None => attrs.push(kv(key, value)),
    }
}

/// The bytes the Collector hashes for a value: a string's bytes, an int's or a double's 8 big-endian bytes, a
/// boolean as one byte. Other values are not hashed (as in the Collector).
fn hash_input(value: Option<&AnyValue>) -> Option<Vec<u8>> {
    Some(match value?.value.as_ref()? {
        any_value::Value::StringValue(s) => s.as_bytes().to_vec(),
        any_value::Value::IntValue(i) => i.to_be_bytes().to_vec(),
        any_value::Value::DoubleValue(d) => d.to_bits().to_be_bytes().to_vec(),
        any_value::Value::BoolValue(b) => vec![u8::from(*b)],
        _ => return None,
    })
}

/// Whether `hash` changes a value: the values [`hash_input`] hashes.
fn hashable(value: ValueRef<'_>) -> bool {
    matches!(
        value,
        ValueRef::Str(_) | ValueRef::Int(_) | ValueRef::Double(_) | ValueRef::Bool(_)
    )
}

/// SHA-256 in lowercase hex (the Collector's `hash`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `value` as `to`, or `None` when it does not convert (the Collector then leaves it unchanged).
fn convert(value: &any_value::Value, to: ConvertedType) -> Option<any_value::Value> {
    use any_value::Value as V;
    Some(match (to, value) {
        (ConvertedType::Int, V::IntValue(i)) => V::IntValue(*i),
        (ConvertedType::Int, V::DoubleValue(d)) if d.is_finite() => V::IntValue(d.trunc() as i64),
        (ConvertedType::Int, V::BoolValue(b)) => V::IntValue(i64::from(*b)),
        (ConvertedType::Int, V::StringValue(s)) => V::IntValue(s.trim().parse().ok()?),
        (ConvertedType::Double, V::DoubleValue(d)) => V::DoubleValue(*d),
        (ConvertedType::Double, V::IntValue(i)) => V::DoubleValue(*i as f64),
        (ConvertedType::Double, V::BoolValue(b)) => V::DoubleValue(f64::from(u8::from(*b))),
        (ConvertedType::Double, V::StringValue(s)) => V::DoubleValue(s.trim().parse().ok()?),
        (ConvertedType::String, V::StringValue(s)) => V::StringValue(s.clone()),
        (ConvertedType::String, V::IntValue(i)) => V::StringValue(i.to_string()),
        (ConvertedType::String, V::DoubleValue(d)) => V::StringValue(d.to_string()),
        (ConvertedType::String, V::BoolValue(b)) => V::StringValue(b.to_string()),
        _ => return None,
    })
}

/// Whether converting `value` to `to` changes it: [`convert`] gives a value, and a different one.
fn converts(value: ValueRef<'_>, to: ConvertedType) -> bool {
    match (to, value) {
        (ConvertedType::Int, ValueRef::Double(d)) => d.is_finite(),
        (ConvertedType::Int, ValueRef::Bool(_)) => true,
        (ConvertedType::Int, ValueRef::Str(s)) => s.trim().parse::<i64>().is_ok(),
        (ConvertedType::Double, ValueRef::Int(_) | ValueRef::Bool(_)) => true,
        (ConvertedType::Double, ValueRef::Str(s)) => s.trim().parse::<f64>().is_ok(),
        (ConvertedType::String, ValueRef::Int(_) | ValueRef::Double(_) | ValueRef::Bool(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::test_util::kv as skv;
    use serde_json::json;

    fn actions(list: Value) -> Actions {
        let configs: Vec<ActionConfig> = serde_json::from_value(list).expect("parses");
        Actions::compile(&configs, "actions").expect("valid")
    }

    fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        value_of(attrs, key)
    }

    fn s(text: &str) -> any_value::Value {
        any_value::Value::StringValue(text.to_owned())
    }

    #[test]
    fn insert_update_upsert_follow_presence() {
        let a = actions(json!([
            {"key": "env", "value": "prod", "action": "insert"},
            {"key": "team", "value": 7, "action": "update"},
            {"key": "region", "value": true, "action": "upsert"},
            {"key": "copy", "from_attribute": "user", "action": "insert"},
        ]));
        let mut attrs = vec![skv("env", "dev"), skv("user", "ana")];
        a.apply(&mut attrs);
        assert_eq!(
            get(&attrs, "env"),
            Some(&s("dev")),
            "insert keeps an existing value"
        );
        assert_eq!(get(&attrs, "team"), None, "update does not create");
        assert_eq!(
            get(&attrs, "region"),
            Some(&any_value::Value::BoolValue(true))
        );
        assert_eq!(get(&attrs, "copy"), Some(&s("ana")));
        let mut attrs = vec![skv("team", "x")];
        a.apply(&mut attrs);
        assert_eq!(get(&attrs, "team"), Some(&any_value::Value::IntValue(7)));
        assert_eq!(get(&attrs, "env"), Some(&s("prod")));
    }

    #[test]
    fn delete_and_hash_by_key_and_pattern() {
        let a = actions(json!([
            {"key": "password", "action": "delete"},
            {"pattern": "^secret\\.", "action": "delete"},
            {"key": "user.email", "action": "hash"},
        ]));
        let mut attrs = vec![
            skv("password", "p"),
            skv("secret.a", "1"),
            skv("secret.b", "2"),
            skv("keep", "k"),
            skv("user.email", "ana@example.com"),
        ];
        a.apply(&mut attrs);
        let keys: Vec<&str> = attrs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["keep", "user.email"]);
        // SHA-256 of "ana@example.com".
        assert_eq!(
            get(&attrs, "user.email"),
            Some(&s(&sha256_hex(b"ana@example.com")))
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn extract_upserts_named_captures_and_convert_changes_types() {
        let a = actions(json!([
            {"key": "http.url", "pattern": "^https?://(?P<host>[^/]+)(?P<path>/[^?]*)", "action": "extract"},
            {"key": "retries", "converted_type": "int", "action": "convert"},
            {"key": "ratio", "converted_type": "double", "action": "convert"},
            {"key": "code", "converted_type": "string", "action": "convert"},
        ]));
        let mut attrs = vec![
            skv("http.url", "https://api.example.com/v1/chat?x=1"),
            skv("host", "old"),
            skv("retries", "3"),
            skv("ratio", "not a number"),
            KeyValue {
                key: "code".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(404)),
                }),
                ..Default::default()
            },
        ];
        a.apply(&mut attrs);
        assert_eq!(get(&attrs, "host"), Some(&s("api.example.com")));
        assert_eq!(get(&attrs, "path"), Some(&s("/v1/chat")));
        assert_eq!(get(&attrs, "retries"), Some(&any_value::Value::IntValue(3)));
        assert_eq!(get(&attrs, "ratio"), Some(&s("not a number")), "unchanged");
        assert_eq!(get(&attrs, "code"), Some(&s("404")));
    }

    #[test]
    fn would_change_is_false_exactly_when_nothing_applies() {
        let a = actions(json!([
            {"key": "password", "action": "delete"},
            {"key": "env", "value": "prod", "action": "update"},
            {"key": "n", "converted_type": "int", "action": "convert"},
        ]));
        let untouched = vec![skv("user", "ana"), skv("http.route", "/chat")];
        assert!(!a.would_change(&untouched));
        let mut copy = untouched.clone();
        a.apply(&mut copy);
        assert_eq!(copy, untouched);
        assert!(a.would_change(&[skv("password", "x")][..]));
        assert!(a.would_change(&[skv("env", "dev")][..]));
        assert!(a.would_change(&[skv("n", "5")][..]));
    }

    #[test]
    fn invalid_actions_name_their_key() {
        let configs: Vec<ActionConfig> = serde_json::from_value(json!([
            {"key": "a", "action": "insert"},
            {"action": "delete"},
            {"key": "b", "action": "extract", "pattern": "(unnamed)"},
            {"key": "c", "action": "hash", "pattern": "(["},
            {"key": "d", "action": "convert"},
            {"key": "e", "value": [1], "action": "upsert"},
            {"key": "f", "from_context": "auth.user", "action": "upsert"},
        ]))
        .expect("parses");
        let errors = Actions::compile(&configs, "actions").expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for expected in [
            "actions.0.value",
            "actions.1.key",
            "actions.2.pattern",
            "actions.3.pattern",
            "actions.4.converted_type",
            "actions.5.value",
            "actions.6.from_context",
        ] {
            assert!(paths.contains(&expected), "{expected} in {paths:?}");
        }
    }
}
