//! The redaction engine: which keys go, which values are masked, what content attributes become. It works on
//! one attribute list or value at a time; `processor` walks a request with it.
//!
//! Every operation comes in two forms: `needs_*` reads only and allocates nothing (so a request with nothing
//! to redact passes untouched), `redact_*` changes. `needs_*` is conservative: when it says no, redacting
//! would change nothing.

use std::collections::BTreeSet;

use otlake_core::ConfigError;
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use regex::Regex;
use sha2::{Digest, Sha256};

use crate::config::{
    CONTENT_KEYS, ContentMode, HashFunction, RedactionConfig, Summary, compile_all,
};
use crate::patterns::{BUILTIN, ValuePattern};

/// What the Collector writes in place of masked text.
pub const MASK: &str = "****";

/// What was done to one item, for the summary attributes.
#[derive(Debug, Default)]
pub struct Report {
    /// Keys removed (not allowed, or content dropped).
    pub redacted: BTreeSet<String>,
    /// Keys whose value was masked, hashed or truncated (wholly or in part).
    pub masked: BTreeSet<String>,
}

impl Report {
    fn is_empty(&self) -> bool {
        self.redacted.is_empty() && self.masked.is_empty()
    }
}

/// What the key of one attribute decides before its value is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// An `ignored_keys` key: left exactly as it is.
    Ignored,
    /// Removed, or its whole value replaced (a key not allowed, a content key to drop, mask or hash, a blocked
    /// key pattern).
    Changes,
    /// Changed only if a string inside its value has a blocked part.
    ValueDecides,
    /// A content key with `truncate: n`: changed if its value's text is longer than `n` characters, or else
    /// as [`KeyVerdict::ValueDecides`].
    TruncatesPast(usize),
}

/// A compiled `redaction` section.
pub struct Redactor {
    allow_all_keys: bool,
    allowed_keys: BTreeSet<String>,
    ignored_keys: BTreeSet<String>,
    blocked_keys: Vec<Regex>,
    values: Vec<ValuePattern>,
    /// All of `values` in one regex over bytes: one pass over a value tells that none of them can match (the
    /// common case), on a wire value's bytes without checking their UTF-8 again. `None` when there are none.
    any_value: Option<regex::bytes::Regex>,
    allowed_values: Vec<Regex>,
    hash: bool,
    summary: Summary,
    content: Vec<(String, ContentMode)>,
}

