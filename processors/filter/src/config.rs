//! The `filter` processor's YAML: the Collector's keys (`error_mode`, `traces.span`, `traces.spanevent`,
//! `logs.log_record`, `metrics.metric`, `metrics.datapoint`), each a list of OTTL conditions in the subset
//! [`crate::ottl`] parses. Parsed by the factory (`validate`, then `build`); pure, no I/O.

use otlake_core::ConfigError;
use serde::Deserialize;

use crate::ottl::{Condition, Context};

/// What happens when a condition cannot be evaluated (the Collector's `error_mode`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorMode {
    /// Log the error and treat the condition as false.
    Ignore,
    /// Treat the condition as false without logging.
    Silent,
    /// Refuse the request (the Collector's default).
    #[default]
    Propagate,
}

/// `traces` conditions.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConditions {
    /// A span matching any of these is dropped (with its events and links).
    pub span: Vec<String>,
    /// A span event matching any of these is removed from its span.
    pub spanevent: Vec<String>,
}

/// `logs` conditions.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConditions {
    /// A log record matching any of these is dropped.
    pub log_record: Vec<String>,
}

/// `metrics` conditions.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConditions {
    /// A metric matching any of these is dropped with all its data points.
    pub metric: Vec<String>,
    /// A data point matching any of these is dropped; a metric left without data points is dropped too.
    pub datapoint: Vec<String>,
}

/// `processors.filter` in the YAML.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// `propagate` (default), `ignore` or `silent`.
    pub error_mode: ErrorMode,
    /// Span and span event conditions.
    pub traces: TracesConditions,
    /// Log record conditions.
    pub logs: LogsConditions,
    /// Metric and data point conditions.
    pub metrics: MetricsConditions,
}

/// The conditions of one list, parsed.
pub fn parse_list(
    list: &[String],
    context: Context,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<Condition> {
    list.iter()
        .enumerate()
        .filter_map(|(i, text)| match Condition::parse(text, context) {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(ConfigError::new(
                    format!("{path}.{i}"),
                    format!("`{text}`: {e}"),
                ));
                None
            }
        })
        .collect()
}

impl FilterConfig {
    /// The lists with their YAML paths and OTTL contexts.
    pub fn lists(&self) -> [(&[String], Context, &'static str); 5] {
        [
            (&self.traces.span, Context::Span, "traces.span"),
            (
                &self.traces.spanevent,
                Context::SpanEvent,
                "traces.spanevent",
            ),
            (&self.logs.log_record, Context::LogRecord, "logs.log_record"),
            (&self.metrics.metric, Context::Metric, "metrics.metric"),
            (
                &self.metrics.datapoint,
                Context::DataPoint,
                "metrics.datapoint",
            ),
        ]
    }

    /// Every problem with the configuration: each condition that does not parse, with its key and the
    /// construct outside the supported subset.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        for (list, context, path) in self.lists() {
            parse_list(list, context, path, &mut errors);
        }
        if self.lists().iter().all(|(list, _, _)| list.is_empty()) {
            errors.push(ConfigError::new(
                "",
                "no conditions: give traces.span, traces.spanevent, logs.log_record, metrics.metric or metrics.datapoint",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}
