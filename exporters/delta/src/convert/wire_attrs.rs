//! Attributes read straight from OTLP wire bytes: keys and values borrowed from the request's buffer, for the
//! wire path of the converters (see `spans/wire.rs`).
//!
//! An attribute list is collected into an [`AttrList`] (reused between lists: no allocation per attribute) and
//! then appended to a column, which writes it exactly as the decoded path writes the same `&[KeyValue]`:
//! scalar values go through the same text and Variant rules, and a value that nests (an array or a key-value
//! list, or a `KeyValue` that gives its value twice) is decoded with prost, the reference, into an owned
//! `AnyValue` of the list. Nested values are rare enough (a `finish_reasons` array per GenAI span) for that to
//! cost little, and it leaves the JSON and nested Variant rules in one place.
//!
//! Every function refuses what prost refuses (wire types of known fields, UTF-8, recursion limit), so bytes
//! that do not decode give an error here too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use otlake_core::proto::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use otlake_core::wire::{FieldCursor, Part, WireError, WireValue};
use prost::Message as _;

use crate::encode;

/// One attribute value, borrowed from the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ValueRef<'a> {
    /// No value (written as NULL).
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    Strindex(i32),
    /// An array of values without children: `len` values from `start` in [`AttrList::elems`].
    Array {
        start: usize,
        len: usize,
    },
    /// Another nested value, decoded with prost: its index in [`AttrList::owned`].
    Owned(usize),
}

impl<'a> ValueRef<'a> {
    /// The borrowed form of a decoded value without children (arrays and key-value lists give `Empty`: the
    /// caller handles them).
    pub(crate) fn scalar(value: Option<&'a Value>) -> Self {
        match value {
            None | Some(Value::ArrayValue(_) | Value::KvlistValue(_)) => ValueRef::Empty,
            Some(Value::StringValue(s)) => ValueRef::Str(s),
            Some(Value::BoolValue(b)) => ValueRef::Bool(*b),
            Some(Value::IntValue(i)) => ValueRef::Int(*i),
            Some(Value::DoubleValue(d)) => ValueRef::Double(*d),
            Some(Value::BytesValue(bytes)) => ValueRef::Bytes(bytes),
            Some(Value::StringValueStrindex(index)) => ValueRef::Strindex(*index),
        }
    }
}

/// One attribute: its key and value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AttrRef<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: ValueRef<'a>,
}

/// The attributes of one span, event or link, in wire order.
#[derive(Default)]
pub(crate) struct AttrList<'a> {
    pub(crate) attrs: Vec<AttrRef<'a>>,
    /// The values of the arrays in `attrs`.
    pub(crate) elems: Vec<ValueRef<'a>>,
    /// The other nested values, decoded.
    pub(crate) owned: Vec<AnyValue>,
    /// The attributes of the list before (see [`known_str`]).
    previous: Vec<AttrRef<'a>>,
}

impl<'a> AttrList<'a> {
    pub(crate) fn clear(&mut self) {
        std::mem::swap(&mut self.previous, &mut self.attrs);
        self.attrs.clear();
        self.elems.clear();
        self.owned.clear();
    }

    /// The attribute as the decoded request holds it (the rare owned paths only).
    pub(crate) fn to_owned_kv(&self, attr: &AttrRef<'_>) -> KeyValue {
        let any = |value: Value| Some(AnyValue { value: Some(value) });
        let value = match attr.value {
            ValueRef::Owned(at) => self.owned.get(at).cloned(),
            ValueRef::Array { start, len } => {
                let values = self.elems[start..start + len]
                    .iter()
                    .map(|&value| AnyValue {
                        value: self
                            .to_owned_kv(&AttrRef { key: "", value })
                            .value
                            .and_then(|v| v.value),
                    })
                    .collect();
                any(Value::ArrayValue(ArrayValue { values }))
            }
            ValueRef::Empty => None,
            ValueRef::Str(s) => any(Value::StringValue(s.to_owned())),
            ValueRef::Bool(b) => any(Value::BoolValue(b)),
            ValueRef::Int(i) => any(Value::IntValue(i)),
            ValueRef::Double(d) => any(Value::DoubleValue(d)),
            ValueRef::Bytes(bytes) => any(Value::BytesValue(bytes.to_vec())),
            ValueRef::Strindex(index) => any(Value::StringValueStrindex(index)),
        };
        KeyValue {
            key: attr.key.to_owned(),
            value,
            ..Default::default()
        }
    }

