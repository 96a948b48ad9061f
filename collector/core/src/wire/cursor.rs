//! [`FieldCursor`]: a zero-copy reader of the fields of one protobuf message, public for the stages that
//! convert a request straight from its wire form. It reads with the same primitives as the validator, so it
//! refuses what prost refuses while reading; what depends on the schema is left to its caller, or to
//! [`FieldCursor::validate_as`] for a whole part of a request.

use super::reader::{
    FIXED32, FIXED64, LENGTH_DELIMITED, RECURSION_LIMIT, Reader, VARINT, WireError, skip,
};
use super::schema::{
    ANY_VALUE, EXPONENTIAL_HISTOGRAM, GAUGE, HISTOGRAM, KEY_VALUE, RESOURCE, SCOPE, SUM, SUMMARY,
};
use super::validate::walk;

/// The value of one field of a message, as the wire carries it (see [`FieldCursor`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// Bytes, a string or a nested message, borrowed from the buffer.
    LengthDelimited(&'a [u8]),
    /// A group (a proto2 encoding no OTLP field uses), already skipped as prost skips it.
    Group,
}

/// A zero-copy cursor over the fields of one protobuf message, for stages that read a request straight from
/// its wire form instead of decoding it into prost's owned types. It checks what prost's decoder checks while
/// reading keys and values (varints, keys, lengths, groups and their recursion budget); the caller checks what
/// depends on the schema: wire types of known fields, UTF-8 of strings, and entering nested messages through
/// [`FieldCursor::enter`], which applies prost's recursion limit. One thing is left to callers that nest that
/// deep: prost also refuses an unknown field of a message at the recursion limit (`depth_left() == 0`).
#[derive(Clone, Copy, Debug)]
pub struct FieldCursor<'a> {
    bytes: &'a [u8],
    depth_left: u32,
}

/// Hands `each` the values of one occurrence of a `repeated` varint field (`uint64`, `int32`, ...), as prost
/// reads it: packed (a length-delimited run of varints) or one varint; another wire type, or a packed run that
/// ends inside a varint, is refused.
pub fn repeated_varints(field: WireValue<'_>, mut each: impl FnMut(u64)) -> Result<(), WireError> {
    match field {
        WireValue::LengthDelimited(body) => {
            let mut packed = Reader(body);
            while !packed.is_empty() {
                each(packed.varint()?);
            }
        }
        WireValue::Varint(value) => each(value),
        _ => return Err(WireError::new("invalid wire type")),
    }
    Ok(())
}

/// Hands `each` the values of one occurrence of a `repeated` 64-bit field (`fixed64`, `double`, ...), as prost
/// reads it: packed (a length-delimited run of 8-byte words) or one word; another wire type, or a packed run
/// whose length is not a multiple of 8, is refused.
pub fn repeated_fixed64(field: WireValue<'_>, mut each: impl FnMut(u64)) -> Result<(), WireError> {
    match field {
        WireValue::LengthDelimited(body) => {
            if !body.len().is_multiple_of(8) {
                return Err(WireError::new("buffer underflow"));
            }
            for word in body.chunks_exact(8) {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(word);
                each(u64::from_le_bytes(bytes));
            }
        }
        WireValue::Fixed64(value) => each(value),
        _ => return Err(WireError::new("invalid wire type")),
    }
    Ok(())
}

/// A message whose bytes [`FieldCursor::validate_as`] can check at its place in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Resource,
    InstrumentationScope,
    KeyValue,
    AnyValue,
    /// A metric's `data`, one per variant.
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
}

impl<'a> FieldCursor<'a> {
    /// The fields of an export request (the top-level message, with prost's full recursion budget).
    pub fn new(bytes: &'a [u8]) -> Self {
        FieldCursor {
            bytes,
            depth_left: RECURSION_LIMIT,
        }
    }

    /// prost's recursion budget left for this message's fields.
    pub fn depth_left(&self) -> u32 {
        self.depth_left
    }

