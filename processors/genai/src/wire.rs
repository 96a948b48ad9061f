//! The read-only look on a request still in its wire form: whether normalising would change anything, decided
//! on the validated protobuf bytes without decoding. Each span's or log record's attributes are read in place
//! ([`WireAttributes`]) by the same `Normaliser::needs` as the decoded look, so nothing is allocated per item
//! or attribute, and a request that is already normal goes on as the bytes it came in.
//!
//! Guarantee: when this says no, the decoded look says no. Attributes are read as prost decodes them (every
//! occurrence in order, an attribute's last `key`, its value's occurrences merged). Bytes it cannot read
//! (impossible after validation) count as "would change", which sends the request to the decoded path, where
//! the decode refuses it.

use otlake_core::Signal;
use otlake_core::wire::look::any_resource_group;
use otlake_core::wire::{FieldCursor, Misread, WireAttributes, WireError};

use crate::normalise::Normaliser;

/// Whether normalising the request in `chunks` (wire chunks of one `signal`, see `Payload::wire_chunks`) would
/// change anything.
pub fn needs<'c>(
    normaliser: &Normaliser,
    signal: Signal,
    chunks: impl IntoIterator<Item = &'c [u8]>,
) -> bool {
    // Span attributes (field 9) get a cost; log record attributes (field 6) do not; metrics are left alone.
    let (attributes, with_cost) = match signal {
        Signal::Traces => (9, true),
        Signal::Logs => (6, false),
        Signal::Metrics => return false,
    };
    chunks.into_iter().any(|chunk| {
        let misread = Misread::default();
        let look = any_resource_group(FieldCursor::new(chunk), |group| {
            group.any_scope_group(|scopes| {
                scopes.any_item(|item| {
                    Ok::<_, WireError>(
                        normaliser
                            .needs(WireAttributes::new(item, attributes, &misread), with_cost),
                    )
                })
            })
        });
        look.unwrap_or(true) || misread.happened()
    })
}
