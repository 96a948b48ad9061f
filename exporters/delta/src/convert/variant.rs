//! The Variant binary encoding (Parquet `VariantEncoding.md`, used by Delta's `variantType`), for the v2
//! tables: attribute maps become Variant objects, AnyValues keep their type (string, int64, double, boolean,
//! binary, array, object; an empty AnyValue is Variant null).
//!
//! Each row gets its own metadata dictionary of the keys it uses, sorted (`sorted_strings` set); object fields
//! are ordered by key, as the encoding requires. Offsets and ids use the smallest width that fits.

use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};

use super::wire_attrs::{AttrList, ValueRef};

const VERSION: u8 = 1;
const SORTED_STRINGS: u8 = 1 << 4;

const PRIMITIVE: u8 = 0;
const SHORT_STRING: u8 = 1;
const OBJECT: u8 = 2;
const ARRAY: u8 = 3;

const NULL: u8 = 0;
const TRUE: u8 = 1;
const FALSE: u8 = 2;
const INT64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 15;
const STRING: u8 = 16;

/// Bytes needed to hold `max` (1 to 4).
fn width(max: usize) -> usize {
    match max {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xff_ffff => 3,
        _ => 4,
    }
}

fn push_le(out: &mut Vec<u8>, value: usize, width: usize) {
    out.extend_from_slice(&(value as u32).to_le_bytes()[..width]);
}