    /// Reads one `AnyValue` message (a log body) into `value`, keeping arrays in this list. Returns whether
    /// it needs prost (see [`AttrList::push_owned`]).
    pub(crate) fn read_value(
        &mut self,
        any: FieldCursor<'a>,
        value: &mut ValueRef<'a>,
    ) -> Result<bool, WireError> {
        read_any_value(any, value, &mut self.elems, None)
    }

    /// Keeps a value decoded with prost; returns its reference.
    pub(crate) fn push_owned(&mut self, value: AnyValue) -> ValueRef<'a> {
        self.owned.push(value);
        ValueRef::Owned(self.owned.len() - 1)
    }

    /// Reads one `KeyValue` message (`body`, whose fields `kv` walks) and appends it.
    pub(crate) fn read_key_value(
        &mut self,
        mut kv: FieldCursor<'a>,
        body: &'a [u8],
    ) -> Result<(), WireError> {
        let fields = kv;
        let previous = self.previous.get(self.attrs.len()).copied();
        if kv.depth_left() > 0
            && let Some((key, value)) = common_key_value(body)
        {
            let previous_value = match previous {
                Some(AttrRef {
                    value: ValueRef::Str(s),
                    ..
                }) => Some(s),
                _ => None,
            };
            let key = known_str(previous.map(|p| p.key), key)?;
            let value = match value {
                Common::Str(raw) => ValueRef::Str(known_str(previous_value, raw)?),
                Common::Value(value) => value,
            };
            self.attrs.push(AttrRef { key, value });
            return Ok(());
        }
        let mut key = "";
        let mut value = ValueRef::Empty;
        let mut nested = false;
        while let Some((tag, field)) = kv.next_field()? {
            match tag {
                1 => key = known_str(previous.map(|p| p.key), message(field)?)?,
                2 => {
                    let any = fields.enter(message(field)?)?;
                    let previous = match previous {
                        Some(AttrRef {
                            value: ValueRef::Str(s),
                            ..
                        }) => Some(s),
                        _ => None,
                    };
                    nested |= read_any_value(any, &mut value, &mut self.elems, previous)?;
                }
                3 => {
                    varint(field)?;
                }
                _ => {}
            }
        }
        if nested {
            // Decoded by prost, after the check that prost would accept it at this depth of the request.
            fields.validate_as(Part::KeyValue)?;
            let decoded = KeyValue::decode(body).map_err(|_| wire_error("does not decode"))?;
            value = ValueRef::Owned(self.owned.len());
            self.owned.push(decoded.value.unwrap_or_default());
        }
        self.attrs.push(AttrRef { key, value });
        Ok(())
    }
}

