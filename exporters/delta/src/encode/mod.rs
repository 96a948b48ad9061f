//! The encoding rules of the OTel tables (docs/otel-tables.md, "Encoding rules"), in one place.
//!
//! - ids: lowercase hex; an empty id is NULL (so `parent_span_id IS NULL` finds root spans);
//! - enums: the proto enum names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`, ...); a value the proto does not
//!   know is written as its number, so nothing is lost;
//! - AnyValue to text: a string as is; int, double and bool as their canonical text; arrays and kvlists as
//!   JSON; bytes as base64 (inside JSON: a base64 string).
//!
//! Everything writes into a caller-owned `String` (or a stack buffer) so that converting a batch allocates no
//! string per value, and nothing goes through `core::fmt` on the hot path: integers with `itoa`, doubles with
//! `ryu` (the same shortest round-trip digits as `Display`, which is kept for the rare exponent case), ids
//! through a byte → two hex digits table.
//!
//! One file per kind of value: `ids`, `enums`, `double` (numbers as text), `text` (an AnyValue as the text of a
//! v1 map value or body), `json` (arrays and kvlists as JSON), and `key_repeats` (which keys of an attribute list
//! a later one supersedes, as maps keep a key's last value).

mod double;
mod enums;
mod ids;
mod json;
mod key_repeats;
mod text;

pub use enums::{aggregation_temporality, metric_type, severity_number, span_kind, status_code};
pub use ids::{MAX_STACK_ID, hex_id, hex_str};
pub use json::{push_json_string, push_json_value};
pub use key_repeats::{KeyRepeats, key_repeats, superseded};
pub use text::any_value_text;
