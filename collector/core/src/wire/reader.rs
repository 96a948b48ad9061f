//! The protobuf primitives the validator, the field cursor and the counter share: wire types, a cursor over
//! bytes that reads varints, keys and lengths exactly as prost's decoder does (refusing what it refuses), skipping
//! an unknown field as prost's `skip_field` does, and [`WireError`], the one error all of them report.
//!
//! Nothing here knows the OTLP schema; nothing allocates except an error's path, on the way out of a failure.

/// Why a request is not valid OTLP protobuf: where (message and field path) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}{}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
pub struct WireError {
    /// From the outermost message to the field that was wrong, e.g. `ResourceSpans.scope_spans.Span.name`.
    pub path: String,
    pub reason: &'static str,
}

impl WireError {
    pub(super) fn new(reason: &'static str) -> Self {
        WireError {
            path: String::new(),
            reason,
        }
    }

    /// Prepends `message.field` on the way out of the recursion (error path only).
    pub(super) fn within(mut self, message: &str, field: &str) -> Self {
        self.path = if self.path.is_empty() {
            format!("{message}.{field}")
        } else {
            format!("{message}.{field}.{}", self.path)
        };
        self
    }
}

/// prost's recursion limit (`prost::RECURSION_LIMIT`, not configurable without a crate feature).
pub(super) const RECURSION_LIMIT: u32 = 100;

pub(super) const VARINT: u64 = 0;
pub(super) const FIXED64: u64 = 1;
pub(super) const LENGTH_DELIMITED: u64 = 2;
const START_GROUP: u64 = 3;
const END_GROUP: u64 = 4;
pub(super) const FIXED32: u64 = 5;

/// A cursor over protobuf bytes.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A varint, refused past 10 bytes or beyond `u64::MAX`, as prost refuses it.
    #[inline]
    pub(super) fn varint(&mut self) -> Result<u64, WireError> {
        // Nearly every key and most lengths fit one byte: taken without the general loop (the validation walk
        // reads two or three varints per field, so this loop was its largest cost).
        if let Some((&byte, rest)) = self.0.split_first()
            && byte < 0x80
        {
            self.0 = rest;
            return Ok(u64::from(byte));
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                if i == 9 && byte >= 0x02 {
                    break;
                }
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError::new("invalid varint"))
    }

    #[inline]
    pub(super) fn take(&mut self, len: u64) -> Result<&'a [u8], WireError> {
        if len > self.0.len() as u64 {
            return Err(WireError::new("buffer underflow"));
        }
        let (head, tail) = self.0.split_at(len as usize);
        self.0 = tail;
        Ok(head)
    }

    #[inline]
    pub(super) fn length_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        self.take(len)
    }

    /// A field key: (tag, wire type), checked as prost's `decode_key` checks it.
    #[inline]
    pub(super) fn key(&mut self) -> Result<(u32, u64), WireError> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError::new("invalid key value"));
        }
        let wire_type = key & 7;
        if wire_type > FIXED32 {
            return Err(WireError::new("invalid wire type value"));
        }
        let tag = (key >> 3) as u32;
        if tag == 0 {
            return Err(WireError::new("invalid tag value: 0"));
        }
        Ok((tag, wire_type))
    }
}

/// Skips an unknown field as prost's `skip_field` does, groups and their recursion budget included.
pub(super) fn skip(
    wire_type: u64,
    tag: u32,
    reader: &mut Reader<'_>,
    depth_left: u32,
) -> Result<(), WireError> {
    if depth_left == 0 {
        return Err(WireError::new("recursion limit reached"));
    }
    match wire_type {
        VARINT => {
            reader.varint()?;
        }
        FIXED64 => {
            reader.take(8)?;
        }
        LENGTH_DELIMITED => {
            reader.length_delimited()?;
        }
        START_GROUP => loop {
            let (inner_tag, inner_wire_type) = reader.key()?;
            if inner_wire_type == END_GROUP {
                if inner_tag != tag {
                    return Err(WireError::new("unexpected end group tag"));
                }
                break;
            }
            skip(inner_wire_type, inner_tag, reader, depth_left - 1)?;
        },
        END_GROUP => return Err(WireError::new("unexpected end group tag")),
        _ => {
            reader.take(4)?;
        }
    }
    Ok(())
}
