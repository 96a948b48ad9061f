//! The OTTL subset the `filter` processor understands, parsed by hand and evaluated without allocating:
//! paths (`name`, `kind`, `status.code`, `attributes["k"]`, `resource.attributes["k"]`,
//! `instrumentation_scope.name`, `severity_number`, `severity_text`, `body`, `metric.name`, `metric.type`),
//! string, number and boolean literals, `nil`, the OTLP enum names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`,
//! `SEVERITY_NUMBER_WARN`, `METRIC_DATA_TYPE_SUM`, …), `==` `!=` `<` `<=` `>` `>=`, `and` `or` `not`,
//! parentheses and `IsMatch(target, "regex")`.
//!
//! Anything else (another function or converter, a path outside the list or outside its context, nested map
//! indexing, arithmetic) is refused when the config is validated, with a message naming the construct. Within
//! the subset no condition can fail at run time: a missing attribute is `nil`, a comparison of different types
//! is false (`!=` true), and `IsMatch` on `nil` is false.

mod eval;
mod lexer;
mod parser;

use otlake_core::attributes::Attributes;
use regex::Regex;

pub use eval::Item;
pub use lexer::CmpOp;

/// Why a condition is outside the subset (or not OTTL at all).
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The OTTL context a condition list is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Span,
    SpanEvent,
    LogRecord,
    Metric,
    DataPoint,
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::Span => "span",
            Context::SpanEvent => "spanevent",
            Context::LogRecord => "log_record",
            Context::Metric => "metric",
            Context::DataPoint => "datapoint",
        }
    }
}

/// A value a path reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Path {
    /// The span's, span event's or metric's name.
    Name,
    Kind,
    StatusCode,
    Attribute(String),
    ResourceAttribute(String),
    ScopeName,
    SeverityNumber,
    SeverityText,
    Body,
    MetricName,
    MetricType,
}

/// A literal of a condition.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Literal(Literal),
    Path(Path),
}

/// A parsed condition.
#[derive(Clone, Debug)]
pub enum Condition {
    Const(bool),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Compare(Operand, CmpOp, Operand),
    IsMatch(Operand, Regex),
}

impl Condition {
    /// Parses `text` as a condition of `context`.
    pub fn parse(text: &str, context: Context) -> Result<Condition, ParseError> {
        parser::parse(text, context)
    }

    /// Whether `item` (decoded, or read on the wire) matches.
    pub fn matches<'a, A: Attributes<'a>>(&'a self, item: &Item<'a, A>) -> bool {
        eval::matches(self, item)
    }
}

/// Whether any condition of `list` matches `item`.
pub fn any_matches<'a, A: Attributes<'a>>(list: &'a [Condition], item: &Item<'a, A>) -> bool {
    list.iter().any(|c| c.matches(item))
}