    /// The next field: its number and value, or `None` at the end of the message.
    #[inline]
    pub fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, WireError> {
        let bytes = self.bytes;
        let Some(&key) = bytes.first() else {
            return Ok(None);
        };
        // The common case inline: a one-byte key (fields 1 to 15) and, for varints and lengths, a one-byte
        // value. Anything else, errors included, takes the general path.
        if (8..0x80).contains(&key) {
            let tag = u32::from(key >> 3);
            match u64::from(key & 7) {
                LENGTH_DELIMITED => {
                    if let Some(&len) = bytes.get(1)
                        && len < 0x80
                        && let Some(body) = bytes.get(2..2 + usize::from(len))
                    {
                        self.bytes = &bytes[2 + usize::from(len)..];
                        return Ok(Some((tag, WireValue::LengthDelimited(body))));
                    }
                }
                VARINT => {
                    if let Some(&value) = bytes.get(1)
                        && value < 0x80
                    {
                        self.bytes = &bytes[2..];
                        return Ok(Some((tag, WireValue::Varint(u64::from(value)))));
                    }
                    // A longer varint (token counts, ports): the key is read already.
                    let mut reader = Reader(&bytes[1..]);
                    let value = reader.varint()?;
                    self.bytes = reader.0;
                    return Ok(Some((tag, WireValue::Varint(value))));
                }
                FIXED64 => {
                    if let Some(word) = bytes.get(1..9).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
                        self.bytes = &bytes[9..];
                        return Ok(Some((tag, WireValue::Fixed64(u64::from_le_bytes(word)))));
                    }
                }
                FIXED32 => {
                    if let Some(word) = bytes.get(1..5).and_then(|w| <[u8; 4]>::try_from(w).ok()) {
                        self.bytes = &bytes[5..];
                        return Ok(Some((tag, WireValue::Fixed32(u32::from_le_bytes(word)))));
                    }
                }
                _ => {}
            }
        }
        self.next_field_general()
    }

    #[inline(never)]
    fn next_field_general(&mut self) -> Result<Option<(u32, WireValue<'a>)>, WireError> {
        let mut reader = Reader(self.bytes);
        let (tag, wire_type) = reader.key()?;
        let value = match wire_type {
            VARINT => WireValue::Varint(reader.varint()?),
            FIXED64 => {
                let raw = reader.take(8)?;
                let mut word = [0u8; 8];
                word.copy_from_slice(raw);
                WireValue::Fixed64(u64::from_le_bytes(word))
            }
            LENGTH_DELIMITED => WireValue::LengthDelimited(reader.length_delimited()?),
            FIXED32 => {
                let raw = reader.take(4)?;
                let mut word = [0u8; 4];
                word.copy_from_slice(raw);
                WireValue::Fixed32(u32::from_le_bytes(word))
            }
            _ => {
                // START_GROUP (skipped whole) or END_GROUP (refused), as prost's `skip_field` does.
                skip(wire_type, tag, &mut reader, self.depth_left)?;
                WireValue::Group
            }
        };
        self.bytes = reader.0;
        Ok(Some((tag, value)))
    }

    /// The fields of `body`, a message nested in this one (refused past prost's recursion limit).
    #[inline]
    pub fn enter(&self, body: &'a [u8]) -> Result<FieldCursor<'a>, WireError> {
        if self.depth_left == 0 {
            return Err(WireError::new("recursion limit reached"));
        }
        Ok(FieldCursor {
            bytes: body,
            depth_left: self.depth_left - 1,
        })
    }

    /// Checks the rest of this message as [`validate`](super::validate) checks a `part` at this depth of a request: after it
    /// passes, prost decodes the bytes as that message.
    pub fn validate_as(&self, part: Part) -> Result<(), WireError> {
        let schema = match part {
            Part::Resource => &RESOURCE,
            Part::InstrumentationScope => &SCOPE,
            Part::KeyValue => &KEY_VALUE,
            Part::AnyValue => &ANY_VALUE,
            Part::Gauge => &GAUGE,
            Part::Sum => &SUM,
            Part::Histogram => &HISTOGRAM,
            Part::ExponentialHistogram => &EXPONENTIAL_HISTOGRAM,
            Part::Summary => &SUMMARY,
        };
        walk(schema, &mut Reader(self.bytes), self.depth_left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn the_field_cursor_reads_values_skips_groups_and_limits_depth() {
        use crate::proto::common::v1::{AnyValue, KeyValue, any_value};
        let kv = KeyValue {
            key: "k".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(7)),
            }),
            ..Default::default()
        };
        let mut bytes = kv.encode_to_vec();
        // An unknown group (field 9) holding a varint, then a fixed32 and a fixed64 of unknown fields.
        bytes.extend_from_slice(&[9 << 3 | 3, 1 << 3, 5, 9 << 3 | 4]);
        bytes.extend_from_slice(&[10 << 3 | 5, 1, 0, 0, 0, 11 << 3 | 1, 2, 0, 0, 0, 0, 0, 0, 0]);
        let mut cursor = FieldCursor::new(&bytes);
        let mut seen = Vec::new();
        while let Some(field) = cursor.next_field().expect("valid") {
            seen.push(field);
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0], (1, WireValue::LengthDelimited(b"k")));
        let (2, WireValue::LengthDelimited(value)) = seen[1] else {
            panic!("value: {:?}", seen[1]);
        };
        let mut inner = cursor.enter(value).expect("depth");
        assert_eq!(
            inner.next_field().expect("valid"),
            Some((3, WireValue::Varint(7)))
        );
        assert_eq!(inner.next_field().expect("valid"), None);
        assert_eq!(
            &seen[2..],
            &[
                (9, WireValue::Group),
                (10, WireValue::Fixed32(1)),
                (11, WireValue::Fixed64(2))
            ]
        );
        assert!(
            FieldCursor::new(&[1 << 3 | 4]).next_field().is_err(),
            "a lone end group"
        );
        assert!(
            FieldCursor::new(&[1 << 3 | 2, 5]).next_field().is_err(),
            "past the end"
        );
        let mut deep = FieldCursor::new(&[]);
        for _ in 0..RECURSION_LIMIT {
            deep = deep.enter(&[]).expect("within the limit");
        }
        assert!(deep.enter(&[]).is_err(), "prost's recursion limit");
    }
}
