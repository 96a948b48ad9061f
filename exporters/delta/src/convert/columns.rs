//! Column builders shared by the three signals: attribute maps, lists, the resource and scope structs, the
//! exemplar list.
//!
//! Each builder appends one row at a time straight from the proto types (no intermediate rows, no `String` per
//! value) and is finished against the Arrow data type taken from the table's schema, so map and list fields
//! carry Delta's names and a mismatch is an error instead of a silently different file. A builder is reusable
//! after `finish`.
//!
//! One file per kind of column: `attrs` (attribute maps, v1 text or v2 Variant), `list` (`ARRAY<T>`), `group`
//! (the resource and scope structs and the v2 leading columns every row repeats from its group) and
//! `exemplars`. This file keeps what they share: the [`Encoding`], the offsets of maps and lists, and ids.

mod attrs;
mod exemplars;
mod group;
mod list;

use deltalake::arrow::array::StringBuilder;
use deltalake::arrow::buffer::{OffsetBuffer, ScalarBuffer};

pub(crate) use attrs::{AttrColumn, VariantColumn};
pub(crate) use exemplars::{ExemplarColumn, ExemplarsColumn};
pub(crate) use group::{GroupColumns, ResourceColumn, ScopeColumn, V2Columns};
pub(crate) use list::ListColumn;

use crate::encode;

/// How attribute maps (and log bodies) are written: v1 text maps or v2 Variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Text,
    Variant,
}

fn offset_buffer(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    // The next chunk likely has as many rows: room for them up front (4 bytes a row).
    let mut next = Vec::with_capacity(offsets.len());
    next.push(0);
    let taken = std::mem::replace(offsets, next);
    OffsetBuffer::new(ScalarBuffer::from(taken))
}

fn next_offset(len: usize) -> i32 {
    // Chunks are finished long before 2^31 entries (see `convert::CHUNK_ROWS`).
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Appends an id as hex, or NULL when empty.
pub(crate) fn append_id(builder: &mut StringBuilder, id: &[u8], scratch: &mut String) {
    let mut buf = [0u8; 2 * encode::MAX_STACK_ID];
    if let Some(hex) = encode::hex_str(id, &mut buf) {
        builder.append_value(hex);
    } else if encode::hex_id(id, scratch) {
        builder.append_value(scratch.as_str());
    } else {
        builder.append_null();
    }
}
