//! Column builders shared by the three signals: attribute maps, lists, the resource and scope structs, the
//! exemplar list.
//!
//! Each builder appends one row at a time straight from the proto types (no intermediate rows, no `String` per
//! value) and is finished against the Arrow data type taken from the table's schema, so map and list fields
//! carry Delta's names and a mismatch is an error instead of a silently different file. A builder is reusable
//! after `finish`.
//!
//! One file per kind of column: `attrs` (attribute maps, v1 text or v2 Variant, and the [`Encoding`] that
//! chooses between them), `list` (`ARRAY<T>`, and the offsets lists and maps share), `group` (the resource and
//! scope structs and the v2 leading columns every row repeats from its group), `exemplars`, and `ids` (an id as
//! hex, or NULL). This file only declares them and re-exports what the table builders use.

mod attrs;
mod exemplars;
mod group;
mod ids;
mod list;

pub(crate) use attrs::{AttrColumn, Encoding, VariantColumn};
pub(crate) use exemplars::{ExemplarColumn, ExemplarsColumn};
pub(crate) use group::{GroupColumns, ResourceColumn, ScopeColumn, V2Columns};
pub(crate) use ids::append_id;
pub(crate) use list::ListColumn;
