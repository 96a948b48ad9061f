//! `include` / `exclude` of the `attributes` processor: which spans, log records and metric data points the
//! actions apply to. Every configured property must match; names in a property's list match when any does;
//! `attributes` and `resources` match when all do. Reads only; allocates nothing while matching.

use otlake_core::attributes::{Attributes, ValueRef};
use otlake_core::proto::common::v1::{KeyValue, any_value};
use otlake_core::wire::look::Scope;
use otlake_core::{ConfigError, Signal};
use regex::Regex;

use crate::actions::{compile_regex, literal};
use crate::config::{AttributeCondition, MatchProperties, MatchType};

/// Names compared strictly or by regex.
#[derive(Clone, Debug)]
enum Names {
    Strict(Vec<String>),
    Regexp(Vec<Regex>),
}

impl Names {
    fn compile(
        list: &[String],
        match_type: MatchType,
        path: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Names {
        match match_type {
            MatchType::Strict => Names::Strict(list.to_vec()),
            MatchType::Regexp => Names::Regexp(
                list.iter()
                    .enumerate()
                    .filter_map(|(i, p)| compile_regex(p, &format!("{path}.{i}"), errors))
                    .collect(),
            ),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Names::Strict(v) => v.is_empty(),
            Names::Regexp(v) => v.is_empty(),
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Names::Strict(v) => v.iter().any(|n| n == text),
            Names::Regexp(v) => v.iter().any(|r| r.is_match(text)),
        }
    }
}

/// One attribute condition.
#[derive(Clone, Debug)]
enum ValueMatch {
    Any,
    Equal(any_value::Value),
    Regexp(Regex),
}

#[derive(Clone, Debug)]
struct AttributeMatch {
    key: String,
    value: ValueMatch,
}

impl AttributeMatch {
    fn compile(
        list: &[AttributeCondition],
        match_type: MatchType,
        path: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Vec<AttributeMatch> {
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let path = format!("{path}.{i}");
            if c.key.is_empty() {
                errors.push(ConfigError::new(format!("{path}.key"), "must not be empty"));
            }
            let value = match (&c.value, match_type) {
                (None, _) => ValueMatch::Any,
                (Some(v), MatchType::Strict) => match literal(v) {
                    Some(v) => ValueMatch::Equal(v),
                    None => {
                        errors.push(ConfigError::new(
                            format!("{path}.value"),
                            "must be a string, number or boolean",
                        ));
                        continue;
                    }
                },
                (Some(serde_json::Value::String(p)), MatchType::Regexp) => {
                    match compile_regex(p, &format!("{path}.value"), errors) {
                        Some(r) => ValueMatch::Regexp(r),
                        None => continue,
                    }
                }
                (Some(_), MatchType::Regexp) => {
                    errors.push(ConfigError::new(
                        format!("{path}.value"),
                        "with match_type regexp, must be a regex (a string)",
                    ));
                    continue;
                }
            };
            out.push(AttributeMatch {
                key: c.key.clone(),
                value,
            });
        }
        out
    }

    fn matches<'a>(&self, attrs: impl Attributes<'a>) -> bool {
        let Some(value) = attrs.get(&self.key) else {
            return false;
        };
        match &self.value {
            ValueMatch::Any => true,
            ValueMatch::Equal(expected) => equal(value, expected),
            ValueMatch::Regexp(r) => value.as_str().is_some_and(|s| r.is_match(s)),
        }
    }
}

/// Whether `value` is `expected` (a literal: a string, number or boolean), of the same type.
fn equal(value: ValueRef<'_>, expected: &any_value::Value) -> bool {
    use any_value::Value as V;
    match (value, expected) {
        (ValueRef::Str(a), V::StringValue(b)) => a == b,
        (ValueRef::Bool(a), V::BoolValue(b)) => a == *b,
        (ValueRef::Int(a), V::IntValue(b)) => a == *b,
        (ValueRef::Double(a), V::DoubleValue(b)) => a == *b,
        _ => false,
    }
}

/// What a matcher reads of one item. Its attribute lists are decoded (`&[KeyValue]`, the default) or read in
/// place from the wire bytes (`WireAttributes`): the same matching serves both looks.
pub struct Item<'a, A = &'a [KeyValue]> {
    pub resource: A,
    pub scope: Option<Scope<'a>>,
    pub attributes: A,
    pub kind: ItemKind<'a>,
}

/// The signal-specific part of an [`Item`].
pub enum ItemKind<'a> {
    Span {
        name: &'a str,
        kind: i32,
    },
    Log {
        body: ValueRef<'a>,
        severity_text: &'a str,
    },
    DataPoint {
        metric_name: &'a str,
    },
}

/// A compiled `include` or `exclude`.
#[derive(Clone, Debug)]
pub struct Matcher {
    services: Names,
    span_names: Names,
    span_kinds: Vec<i32>,
    log_bodies: Names,
    log_severity_texts: Names,
    metric_names: Names,
    attributes: Vec<AttributeMatch>,
    resources: Vec<AttributeMatch>,
    libraries: Vec<(Names, Option<Names>)>,
}

