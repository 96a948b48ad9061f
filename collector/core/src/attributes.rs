//! One read-only way to look at a list of attributes, whether it is decoded (`&[KeyValue]`) or still in a
//! request's wire form ([`crate::wire::WireAttributes`]). The editing processors write their "would anything
//! change?" look once, generic over [`Attributes`], so the look on the wire bytes and the look on the decoded
//! request are the same code and cannot disagree; neither allocates.

use crate::proto::common::v1::{AnyValue, KeyValue, any_value};

/// An attribute value, borrowed, as prost decodes it (the `AnyValue` oneof).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ValueRef<'a> {
    /// No value: the attribute has none, or its `AnyValue` has no variant set.
    #[default]
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// A list; its elements are not looked into.
    Array,
    /// A map; its entries are not looked into.
    Kvlist,
    /// An index into a dictionary of strings (`string_value_strindex`), not resolved.
    StrIndex(i32),
}

impl<'a> ValueRef<'a> {
    /// The value of a decoded attribute (or log body).
    pub fn of(value: Option<&'a AnyValue>) -> Self {
        match value.and_then(|v| v.value.as_ref()) {
            None => ValueRef::Empty,
            Some(any_value::Value::StringValue(s)) => ValueRef::Str(s),
            Some(any_value::Value::BoolValue(b)) => ValueRef::Bool(*b),
            Some(any_value::Value::IntValue(i)) => ValueRef::Int(*i),
            Some(any_value::Value::DoubleValue(x)) => ValueRef::Double(*x),
            Some(any_value::Value::BytesValue(b)) => ValueRef::Bytes(b),
            Some(any_value::Value::ArrayValue(_)) => ValueRef::Array,
            Some(any_value::Value::KvlistValue(_)) => ValueRef::Kvlist,
            Some(any_value::Value::StringValueStrindex(i)) => ValueRef::StrIndex(*i),
        }
    }

    /// The text of a string value.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            ValueRef::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A list of attributes read in order, as the decoded `Vec<KeyValue>` holds them.
pub trait Attributes<'a>: Copy {
    /// Whether `f` says yes for any attribute (key, value), in order; stops at the first yes.
    fn any(self, f: impl FnMut(&'a str, ValueRef<'a>) -> bool) -> bool;

    /// The value of the first attribute named `key` (`ValueRef::Empty` when it has none), or `None` when no
    /// attribute has that name: the decoded list's `iter().find(|kv| kv.key == key)`.
    fn get(self, key: &str) -> Option<ValueRef<'a>> {
        let mut found = None;
        self.any(|k, v| {
            let hit = k == key;
            if hit {
                found = Some(v);
            }
            hit
        });
        found
    }

    /// Whether an attribute named `key` is present.
    fn has(self, key: &str) -> bool {
        self.any(|k, _| k == key)
    }
}

impl<'a> Attributes<'a> for &'a [KeyValue] {
    fn any(self, mut f: impl FnMut(&'a str, ValueRef<'a>) -> bool) -> bool {
        self.iter()
            .any(|kv| f(&kv.key, ValueRef::of(kv.value.as_ref())))
    }

    fn get(self, key: &str) -> Option<ValueRef<'a>> {
        self.iter()
            .find(|kv| kv.key == key)
            .map(|kv| ValueRef::of(kv.value.as_ref()))
    }
}

impl<'a> Attributes<'a> for &'a Vec<KeyValue> {
    fn any(self, f: impl FnMut(&'a str, ValueRef<'a>) -> bool) -> bool {
        self.as_slice().any(f)
    }

    fn get(self, key: &str) -> Option<ValueRef<'a>> {
        Attributes::get(self.as_slice(), key)
    }
}