/// The value of a [`common_key_value`], a string still to check.
enum Common<'a> {
    Str(&'a [u8]),
    Value(ValueRef<'a>),
}

/// The layout of nearly every attribute, read without the general field reader: a key field, then a value
/// field holding one scalar field, nothing else, all lengths and keys one byte, varints of up to 9 bytes (which
/// cannot overflow). Anything else (including every malformed input) gives `None` and takes the general path,
/// so the result is the general path's whenever this one answers.
#[inline]
fn common_key_value(body: &[u8]) -> Option<(&[u8], Common<'_>)> {
    let [0x0a, key_len, rest @ ..] = body else {
        return None;
    };
    let key_len = usize::from(*key_len);
    if key_len >= 0x80 {
        return None;
    }
    let (key, rest) = rest.split_at_checked(key_len)?;
    let [0x12, value_len, any @ ..] = rest else {
        return None;
    };
    if *value_len >= 0x80 || any.len() != usize::from(*value_len) {
        return None;
    }
    let value = match any {
        [0x0a, len, text @ ..] if usize::from(*len) == text.len() && *len < 0x80 => {
            Common::Str(text)
        }
        [0x10, varint @ ..] => Common::Value(ValueRef::Bool(short_varint(varint)? != 0)),
        [0x18, varint @ ..] => Common::Value(ValueRef::Int(short_varint(varint)? as i64)),
        [0x21, word @ ..] => Common::Value(ValueRef::Double(f64::from_bits(u64::from_le_bytes(
            <[u8; 8]>::try_from(word).ok()?,
        )))),
        _ => return None,
    };
    Some((key, value))
}

/// A varint that is exactly `bytes`, of at most 9 bytes.
#[inline]
fn short_varint(bytes: &[u8]) -> Option<u64> {
    let (last, head) = bytes.split_last()?;
    if *last >= 0x80 || head.len() >= 9 || head.iter().any(|b| *b < 0x80) {
        return None;
    }
    let value = head
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, b)| acc | u64::from(b & 0x7f) << (7 * i));
    Some(value | u64::from(*last) << (7 * head.len()))
}

/// Reads one `AnyValue` into `value` (a later field replaces an earlier one, as prost merges a oneof of
/// scalars); an array of values without children goes into `elems`. Returns whether the value needs prost:
/// a key-value list, an array holding arrays or lists, or an array merged into an array.
fn read_any_value<'a>(
    mut fields: FieldCursor<'a>,
    value: &mut ValueRef<'a>,
    elems: &mut Vec<ValueRef<'a>>,
    previous: Option<&'a str>,
) -> Result<bool, WireError> {
    let outer = fields;
    let mut nested = false;
    while let Some((tag, field)) = fields.next_field()? {
        if tag == 5 {
            let body = message(field)?;
            if matches!(value, ValueRef::Array { .. }) {
                nested = true;
                continue;
            }
            let mut array = outer.enter(body)?;
            let array_fields = array;
            let start = elems.len();
            while let Some((tag, field)) = array.next_field()? {
                if tag == 1 {
                    let mut element = ValueRef::Empty;
                    nested |= read_scalar(array_fields.enter(message(field)?)?, &mut element)?;
                    elems.push(element);
                }
            }
            *value = ValueRef::Array {
                start,
                len: elems.len() - start,
            };
        } else {
            nested |= read_scalar_field(tag, field, value, previous)?;
        }
    }
    Ok(nested)
}

/// Reads an `AnyValue` that should have no children (an array element). Returns whether it has some.
fn read_scalar<'a>(
    mut fields: FieldCursor<'a>,
    value: &mut ValueRef<'a>,
) -> Result<bool, WireError> {
    let mut nested = false;
    while let Some((tag, field)) = fields.next_field()? {
        nested |= read_scalar_field(tag, field, value, None)?;
    }
    Ok(nested)
}

/// One field of an `AnyValue` other than an array; `true` for a key-value list (or array) left unread.
#[inline]
fn read_scalar_field<'a>(
    tag: u32,
    field: WireValue<'a>,
    value: &mut ValueRef<'a>,
    previous: Option<&'a str>,
) -> Result<bool, WireError> {
    *value = match tag {
        1 => ValueRef::Str(known_str(previous, message(field)?)?),
        2 => ValueRef::Bool(varint(field)? != 0),
        3 => ValueRef::Int(varint(field)? as i64),
        4 => ValueRef::Double(f64::from_bits(fixed64(field)?)),
        5 | 6 => {
            message(field)?;
            *value = ValueRef::Empty;
            return Ok(true);
        }
        7 => ValueRef::Bytes(bytes(field)?),
        8 => ValueRef::Strindex(varint(field)? as i32),
        _ => return Ok(false),
    };
    Ok(false)
}

