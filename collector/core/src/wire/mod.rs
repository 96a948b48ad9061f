//! Validation of OTLP protobuf export requests without decoding them.
//!
//! Most pipelines never look inside a request: they count it, batch it, and write or forward it. Decoding into
//! prost's owned types (one allocation per string, id and attribute, freed one by one afterwards) was the largest
//! CPU cost of the receive path, so a receiver keeps the request in its wire form and checks here that it *would*
//! decode: [`validate`] walks every field of every nested message, as prost's decoder does, and refuses exactly
//! the inputs prost refuses (invalid varints and keys, wrong wire types for known fields, lengths beyond the
//! message, invalid UTF-8 in string fields, unbalanced groups, nesting past prost's recursion limit). It
//! allocates nothing. A stage that needs the structured request decodes it later with prost (see
//! [`crate::Payload::request`]), and that decode cannot fail on validated bytes: the differential test in this
//! module's tests and `tests/wire_differential.rs` hold [`validate`] to prost's verdict on mutated inputs.
//!
//! [`count`] reads the item and entry counts of a validated request from its outer levels only, and
//! [`FieldCursor`] reads the fields of a message one by one for the stages that convert a request straight from
//! its wire form ([`repeated_varints`] and [`repeated_fixed64`] the values of a repeated number field, packed or
//! not). [`look`] holds the read-only looks of the editing processors: the resource → scope → item walk and
//! attribute lists read in place.
//!
//! One file per job: `schema` is the table of OTLP messages the validator checks against, `validate` walks a
//! request against it, `cursor` is the public field reader, `count` counts items, and `reader` holds the protobuf
//! primitives (wire types, varints, keys, skipping unknown fields) that the validator, the cursor and the
//! counter share, with the error they report.

mod count;
mod cursor;
pub mod look;
mod reader;
mod schema;
mod validate;

pub use count::{Counts, count};
pub use cursor::{FieldCursor, Part, WireValue, repeated_fixed64, repeated_varints};
pub use look::{Misread, WireAttributes};
pub use reader::WireError;
pub use validate::validate;
