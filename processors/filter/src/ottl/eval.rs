//! Evaluating a parsed condition against one item, borrowing everything: no allocation (`IsMatch` on a number
//! writes its text on the stack).

use otlake_core::attributes::{Attributes, ValueRef};
use otlake_core::proto::common::v1::KeyValue;

use super::{CmpOp, Condition, Literal, Operand, Path};

/// What a condition can read of one item; each context fills what its paths read (validation refuses the
/// others), the rest stays at its default. The attribute lists are decoded (`&[KeyValue]`, the default) or
/// read in place from the wire bytes (`WireAttributes`): the same evaluation serves both looks.
#[derive(Clone, Copy, Debug, Default)]
pub struct Item<'a, A = &'a [KeyValue]> {
    pub name: &'a str,
    pub kind: i32,
    pub status_code: i32,
    pub attributes: A,
    pub resource: A,
    pub scope_name: &'a str,
    pub severity_number: i32,
    pub severity_text: &'a str,
    pub body: ValueRef<'a>,
    pub metric_name: &'a str,
    pub metric_type: i32,
}

impl<'a, A: Attributes<'a>> Item<'a, A> {
    /// An item of a group with `resource` attributes and scope `scope_name`, with its own `attributes`; the
    /// caller fills what its context reads.
    pub fn new(resource: A, scope_name: &'a str, attributes: A) -> Self {
        Item {
            name: "",
            kind: 0,
            status_code: 0,
            attributes,
            resource,
            scope_name,
            severity_number: 0,
            severity_text: "",
            body: ValueRef::Empty,
            metric_name: "",
            metric_type: 0,
        }
    }
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

/// An attribute's or body's value; a missing attribute is `nil`.
fn of_any(value: Option<ValueRef<'_>>) -> Value<'_> {
    match value {
        None | Some(ValueRef::Empty) => Value::Nil,
        Some(ValueRef::Str(s)) => Value::Str(s),
        Some(ValueRef::Bool(b)) => Value::Bool(b),
        Some(ValueRef::Int(i)) => Value::Int(i),
        Some(ValueRef::Double(x)) => Value::Float(x),
        Some(_) => Value::Other,
    }
}

fn value<'a, A: Attributes<'a>>(operand: &'a Operand, item: &Item<'a, A>) -> Value<'a> {
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
            Path::Attribute(key) => of_any(item.attributes.get(key)),
            Path::ResourceAttribute(key) => of_any(item.resource.get(key)),
            Path::ScopeName => Value::Str(item.scope_name),
            Path::SeverityNumber => Value::Int(i64::from(item.severity_number)),
            Path::SeverityText => Value::Str(item.severity_text),
            Path::Body => of_any(Some(item.body)),
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

pub fn matches<'a, A: Attributes<'a>>(condition: &'a Condition, item: &Item<'a, A>) -> bool {
    match condition {
        Condition::Const(b) => *b,
        Condition::Not(c) => !matches(c, item),
        Condition::And(list) => list.iter().all(|c| matches(c, item)),
        Condition::Or(list) => list.iter().any(|c| matches(c, item)),
        Condition::Compare(l, op, r) => compare(value(l, item), *op, value(r, item)),
        Condition::IsMatch(target, regex) => match value(target, item) {
            Value::Str(s) => regex.is_match(s),
            Value::Int(i) => matches_text_of(regex, i),
            Value::Float(x) => matches_text_of(regex, x),
            Value::Bool(b) => regex.is_match(if b { "true" } else { "false" }),
            Value::Nil | Value::Other => false,
        },
    }
}

/// Whether `regex` matches the text of a number: written on the stack (an integer takes at most 20 bytes),
/// so matching allocates nothing, except for a float too long for the buffer (`1e300` prints 301 digits).
fn matches_text_of(regex: &regex::Regex, number: impl std::fmt::Display) -> bool {
    use std::fmt::Write;
    let mut text = StackText::default();
    match write!(text, "{number}") {
        Ok(()) => regex.is_match(text.as_str()),
        Err(_) => regex.is_match(&number.to_string()),
    }
}

/// A short text written on the stack; writing past its capacity fails.
#[derive(Default)]
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are written in, so the bytes are UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let to = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        to.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::matches_text_of;

    #[test]
    fn numbers_are_matched_by_their_text() {
        let re = |p: &str| Regex::new(p).expect("valid");
        assert!(matches_text_of(&re("^-9223372036854775808$"), i64::MIN));
        assert!(matches_text_of(&re("^2.5$"), 2.5));
        assert!(
            !matches_text_of(&re("e"), 1e300),
            "floats print without an exponent"
        );
        assert!(
            matches_text_of(&re("^10{300}$"), 1e300),
            "longer than the stack buffer: on the heap"
        );
    }
}