/// `raw` as a string. Lists repeat their keys (and often values) at the same places from one span to the
/// next: when `raw` holds the same bytes as `previous`, a string already checked, that one is taken instead
/// of checking `raw`'s UTF-8 again (a comparison costs a fraction of the check). Same bytes, same string.
#[inline]
fn known_str<'a>(previous: Option<&'a str>, raw: &'a [u8]) -> Result<&'a str, WireError> {
    match previous {
        Some(known) if known.as_bytes() == raw => Ok(known),
        _ => std::str::from_utf8(raw).map_err(|_| wire_error("invalid UTF-8 in a string field")),
    }
}

/// The v1 text of a value (see [`encode::any_value_text`], which it defers to), or `None` for NULL.
pub(crate) fn value_text<'s>(
    value: ValueRef<'s>,
    list: &'s AttrList<'_>,
    out: &'s mut String,
) -> Option<&'s str> {
    let decoded = |value: Value, out: &'s mut String| {
        encode::any_value_text(&AnyValue { value: Some(value) }, out)?;
        Some(out.as_str())
    };
    match value {
        ValueRef::Empty => None,
        ValueRef::Str(s) => Some(s),
        ValueRef::Bytes(bytes) => {
            out.clear();
            BASE64.encode_string(bytes, out);
            Some(out.as_str())
        }
        ValueRef::Owned(at) => encode::any_value_text(list.owned.get(at)?, out),
        ValueRef::Array { start, len } => {
            out.clear();
            out.push('[');
            for (i, element) in list.elems[start..start + len].iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_scalar(*element, out);
            }
            out.push(']');
            Some(out.as_str())
        }
        // As `any_value_text` writes them, without building an `AnyValue` for the two most common kinds.
        ValueRef::Bool(b) => Some(if b { "true" } else { "false" }),
        ValueRef::Int(i) => {
            out.clear();
            out.push_str(itoa::Buffer::new().format(i));
            Some(out.as_str())
        }
        // No heap: these `AnyValue`s live on the stack.
        ValueRef::Double(d) => decoded(Value::DoubleValue(d), out),
        ValueRef::Strindex(index) => decoded(Value::StringValueStrindex(index), out),
    }
}

/// A value without children as JSON, as [`encode::push_json_value`] writes it.
fn push_json_scalar(value: ValueRef<'_>, out: &mut String) {
    let decoded = |value: Value, out: &mut String| {
        encode::push_json_value(&AnyValue { value: Some(value) }, out);
    };
    match value {
        ValueRef::Empty | ValueRef::Array { .. } | ValueRef::Owned(_) => out.push_str("null"),
        ValueRef::Str(s) => encode::push_json_string(s, out),
        ValueRef::Bytes(bytes) => {
            out.push('"');
            BASE64.encode_string(bytes, out);
            out.push('"');
        }
        ValueRef::Bool(b) => decoded(Value::BoolValue(b), out),
        ValueRef::Int(i) => decoded(Value::IntValue(i), out),
        ValueRef::Double(d) => decoded(Value::DoubleValue(d), out),
        ValueRef::Strindex(index) => decoded(Value::StringValueStrindex(index), out),
    }
}

