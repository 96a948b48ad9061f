//! Evaluating a parsed condition against one item, borrowing everything (no allocation, except `IsMatch` on
//! a number or boolean, which formats it).

use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};

use super::{CmpOp, Condition, Literal, Operand, Path, lookup};

/// What a condition can read of one item; each context fills what its paths read (validation refuses the
/// others), the rest stays at its default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Item<'a> {
    pub name: &'a str,
    pub kind: i32,
    pub status_code: i32,
    pub attributes: &'a [KeyValue],
    pub resource: &'a [KeyValue],
    pub scope_name: &'a str,
    pub severity_number: i32,
    pub severity_text: &'a str,
    pub body: Option<&'a AnyValue>,
    pub metric_name: &'a str,
    pub metric_type: i32,
}

/// A value at evaluation time.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// Bytes, a list or a map: equal to nothing in the subset.
    Other,
}

fn of_any(value: Option<&AnyValue>) -> Value<'_> {
    match value.and_then(|v| v.value.as_ref()) {
        None => Value::Nil,
        Some(any_value::Value::StringValue(s)) => Value::Str(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::Int(*i),
        Some(any_value::Value::DoubleValue(x)) => Value::Float(*x),
        Some(_) => Value::Other,
    }
}

fn value<'a>(operand: &'a Operand, item: &Item<'a>) -> Value<'a> {
    match operand {
        Operand::Literal(Literal::Nil) => Value::Nil,
        Operand::Literal(Literal::Bool(b)) => Value::Bool(*b),
        Operand::Literal(Literal::Int(i)) => Value::Int(*i),
        Operand::Literal(Literal::Float(x)) => Value::Float(*x),
        Operand::Literal(Literal::Str(s)) => Value::Str(s),
        Operand::Path(path) => match path {
            Path::Name => Value::Str(item.name),
            Path::Kind => Value::Int(i64::from(item.kind)),
            Path::StatusCode => Value::Int(i64::from(item.status_code)),
            Path::Attribute(key) => of_any(lookup(item.attributes, key)),
            Path::ResourceAttribute(key) => of_any(lookup(item.resource, key)),
            Path::ScopeName => Value::Str(item.scope_name),
            Path::SeverityNumber => Value::Int(i64::from(item.severity_number)),
            Path::SeverityText => Value::Str(item.severity_text),
            Path::Body => of_any(item.body),
            Path::MetricName => Value::Str(item.metric_name),
            Path::MetricType => Value::Int(i64::from(item.metric_type)),
        },
    }
}

/// OTTL's comparison: same types compare, ints and floats compare as numbers, booleans only for (in)equality,
/// `nil` equals only `nil`; anything else is unequal and unordered.
fn compare(left: Value<'_>, op: CmpOp, right: Value<'_>) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (left, right) {
        (Value::Nil, Value::Nil) => {
            Some(Ordering::Equal).filter(|_| matches!(op, CmpOp::Eq | CmpOp::Ne))
        }
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(&b)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(&b),
        (Value::Int(a), Value::Float(b)) => (a as f64).partial_cmp(&b),
        (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(b as f64)),
        (Value::Bool(a), Value::Bool(b)) if matches!(op, CmpOp::Eq | CmpOp::Ne) => Some(a.cmp(&b)),
        _ => None,
    };
    match (ordering, op) {
        (None, CmpOp::Ne) => true,
        (None, _) => false,
        (Some(o), CmpOp::Eq) => o == Ordering::Equal,
        (Some(o), CmpOp::Ne) => o != Ordering::Equal,
        (Some(o), CmpOp::Lt) => o == Ordering::Less,
        (Some(o), CmpOp::Le) => o != Ordering::Greater,
        (Some(o), CmpOp::Gt) => o == Ordering::Greater,
        (Some(o), CmpOp::Ge) => o != Ordering::Less,
    }
}

pub fn matches(condition: &Condition, item: &Item<'_>) -> bool {
    match condition {
        Condition::Const(b) => *b,
        Condition::Not(c) => !matches(c, item),
        Condition::And(list) => list.iter().all(|c| matches(c, item)),
        Condition::Or(list) => list.iter().any(|c| matches(c, item)),
        Condition::Compare(l, op, r) => compare(value(l, item), *op, value(r, item)),
        Condition::IsMatch(target, regex) => match value(target, item) {
            Value::Str(s) => regex.is_match(s),
            Value::Int(i) => regex.is_match(&i.to_string()),
            Value::Float(x) => regex.is_match(&x.to_string()),
            Value::Bool(b) => regex.is_match(if b { "true" } else { "false" }),
            Value::Nil | Value::Other => false,
        },
    }
}