/// `SPAN_KIND_SERVER`, `server`, `Server` → the OTLP enum value.
fn span_kind(text: &str) -> Option<i32> {
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SPAN_KIND_").unwrap_or(&upper);
    Some(match name {
        "UNSPECIFIED" => 0,
        "INTERNAL" => 1,
        "SERVER" => 2,
        "CLIENT" => 3,
        "PRODUCER" => 4,
        "CONSUMER" => 5,
        _ => return None,
    })
}

impl Matcher {
    /// Compiles `props` (`path` is `include` or `exclude`), recording every problem.
    pub fn compile(props: &MatchProperties, path: &str, errors: &mut Vec<ConfigError>) -> Matcher {
        let t = props.match_type;
        let names = |list: &[String], key: &str, errors: &mut Vec<ConfigError>| {
            Names::compile(list, t, &format!("{path}.{key}"), errors)
        };
        let mut span_kinds = Vec::new();
        for (i, k) in props.span_kinds.iter().enumerate() {
            match span_kind(k) {
                Some(v) => span_kinds.push(v),
                None => errors.push(ConfigError::new(
                    format!("{path}.span_kinds.{i}"),
                    format!("unknown span kind `{k}`: expected SPAN_KIND_INTERNAL, _SERVER, _CLIENT, _PRODUCER, _CONSUMER or _UNSPECIFIED"),
                )),
            }
        }
        let matcher = Matcher {
            services: names(&props.services, "services", errors),
            span_names: names(&props.span_names, "span_names", errors),
            span_kinds,
            log_bodies: names(&props.log_bodies, "log_bodies", errors),
            log_severity_texts: names(&props.log_severity_texts, "log_severity_texts", errors),
            metric_names: names(&props.metric_names, "metric_names", errors),
            attributes: AttributeMatch::compile(
                &props.attributes,
                t,
                &format!("{path}.attributes"),
                errors,
            ),
            resources: AttributeMatch::compile(
                &props.resources,
                t,
                &format!("{path}.resources"),
                errors,
            ),
            libraries: props
                .libraries
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let p = format!("{path}.libraries.{i}");
                    (
                        Names::compile(std::slice::from_ref(&l.name), t, &p, errors),
                        l.version
                            .as_ref()
                            .map(|v| Names::compile(std::slice::from_ref(v), t, &p, errors)),
                    )
                })
                .collect(),
        };
        let nothing_configured = props.services.is_empty()
            && props.span_names.is_empty()
            && props.span_kinds.is_empty()
            && props.log_bodies.is_empty()
            && props.log_severity_texts.is_empty()
            && props.metric_names.is_empty()
            && props.attributes.is_empty()
            && props.resources.is_empty()
            && props.libraries.is_empty();
        if nothing_configured {
            errors.push(ConfigError::new(
                path,
                "needs at least one of services, span_names, span_kinds, log_bodies, log_severity_texts, metric_names, attributes, resources, libraries",
            ));
        }
        matcher
    }

    /// Properties that cannot match items of `signal` (a config mistake the factory reports at build).
    pub fn foreign_properties(&self, signal: Signal) -> Vec<&'static str> {
        let mut out = Vec::new();
        if signal != Signal::Traces {
            if !self.span_names.is_empty() {
                out.push("span_names");
            }
            if !self.span_kinds.is_empty() {
                out.push("span_kinds");
            }
        }
        if signal != Signal::Logs {
            if !self.log_bodies.is_empty() {
                out.push("log_bodies");
            }
            if !self.log_severity_texts.is_empty() {
                out.push("log_severity_texts");
            }
        }
        if signal != Signal::Metrics && !self.metric_names.is_empty() {
            out.push("metric_names");
        }
        out
    }

    /// Whether `item` has every configured property.
    pub fn matches<'a, A: Attributes<'a>>(&self, item: &Item<'a, A>) -> bool {
        if !self.services.is_empty() {
            match item.resource.get("service.name") {
                Some(ValueRef::Str(s)) if self.services.matches(s) => {}
                _ => return false,
            }
        }
        let kind_ok = match item.kind {
            ItemKind::Span { name, kind } => {
                (self.span_names.is_empty() || self.span_names.matches(name))
                    && (self.span_kinds.is_empty() || self.span_kinds.contains(&kind))
            }
            ItemKind::Log {
                body,
                severity_text,
            } => {
                (self.log_bodies.is_empty()
                    || body.as_str().is_some_and(|s| self.log_bodies.matches(s)))
                    && (self.log_severity_texts.is_empty()
                        || self.log_severity_texts.matches(severity_text))
            }
            ItemKind::DataPoint { metric_name } => {
                self.metric_names.is_empty() || self.metric_names.matches(metric_name)
            }
        };
        if !kind_ok {
            return false;
        }
        if !self.libraries.is_empty() {
            let Some(scope) = item.scope else {
                return false;
            };
            if !self.libraries.iter().any(|(name, version)| {
                name.matches(scope.name)
                    && version.as_ref().is_none_or(|v| v.matches(scope.version))
            }) {
                return false;
            }
        }
        self.attributes.iter().all(|a| a.matches(item.attributes))
            && self.resources.iter().all(|a| a.matches(item.resource))
    }
}