/// [`KeyRepeats`](encode::KeyRepeats) of attributes read from the wire.
pub(crate) fn key_repeats(attrs: &[AttrRef<'_>]) -> encode::KeyRepeats {
    encode::KeyRepeats::of(attrs.iter().map(|attr| attr.key.as_bytes()))
}

/// Whether the key at `i` is given again later in `attrs` (only its last value is kept).
#[inline]
pub(crate) fn superseded(attrs: &[AttrRef<'_>], i: usize, repeats: &encode::KeyRepeats) -> bool {
    repeats.superseded(i, || {
        attrs[i + 1..].iter().any(|later| later.key == attrs[i].key)
    })
}

pub(crate) fn wire_error(reason: &'static str) -> WireError {
    WireError {
        path: String::new(),
        reason,
    }
}

fn wrong_wire_type() -> WireError {
    wire_error("invalid wire type")
}

/// A nested message's bytes.
#[inline]
pub(crate) fn message(field: WireValue<'_>) -> Result<&[u8], WireError> {
    match field {
        WireValue::LengthDelimited(body) => Ok(body),
        _ => Err(wrong_wire_type()),
    }
}

#[inline]
pub(crate) fn bytes(field: WireValue<'_>) -> Result<&[u8], WireError> {
    message(field)
}

#[inline]
pub(crate) fn string(field: WireValue<'_>) -> Result<&str, WireError> {
    std::str::from_utf8(message(field)?).map_err(|_| wire_error("invalid UTF-8 in a string field"))
}

#[inline]
pub(crate) fn varint(field: WireValue<'_>) -> Result<u64, WireError> {
    match field {
        WireValue::Varint(v) => Ok(v),
        _ => Err(wrong_wire_type()),
    }
}

#[inline]
pub(crate) fn fixed64(field: WireValue<'_>) -> Result<u64, WireError> {
    match field {
        WireValue::Fixed64(v) => Ok(v),
        _ => Err(wrong_wire_type()),
    }
}

#[inline]
pub(crate) fn fixed32(field: WireValue<'_>) -> Result<u32, WireError> {
    match field {
        WireValue::Fixed32(v) => Ok(v),
        _ => Err(wrong_wire_type()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::proto::common::v1::any_value::Value;

    fn kv_bytes(key: &str, value: Option<Value>) -> Vec<u8> {
        KeyValue {
            key: key.into(),
            value: value.map(|v| AnyValue { value: Some(v) }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// Reads one `KeyValue` through `read_key_value` (which tries the common layout first).
    fn read(body: &[u8]) -> Result<AttrRef<'_>, WireError> {
        let mut list = AttrList::default();
        list.read_key_value(FieldCursor::new(body), body)?;
        Ok(list.attrs[0])
    }

    #[test]
    fn the_common_layout_reads_like_the_general_path() {
        let cases = [
            Value::StringValue("v".into()),
            Value::BoolValue(true),
            Value::IntValue(1),
            Value::IntValue(300),
            Value::IntValue(i64::MAX),
            Value::IntValue(-1),
            Value::DoubleValue(0.5),
        ];
        for value in cases {
            let body = kv_bytes("k", Some(value.clone()));
            let expected = ValueRef::scalar(Some(&value));
            assert_eq!(read(&body).expect("valid").value, expected, "{value:?}");
            // Negative ints (10-byte varints) are left to the general path, the others are read here.
            let common = common_key_value(&body).is_some();
            assert_eq!(
                common,
                !matches!(value, Value::IntValue(i) if i < 0),
                "{value:?}"
            );
        }
        for odd in [
            kv_bytes("k", None),
            kv_bytes("k", Some(Value::BytesValue(vec![1]))),
            kv_bytes(&"k".repeat(200), Some(Value::IntValue(1))),
            [kv_bytes("k", Some(Value::IntValue(1))), vec![0x18, 1]].concat(),
        ] {
            assert!(common_key_value(&odd).is_none(), "general path for {odd:?}");
            read(&odd).expect("valid");
        }
    }

    #[test]
    fn invalid_utf8_is_refused_even_when_it_looks_like_the_previous_key() {
        let mut list = AttrList::default();
        let good = kv_bytes("k\u{e9}", Some(Value::IntValue(1)));
        list.read_key_value(FieldCursor::new(&good), &good)
            .expect("valid");
        list.clear();
        let mut bad = good.clone();
        bad[3] = 0xff; // the first byte of "é"
        assert!(list.read_key_value(FieldCursor::new(&bad), &bad).is_err());
        assert!(KeyValue::decode(bad.as_slice()).is_err(), "prost agrees");
    }
}