/// `key` is `content_key` or one of its dotted children.
fn covers(content_key: &str, key: &str) -> bool {
    key.strip_prefix(content_key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

impl Redactor {
    /// Compiles a validated config.
    pub fn new(config: &RedactionConfig) -> Result<Redactor, Vec<ConfigError>> {
        config.validate()?;
        let mut errors = Vec::new();
        let mut values: Vec<ValuePattern> =
            compile_all(&config.blocked_values, "blocked_values", &mut errors)
                .into_iter()
                .map(|regex| ValuePattern { regex, luhn: false })
                .collect();
        for name in &config.builtin_patterns {
            if let Some((_, re)) = BUILTIN.iter().find(|(n, _)| n == name) {
                match Regex::new(re) {
                    Ok(regex) => values.push(ValuePattern {
                        regex,
                        luhn: name == "card_number",
                    }),
                    Err(e) => errors.push(ConfigError::new("builtin_patterns", e.to_string())),
                }
            }
        }
        let mut content: Vec<(String, ContentMode)> = config
            .content
            .iter()
            .map(|(k, m)| (k.clone(), *m))
            .collect();
        for key in CONTENT_KEYS {
            if !config.content.contains_key(*key) {
                content.push(((*key).to_owned(), config.content_default));
            }
        }
        content.retain(|(_, m)| *m != ContentMode::Scan);
        // Every pattern compiled as a `str` regex above also compiles over bytes, with the same matches on UTF-8.
        let any_value = if values.is_empty() {
            None
        } else {
            let joined = values
                .iter()
                .map(|p| format!("(?:{})", p.regex.as_str()))
                .collect::<Vec<_>>()
                .join("|");
            match regex::bytes::Regex::new(&joined) {
                Ok(any) => Some(any),
                Err(e) => {
                    errors.push(ConfigError::new("blocked_values", e.to_string()));
                    None
                }
            }
        };
        let redactor = Redactor {
            allow_all_keys: config.allow_all_keys,
            allowed_keys: config.allowed_keys.iter().cloned().collect(),
            ignored_keys: config.ignored_keys.iter().cloned().collect(),
            blocked_keys: compile_all(
                &config.blocked_key_patterns,
                "blocked_key_patterns",
                &mut errors,
            ),
            values,
            any_value,
            allowed_values: compile_all(&config.allowed_values, "allowed_values", &mut errors),
            hash: config.hash_function == HashFunction::Sha256,
            summary: config.summary,
            content,
        };
        if errors.is_empty() {
            Ok(redactor)
        } else {
            Err(errors)
        }
    }

    fn content_mode(&self, key: &str) -> Option<ContentMode> {
        self.content
            .iter()
            .find(|(k, _)| covers(k, key))
            .map(|(_, m)| *m)
    }

    fn removes(&self, key: &str, top: bool) -> bool {
        top && !self.allow_all_keys && !self.allowed_keys.contains(key)
    }

    fn blocked_key(&self, key: &str) -> bool {
        self.blocked_keys.iter().any(|r| r.is_match(key))
    }

    /// Whether `text` has a blocked part (reads only).
    pub fn text_needs(&self, text: &str) -> bool {
        self.bytes_may_need(text.as_bytes())
            && !self.allowed_values.iter().any(|r| r.is_match(text))
            && self.values.iter().any(|p| p.finds_in(text))
    }

    /// Whether the UTF-8 `bytes` of a string (a wire value) have a blocked part: decided on the bytes when no
    /// pattern can match, and only otherwise checked as text. `None` when they are not UTF-8.
    pub fn utf8_needs(&self, bytes: &[u8]) -> Option<bool> {
        if !self.bytes_may_need(bytes) {
            return Some(false);
        }
        std::str::from_utf8(bytes)
            .ok()
            .map(|text| self.text_needs(text))
    }

    /// Whether any value pattern can match `bytes` (one pass of the joined regex).
    fn bytes_may_need(&self, bytes: &[u8]) -> bool {
        self.any_value
            .as_ref()
            .is_some_and(|any| any.is_match(bytes))
    }

    /// `text` with every blocked part masked, or `None` when nothing is blocked.
    pub fn mask_text(&self, text: &str) -> Option<String> {
        if !self.text_needs(text) {
            return None;
        }
        let mut ranges: Vec<(usize, usize)> =
            self.values.iter().flat_map(|p| p.ranges(text)).collect();
        ranges.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in ranges {
            if end <= at {
                continue;
            }
            let start = start.max(at);
            out.push_str(&text[at..start]);
            out.push_str(&self.replacement(&text[start..end]));
            at = end;
        }
        out.push_str(&text[at..]);
        Some(out)
    }

    fn replacement(&self, text: &str) -> String {
        if self.hash {
            hex::encode(Sha256::digest(text.as_bytes()))
        } else {
            MASK.to_owned()
        }
    }

    /// Whether any string inside `value` has a blocked part.
    pub fn value_needs(&self, value: &AnyValue) -> bool {
        match &value.value {
            Some(any_value::Value::StringValue(s)) => self.text_needs(s),
            Some(any_value::Value::ArrayValue(a)) => a.values.iter().any(|v| self.value_needs(v)),
            Some(any_value::Value::KvlistValue(kv)) => self.attributes_need(&kv.values, false),
            _ => false,
        }
    }

    /// Masks blocked parts of every string inside `value`; whether anything changed.
    pub fn redact_value(&self, value: &mut AnyValue, report: &mut Report) -> bool {
        match &mut value.value {
            Some(any_value::Value::StringValue(s)) => match self.mask_text(s) {
                Some(masked) => {
                    *s = masked;
                    true
                }
                None => false,
            },
            Some(any_value::Value::ArrayValue(a)) => {
                let mut changed = false;
                for v in &mut a.values {
                    changed |= self.redact_value(v, report);
                }
                changed
            }
            Some(any_value::Value::KvlistValue(kv)) => {
                let before = report.masked.len() + report.redacted.len();
                self.redact_attributes(&mut kv.values, false, report);
                report.masked.len() + report.redacted.len() != before
            }
            _ => false,
        }
    }

    /// What the key of one attribute decides on its own. `top`: the attributes of a span, event, link, log
    /// record or data point (where `allowed_keys` applies), not of a resource, scope or nested map.
    pub fn key_verdict(&self, key: &str, top: bool) -> KeyVerdict {
        if self.ignored_keys.contains(key) {
            return KeyVerdict::Ignored;
        }
        if self.removes(key, top) || self.blocked_key(key) {
            return KeyVerdict::Changes;
        }
        match self.content_mode(key) {
            None | Some(ContentMode::Scan) => KeyVerdict::ValueDecides,
            Some(ContentMode::Truncate(n)) => KeyVerdict::TruncatesPast(n),
            Some(ContentMode::Drop | ContentMode::Mask | ContentMode::Hash) => KeyVerdict::Changes,
        }
    }

    /// Whether redacting `attrs` would change anything (`top` as in [`Redactor::key_verdict`]).
    pub fn attributes_need(&self, attrs: &[KeyValue], top: bool) -> bool {
        attrs.iter().any(|kv| match self.key_verdict(&kv.key, top) {
            KeyVerdict::Ignored => false,
            KeyVerdict::Changes => true,
            KeyVerdict::ValueDecides => kv.value.as_ref().is_some_and(|v| self.value_needs(v)),
            KeyVerdict::TruncatesPast(n) => kv
                .value
                .as_ref()
                .is_some_and(|v| longer_than(v, n) || self.value_needs(v)),
        })
    }

    /// Redacts `attrs` in place, recording what was done.
    pub fn redact_attributes(&self, attrs: &mut Vec<KeyValue>, top: bool, report: &mut Report) {
        attrs.retain_mut(|kv| {
            if self.ignored_keys.contains(&kv.key) {
                return true;
            }
            if self.removes(&kv.key, top) {
                report.redacted.insert(kv.key.clone());
                return false;
            }
            let whole = |text: String| {
                Some(AnyValue {
                    value: Some(any_value::Value::StringValue(text)),
                })
            };
            match self.content_mode(&kv.key) {
                Some(ContentMode::Drop) => {
                    report.redacted.insert(kv.key.clone());
                    return false;
                }
                Some(ContentMode::Mask) => {
                    kv.value = whole(MASK.to_owned());
                    report.masked.insert(kv.key.clone());
                    return true;
                }
                Some(ContentMode::Hash) => {
                    let text = kv.value.as_ref().map(value_text).unwrap_or_default();
                    kv.value = whole(hex::encode(Sha256::digest(text.as_bytes())));
                    report.masked.insert(kv.key.clone());
                    return true;
                }
                Some(ContentMode::Truncate(n)) => {
                    let text = kv.value.as_ref().map(value_text).unwrap_or_default();
                    if text.chars().count() > n {
                        let mut kept: String = text.chars().take(n).collect();
                        kept.push('…');
                        kv.value = whole(kept);
                        report.masked.insert(kv.key.clone());
                    }
                }
                Some(ContentMode::Scan) | None => {}
            }
            if self.blocked_key(&kv.key) {
                kv.value = whole(MASK.to_owned());
                report.masked.insert(kv.key.clone());
                return true;
            }
            if let Some(value) = kv.value.as_mut()
                && self.redact_value(value, report)
            {
                report.masked.insert(kv.key.clone());
            }
            true
        });
    }

    /// Writes the summary attributes of `report` onto an item's attributes.
    pub fn summarise(&self, attrs: &mut Vec<KeyValue>, report: &Report) {
        if self.summary == Summary::Silent || report.is_empty() {
            return;
        }
        let mut put = |key: &str, value: any_value::Value| {
            attrs.retain(|kv| kv.key != key);
            attrs.push(KeyValue {
                key: key.to_owned(),
                value: Some(AnyValue { value: Some(value) }),
                ..Default::default()
            });
        };
        for (name, keys) in [("redacted", &report.redacted), ("masked", &report.masked)] {
            if keys.is_empty() {
                continue;
            }
            if self.summary == Summary::Debug {
                let list = keys.iter().cloned().collect::<Vec<_>>().join(",");
                put(
                    &format!("redaction.{name}.keys"),
                    any_value::Value::StringValue(list),
                );
            }
            put(
                &format!("redaction.{name}.count"),
                any_value::Value::IntValue(keys.len() as i64),
            );
        }
    }
}

/// A value as text, for hashing or truncating a whole content value (JSON-ish for lists and maps).
/// Whether `truncate: n` cuts `value` (its text as [`value_text`] writes it, counted in characters).
fn longer_than(value: &AnyValue, n: usize) -> bool {
    match &value.value {
        None => false,
        Some(any_value::Value::StringValue(s)) => s.len() > n && s.chars().count() > n,
        Some(_) => value_text(value).chars().count() > n,
    }
}

fn value_text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex::encode(b),
        Some(any_value::Value::ArrayValue(a)) => {
            format!(
                "[{}]",
                a.values
                    .iter()
                    .map(value_text)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        Some(any_value::Value::KvlistValue(kv)) => format!(
            "{{{}}}",
            kv.values
                .iter()
                .map(|kv| format!(
                    "{}:{}",
                    kv.key,
                    kv.value.as_ref().map(value_text).unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
        // A string-table index (profiles only) carries no text of its own.
        Some(any_value::Value::StringValueStrindex(_)) | None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::parse_config;
    use otlake_core::test_util::kv;
    use serde_json::json;

    fn redactor(config: serde_json::Value) -> Redactor {
        let config: RedactionConfig = parse_config(&config).expect("parses");
        Redactor::new(&config).expect("valid")
    }

    fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
        attrs
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| value_text(kv.value.as_ref().expect("value")))
    }

    #[test]
    fn the_collector_keys() {
        let r = redactor(json!({
            "allowed_keys": ["description", "card", "token", "note"],
            "ignored_keys": ["raw"],
            "blocked_values": ["4[0-9]{12}(?:[0-9]{3})?"],
            "allowed_values": ["^test-"],
            "blocked_key_patterns": ["^tok"],
        }));
        let mut attrs = vec![
            kv("description", "plain"),
            kv("card", "paid with 4111111111111111 today"),
            kv("token", "abc"),
            kv("note", "test-4111111111111111"),
            kv("raw", "4111111111111111"),
            kv("secret", "x"),
        ];
        assert!(r.attributes_need(&attrs, true));
        let mut report = Report::default();
        r.redact_attributes(&mut attrs, true, &mut report);
        assert_eq!(text(&attrs, "description").as_deref(), Some("plain"));
        assert_eq!(
            text(&attrs, "card").as_deref(),
            Some("paid with **** today")
        );
        assert_eq!(text(&attrs, "token").as_deref(), Some("****"));
        assert_eq!(
            text(&attrs, "note").as_deref(),
            Some("test-4111111111111111"),
            "allowed value"
        );
        assert_eq!(
            text(&attrs, "raw").as_deref(),
            Some("4111111111111111"),
            "ignored key"
        );
        assert_eq!(text(&attrs, "secret"), None, "not allowed");
        r.summarise(&mut attrs, &report);
        assert_eq!(
            text(&attrs, "redaction.redacted.keys").as_deref(),
            Some("secret")
        );
        assert_eq!(
            text(&attrs, "redaction.masked.keys").as_deref(),
            Some("card,token")
        );
        assert_eq!(text(&attrs, "redaction.masked.count").as_deref(), Some("2"));
    }

    #[test]
    fn content_modes_and_builtins_with_hashing() {
        let r = redactor(json!({
            "allow_all_keys": true,
            "hash_function": "sha256",
            "builtin_patterns": ["email", "card_number"],
            "content": {"gen_ai.input.messages": "drop", "gen_ai.output.messages": {"truncate": 12}, "my.prompt": "mask"},
            "content_default": "hash",
            "summary": "silent",
        }));
        let mut attrs = vec![
            kv("gen_ai.input.messages", "[{\"role\":\"user\"}]"),
            kv(
                "gen_ai.output.messages",
                "write to ana@example.com please, and more",
            ),
            kv("gen_ai.prompt.0.content", "secret prompt"),
            kv("my.prompt", "x"),
            kv(
                "user",
                "mail bob@example.org card 4111-1111-1111-1111 order 4111-1111-1111-1112",
            ),
        ];
        let mut report = Report::default();
        r.redact_attributes(&mut attrs, true, &mut report);
        let sha = |t: &str| hex::encode(Sha256::digest(t.as_bytes()));
        assert_eq!(text(&attrs, "gen_ai.input.messages"), None);
        assert_eq!(
            text(&attrs, "gen_ai.output.messages").as_deref(),
            Some("write to ana…"),
            "truncated before the e-mail address could be recognised"
        );
        assert_eq!(
            text(&attrs, "gen_ai.prompt.0.content"),
            Some(sha("secret prompt"))
        );
        assert_eq!(text(&attrs, "my.prompt").as_deref(), Some("****"));
        assert_eq!(
            text(&attrs, "user"),
            Some(format!(
                "mail {} card {} order 4111-1111-1111-1112",
                sha("bob@example.org"),
                sha("4111-1111-1111-1111")
            ))
        );
        let before = attrs.len();
        r.summarise(&mut attrs, &report);
        assert_eq!(attrs.len(), before, "silent");
    }

    #[test]
    fn nothing_to_do_reads_only() {
        let r = redactor(json!({"allow_all_keys": true, "builtin_patterns": ["email", "api_key"]}));
        assert!(!r.attributes_need(&[kv("a", "nothing here"), kv("b", "sk-short")], true));
        assert!(r.attributes_need(&[kv("a", "key sk-AbCdEfGhIjKlMnOpQrSt")], true));
        let strict = redactor(json!({"allowed_keys": ["a"]}));
        assert!(
            strict.attributes_need(&[kv("b", "y")], true),
            "a key not allowed"
        );
        assert!(
            !strict.attributes_need(&[kv("b", "y")], false),
            "resource keys are never removed"
        );
        let truncating = redactor(json!({
            "allow_all_keys": true,
            "builtin_patterns": ["email"],
            "content": {"gen_ai.system_instructions": "hash"},
            "content_default": {"truncate": 10},
        }));
        assert!(
            !truncating.attributes_need(&[kv("gen_ai.prompt", "short")], true),
            "a content value within its truncation length is left as it is"
        );
        assert!(truncating.attributes_need(&[kv("gen_ai.prompt", "longer than ten")], true));
        assert!(truncating.attributes_need(&[kv("gen_ai.prompt", "a@example.com")], true));
        assert!(truncating.attributes_need(&[kv("gen_ai.system_instructions", "x")], true));
    }
}