/// Encodes one Variant value (metadata + value), reusing its buffers between rows.
#[derive(Default)]
pub(crate) struct VariantEncoder {
    keys: Vec<String>,
    /// Scratch of `encode_refs`: attribute indices, the object body and its offsets.
    order: Vec<usize>,
    body: Vec<u8>,
    offsets: Vec<usize>,
    pub(crate) metadata: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

/// What to encode as the top-level value of a row.
pub(crate) enum Root<'a> {
    /// An attribute list, as an object.
    Attributes(&'a [KeyValue]),
    /// One AnyValue (a log body).
    Value(&'a AnyValue),
}

impl VariantEncoder {
    /// Encodes `root` into `self.metadata` and `self.value`.
    pub(crate) fn encode(&mut self, root: Root<'_>) {
        self.keys.clear();
        match &root {
            Root::Attributes(kvs) => collect_object_keys(kvs, &mut self.keys),
            Root::Value(v) => collect_keys(v, &mut self.keys),
        }
        self.keys.sort_unstable();
        self.keys.dedup();
        self.write_metadata();
        self.value.clear();
        let mut value = std::mem::take(&mut self.value);
        match root {
            Root::Attributes(kvs) => self.write_object(kvs, &mut value),
            Root::Value(v) => self.write_value(v, &mut value),
        }
        self.value = value;
    }

    fn write_metadata(&mut self) {
        write_metadata(
            self.keys.iter().map(String::as_str),
            self.keys.len(),
            &mut self.metadata,
        );
    }

    /// Like `encode(Root::Attributes(..))`, for attributes read from the wire (byte for byte the same
    /// encoding: the differential tests hold it to that).
    pub(crate) fn encode_refs(&mut self, list: &AttrList<'_>) {
        if list.owned.iter().any(has_object) {
            // Rare: key-value lists nested in a value add their keys to the dictionary; take the owned path.
            let kvs: Vec<KeyValue> = list.attrs.iter().map(|a| list.to_owned_kv(a)).collect();
            self.encode(Root::Attributes(&kvs));
            return;
        }
        let attrs = &list.attrs;
        // The distinct keys, sorted, each with its last occurrence (a key given twice keeps its last value):
        // they are both the dictionary and the object's fields, field i having key id i.
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(0..attrs.len());
        order.sort_unstable_by(|&a, &b| attrs[a].key.cmp(attrs[b].key).then(b.cmp(&a)));
        order.dedup_by(|later, kept| attrs[*later].key == attrs[*kept].key);
        write_metadata(
            order.iter().map(|&i| attrs[i].key),
            order.len(),
            &mut self.metadata,
        );
        let mut body = std::mem::take(&mut self.body);
        let mut offsets = std::mem::take(&mut self.offsets);
        body.clear();
        offsets.clear();
        for &i in &order {
            offsets.push(body.len());
            match attrs[i].value {
                ValueRef::Owned(at) => match list.owned.get(at) {
                    Some(value) => self.write_value(value, &mut body),
                    None => body.push(NULL << 2 | PRIMITIVE),
                },
                ValueRef::Array { start, len } => {
                    let values = &list.elems[start..start + len];
                    write_array_from(values.len(), &mut body, |i, out| {
                        write_scalar(values[i], out)
                    });
                }
                scalar => write_scalar(scalar, &mut body),
            }
        }
        offsets.push(body.len());
        self.value.clear();
        write_object_from(
            0..order.len(),
            order.len(),
            order.len(),
            &offsets,
            &body,
            &mut self.value,
        );
        self.order = order;
        self.body = body;
        self.offsets = offsets;
    }

    /// Like `encode(Root::Value(..))`, for a value read from the wire (a log body), whose arrays and
    /// decoded values are in `list`.
    pub(crate) fn encode_value_ref(&mut self, value: ValueRef<'_>, list: &AttrList<'_>) {
        if let ValueRef::Owned(at) = value {
            let empty = AnyValue::default();
            self.encode(Root::Value(list.owned.get(at).unwrap_or(&empty)));
            return;
        }
        // No children that are objects: no keys.
        self.keys.clear();
        self.write_metadata();
        self.value.clear();
        match value {
            ValueRef::Array { start, len } => {
                let values = &list.elems[start..start + len];
                write_array_from(values.len(), &mut self.value, |i, out| {
                    write_scalar(values[i], out)
                });
            }
            scalar => write_scalar(scalar, &mut self.value),
        }
    }

    fn key_id(&self, key: &str) -> usize {
        // Every key was collected before encoding, so it is found.
        self.keys
            .binary_search_by(|k| k.as_str().cmp(key))
            .unwrap_or(0)
    }

    fn write_value(&self, value: &AnyValue, out: &mut Vec<u8>) {
        match &value.value {
            Some(Value::ArrayValue(array)) => self.write_array(&array.values, out),
            Some(Value::KvlistValue(list)) => self.write_object(&list.values, out),
            scalar => write_scalar(ValueRef::scalar(scalar.as_ref()), out),
        }
    }

    fn write_array(&self, values: &[AnyValue], out: &mut Vec<u8>) {
        write_array_from(values.len(), out, |i, body| {
            self.write_value(&values[i], body)
        });
    }

    /// An object; a key given twice keeps its last value; fields ordered by key.
    fn write_object(&self, kvs: &[KeyValue], out: &mut Vec<u8>) {
        let repeats = crate::encode::key_repeats(kvs);
        let mut fields: Vec<(usize, &KeyValue)> = kvs
            .iter()
            .enumerate()
            .filter(|(i, _)| !crate::encode::superseded(kvs, *i, &repeats))
            .map(|(_, kv)| (self.key_id(&kv.key), kv))
            .collect();
        fields.sort_unstable_by_key(|(id, _)| *id);
        let mut body = Vec::new();
        let mut offsets = Vec::with_capacity(fields.len() + 1);
        for (_, kv) in &fields {
            offsets.push(body.len());
            match &kv.value {
                Some(v) => self.write_value(v, &mut body),
                None => body.push(NULL << 2 | PRIMITIVE),
            }
        }
        offsets.push(body.len());
        write_object_from(
            fields.iter().map(|(id, _)| *id),
            fields.len(),
            self.keys.len(),
            &offsets,
            &body,
            out,
        );
    }
}

/// An array of `len` values, value `i` written by `write(i, ..)`.
fn write_array_from(len: usize, out: &mut Vec<u8>, mut write: impl FnMut(usize, &mut Vec<u8>)) {
    let mut body = Vec::new();
    let mut offsets = Vec::with_capacity(len + 1);
    offsets.push(0);
    for i in 0..len {
        write(i, &mut body);
        offsets.push(body.len());
    }
    let is_large = len > 0xff;
    let offset_width = width(body.len());
    let header = (u8::from(is_large) << 2) | (offset_width - 1) as u8;
    out.push(header << 2 | ARRAY);
    push_le(out, len, if is_large { 4 } else { 1 });
    for o in offsets {
        push_le(out, o, offset_width);
    }
    out.extend_from_slice(&body);
}

/// The metadata of a row: its `count` keys, sorted and distinct.
fn write_metadata<'k>(
    keys: impl Iterator<Item = &'k str> + Clone,
    count: usize,
    out: &mut Vec<u8>,
) {
    let total: usize = keys.clone().map(str::len).sum();
    let offset_width = width(total.max(count));
    out.clear();
    out.push(VERSION | SORTED_STRINGS | (((offset_width - 1) as u8) << 6));
    push_le(out, count, offset_width);
    let mut offset = 0;
    push_le(out, 0, offset_width);
    for key in keys.clone() {
        offset += key.len();
        push_le(out, offset, offset_width);
    }
    for key in keys {
        out.extend_from_slice(key.as_bytes());
    }
}

/// An object of `fields` fields from their key ids (ascending), the offsets of their values in `body` (plus
/// the end) and the values; `keys` is the size of the row's dictionary.
fn write_object_from(
    ids: impl Iterator<Item = usize>,
    fields: usize,
    keys: usize,
    offsets: &[usize],
    body: &[u8],
    out: &mut Vec<u8>,
) {
    let is_large = fields > 0xff;
    let id_width = width(keys.saturating_sub(1));
    let offset_width = width(body.len());
    let header =
        (u8::from(is_large) << 4) | (((id_width - 1) as u8) << 2) | (offset_width - 1) as u8;
    out.push(header << 2 | OBJECT);
    push_le(out, fields, if is_large { 4 } else { 1 });
    for id in ids {
        push_le(out, id, id_width);
    }
    for &o in offsets {
        push_le(out, o, offset_width);
    }
    out.extend_from_slice(body);
}

/// A value without children (an array or object value is `ValueRef::Owned`, written by `write_value`).
fn write_scalar(value: ValueRef<'_>, out: &mut Vec<u8>) {
    match value {
        ValueRef::Empty | ValueRef::Array { .. } | ValueRef::Owned(_) => {
            out.push(NULL << 2 | PRIMITIVE)
        }
        ValueRef::Str(s) => write_string(s, out),
        ValueRef::Bool(b) => out.push((if b { TRUE } else { FALSE }) << 2 | PRIMITIVE),
        ValueRef::Int(i) => {
            out.push(INT64 << 2 | PRIMITIVE);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Double(d) => {
            out.push(DOUBLE << 2 | PRIMITIVE);
            out.extend_from_slice(&d.to_le_bytes());
        }
        ValueRef::Bytes(bytes) => {
            out.push(BINARY << 2 | PRIMITIVE);
            push_le(out, bytes.len(), 4);
            out.extend_from_slice(bytes);
        }
        ValueRef::Strindex(index) => {
            out.push(INT64 << 2 | PRIMITIVE);
            out.extend_from_slice(&i64::from(index).to_le_bytes());
        }
    }
}

/// Whether a value holds a key-value list anywhere (whose keys go into the row's dictionary).
fn has_object(value: &AnyValue) -> bool {
    match &value.value {
        Some(Value::KvlistValue(_)) => true,
        Some(Value::ArrayValue(array)) => array.values.iter().any(has_object),
        _ => false,
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    if s.len() < 64 {
        out.push((s.len() as u8) << 2 | SHORT_STRING);
    } else {
        out.push(STRING << 2 | PRIMITIVE);
        push_le(out, s.len(), 4);
    }
    out.extend_from_slice(s.as_bytes());
}

fn collect_object_keys(kvs: &[KeyValue], keys: &mut Vec<String>) {
    for kv in kvs {
        if !keys.contains(&kv.key) {
            keys.push(kv.key.clone());
        }
        if let Some(v) = &kv.value {
            collect_keys(v, keys);
        }
    }
}

fn collect_keys(value: &AnyValue, keys: &mut Vec<String>) {
    match &value.value {
        Some(Value::KvlistValue(list)) => collect_object_keys(&list.values, keys),
        Some(Value::ArrayValue(array)) => {
            for v in &array.values {
                collect_keys(v, keys);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(any(v)),
            ..Default::default()
        }
    }

    #[test]
    fn primitives_follow_the_spec_bytes() {
        let mut e = VariantEncoder::default();
        e.encode(Root::Value(&any(Value::IntValue(1))));
        assert_eq!(e.metadata, [0x11, 0, 0]);
        assert_eq!(e.value, [6 << 2, 1, 0, 0, 0, 0, 0, 0, 0]);
        e.encode(Root::Value(&any(Value::StringValue("hi".into()))));
        assert_eq!(e.value, [2 << 2 | 1, b'h', b'i']);
        e.encode(Root::Value(&any(Value::BoolValue(false))));
        assert_eq!(e.value, [2 << 2]);
        e.encode(Root::Value(&AnyValue { value: None }));
        assert_eq!(e.value, [0]);
    }

    #[test]
    fn objects_have_sorted_keys_and_fields() {
        let mut e = VariantEncoder::default();
        let attrs = [
            kv("b", Value::IntValue(2)),
            kv("a", Value::BoolValue(true)),
            kv("b", Value::BoolValue(false)),
        ];
        e.encode(Root::Attributes(&attrs));
        // metadata: version 1, sorted, 1-byte offsets; 2 keys "a","b"
        assert_eq!(e.metadata, [0x11, 2, 0, 1, 2, b'a', b'b']);
        // object header: 1-byte ids and offsets; 2 fields: a (id 0) = true, b (id 1) = false (last one wins)
        assert_eq!(e.value, [OBJECT, 2, 0, 1, 0, 1, 2, TRUE << 2, FALSE << 2]);
    }
}
