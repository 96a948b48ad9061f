//! Rules evaluated before the ratio, and the per-trace state they are evaluated on.
//!
//! A rule's conditions must all hold for a trace: its span conditions (status, attribute) on one and the same
//! span, its `min_root_duration` on the trace's root span. Rules are tried in order and the first that
//! matches sets the trace's threshold; a trace no rule matches gets the default ratio. Decisions stay
//! consistent: a rule's percentage is applied to the same randomness as the ratio.

use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::proto::trace::v1::{Span, status};

use crate::config::{Rule, StatusMatch};
use crate::threshold::Threshold;

struct CompiledRule {
    status: Option<i32>,
    attribute: Option<(String, Vec<String>)>,
    min_root_duration_nanos: Option<u64>,
    threshold: Threshold,
}

impl CompiledRule {
    fn has_span_conditions(&self) -> bool {
        self.status.is_some() || self.attribute.is_some()
    }

    fn span_matches(&self, span: &Span, resource: &[KeyValue]) -> bool {
        if let Some(code) = self.status {
            let actual = span.status.as_ref().map_or(0, |s| s.code);
            if actual != code {
                return false;
            }
        }
        if let Some((key, values)) = &self.attribute {
            let found = find(&span.attributes, key).or_else(|| find(resource, key));
            let Some(value) = found else {
                return false;
            };
            if !values.is_empty() && !values.iter().any(|v| value_equals(value, v)) {
                return false;
            }
        }
        true
    }
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn value_equals(value: &AnyValue, text: &str) -> bool {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s == text,
        Some(any_value::Value::BoolValue(b)) => text.parse() == Ok(*b),
        Some(any_value::Value::IntValue(i)) => text.parse() == Ok(*i),
        Some(any_value::Value::DoubleValue(d)) => text.parse() == Ok(*d),
        _ => false,
    }
}

/// The rules and the default ratio, ready to evaluate.
pub struct Rules {
    rules: Vec<CompiledRule>,
    default: Threshold,
}

/// What the spans seen so far of one trace say about the rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceEvidence {
    /// Bit i: some span satisfied rule i's span conditions (or rule i has none).
    span_hits: u64,
    /// The root span's duration, once seen.
    root_duration_nanos: Option<u64>,
}

impl Rules {
    pub fn new(rules: &[Rule], default_percentage: f64, precision: u8) -> Self {
        let status_code = |s: StatusMatch| match s {
            StatusMatch::Unset => status::StatusCode::Unset as i32,
            StatusMatch::Ok => status::StatusCode::Ok as i32,
            StatusMatch::Error => status::StatusCode::Error as i32,
        };
        Rules {
            rules: rules
                .iter()
                .map(|r| CompiledRule {
                    status: r.status_code.map(status_code),
                    attribute: r
                        .attribute
                        .as_ref()
                        .map(|a| (a.key.clone(), a.values.clone())),
                    min_root_duration_nanos: r
                        .min_root_duration
                        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                    threshold: Threshold::from_percentage(r.sampling_percentage, precision),
                })
                .collect(),
            default: Threshold::from_percentage(default_percentage, precision),
        }
    }

    /// The threshold of the default ratio.
    pub fn default_threshold(&self) -> Threshold {
        self.default
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds one span's evidence to its trace's.
    pub fn observe(&self, evidence: &mut TraceEvidence, span: &Span, resource: &[KeyValue]) {
        for (i, rule) in self.rules.iter().enumerate() {
            let bit = 1u64 << i;
            if evidence.span_hits & bit == 0
                && (!rule.has_span_conditions() || rule.span_matches(span, resource))
            {
                evidence.span_hits |= bit;
            }
        }
        if span.parent_span_id.is_empty() {
            evidence.root_duration_nanos = Some(
                span.end_time_unix_nano
                    .saturating_sub(span.start_time_unix_nano),
            );
        }
    }

    /// The threshold for a trace with this evidence: the first matching rule's, else the default.
    pub fn decide(&self, evidence: &TraceEvidence) -> Threshold {
        self.matching_rule(evidence).unwrap_or(self.default)
    }

    /// The first matching rule's threshold, or [`Threshold::NEVER`] when no rule matches.
    pub fn decide_rules_only(&self, evidence: &TraceEvidence) -> Threshold {
        self.matching_rule(evidence).unwrap_or(Threshold::NEVER)
    }

    fn matching_rule(&self, evidence: &TraceEvidence) -> Option<Threshold> {
        self.rules.iter().enumerate().find_map(|(i, rule)| {
            let spans_ok = evidence.span_hits & (1u64 << i) != 0;
            let root_ok = match rule.min_root_duration_nanos {
                None => true,
                Some(min) => evidence.root_duration_nanos.is_some_and(|d| d >= min),
            };
            (spans_ok && root_ok).then_some(rule.threshold)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AttributeMatch;
    use otlake_core::proto::trace::v1::Status;
    use otlake_core::test_util::kv;
    use std::time::Duration;

    fn rules() -> Rules {
        Rules::new(
            &[
                Rule {
                    status_code: Some(StatusMatch::Error),
                    ..Default::default()
                },
                Rule {
                    min_root_duration: Some(Duration::from_secs(2)),
                    sampling_percentage: 50.0,
                    ..Default::default()
                },
                Rule {
                    attribute: Some(AttributeMatch {
                        key: "gen_ai.operation.name".into(),
                        values: vec!["chat".into()],
                    }),
                    sampling_percentage: 25.0,
                    ..Default::default()
                },
            ],
            1.0,
            4,
        )
    }

    fn span(parent: bool, seconds: u64) -> Span {
        Span {
            parent_span_id: if parent { vec![1; 8] } else { Vec::new() },
            start_time_unix_nano: 0,
            end_time_unix_nano: seconds * 1_000_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn first_matching_rule_sets_the_threshold() {
        let rules = rules();
        let decide = |spans: &[Span], resource: &[KeyValue]| {
            let mut evidence = TraceEvidence::default();
            for s in spans {
                rules.observe(&mut evidence, s, resource);
            }
            rules.decide(&evidence)
        };
        let pct = |p| Threshold::from_percentage(p, 4);
        assert_eq!(decide(&[span(true, 1)], &[]), pct(1.0));

        let mut error = span(true, 1);
        error.status = Some(Status {
            code: status::StatusCode::Error as i32,
            ..Default::default()
        });
        assert_eq!(decide(&[span(false, 5), error], &[]), Threshold::ALWAYS);
        assert_eq!(decide(&[span(false, 5)], &[]), pct(50.0));
        assert_eq!(decide(&[span(false, 1)], &[]), pct(1.0));

        let mut chat = span(true, 1);
        chat.attributes.push(kv("gen_ai.operation.name", "chat"));
        assert_eq!(decide(&[chat], &[]), pct(25.0));
        // Found on the resource too; another value does not match.
        assert_eq!(
            decide(&[span(true, 1)], &[kv("gen_ai.operation.name", "chat")]),
            pct(25.0)
        );
        assert_eq!(
            decide(
                &[span(true, 1)],
                &[kv("gen_ai.operation.name", "embeddings")]
            ),
            pct(1.0)
        );
    }
}
