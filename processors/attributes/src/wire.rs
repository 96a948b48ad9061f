//! The read-only looks on a request still in its wire form, decided on the validated protobuf bytes without
//! decoding: each span, log record or data point becomes an [`Item`] whose strings are borrowed from the bytes
//! and whose attribute lists are read in place ([`WireAttributes`]), for the same matcher and action engine as
//! the decoded look (`items`). Nothing is allocated per item or attribute, and a request no action applies to
//! goes on as the bytes it came in.
//!
//! Guarantee: when a look here says no, the decoded look says no. It reads what prost would decode: a scalar
//! field's last occurrence, a singular message field's occurrences merged (a scope, a resource, a body), a
//! metric's data points of its last data variant only (prost's oneof), an attribute's last `key`. Bytes it
//! cannot read (impossible after validation) count as "would change", which sends the request to the decoded
//! path, where the decode refuses it.

use otlake_core::Signal;
use otlake_core::wire::look::{MetricData, any_resource_group, text, value_of};
use otlake_core::wire::{FieldCursor, Misread, WireAttributes, WireError, WireValue};

use crate::matcher::{Item, ItemKind};

/// The bytes could not be read as the message they should be.
struct Unreadable;

impl From<WireError> for Unreadable {
    fn from(_: WireError) -> Self {
        Unreadable
    }
}

type Look = Result<bool, Unreadable>;

/// Whether `f` says yes for any item (span, log record, data point) of the request in `chunks` (wire chunks of
/// one `signal`, see `Payload::wire_chunks`); unreadable bytes count as yes.
pub fn any_item<'c>(
    signal: Signal,
    chunks: impl IntoIterator<Item = &'c [u8]>,
    mut f: impl FnMut(&Item<'_, WireAttributes<'_>>) -> bool,
) -> bool {
    chunks.into_iter().any(|chunk| {
        let misread = Misread::default();
        items(signal, FieldCursor::new(chunk), &misread, &mut f).unwrap_or(true)
            || misread.happened()
    })
}

/// Whether `f` says yes for the attributes of any resource of the request in `chunks` (a group without a
/// resource has an empty list); unreadable bytes count as yes.
pub fn any_resource<'c>(
    chunks: impl IntoIterator<Item = &'c [u8]>,
    mut f: impl FnMut(WireAttributes<'_>) -> bool,
) -> bool {
    chunks.into_iter().any(|chunk| {
        let misread = Misread::default();
        any_resource_group(FieldCursor::new(chunk), |group| {
            Ok::<_, Unreadable>(f(group.attributes(&misread)))
        })
        .unwrap_or(true)
            || misread.happened()
    })
}

fn items<'a>(
    signal: Signal,
    request: FieldCursor<'a>,
    misread: &'a Misread,
    f: &mut impl FnMut(&Item<'_, WireAttributes<'_>>) -> bool,
) -> Look {
    any_resource_group(request, |group| {
        let resource = group.attributes(misread);
        group.any_scope_group(|scopes| -> Look {
            let scope = scopes.scope()?;
            scopes.any_item(|entry| match signal {
                Signal::Traces => {
                    // A span: name 5, kind 6, attributes 9.
                    let (mut name, mut kind) = ("", 0);
                    let mut fields = entry;
                    while let Some((tag, value)) = fields.next_field()? {
                        match (tag, value) {
                            (5, WireValue::LengthDelimited(n)) => name = text(n)?,
                            (6, WireValue::Varint(k)) => kind = k as i32,
                            (5 | 6, _) => return Err(Unreadable),
                            _ => {}
                        }
                    }
                    Ok(f(&Item {
                        resource,
                        scope,
                        attributes: WireAttributes::new(entry, 9, misread),
                        kind: ItemKind::Span { name, kind },
                    }))
                }
                Signal::Logs => {
                    // A log record: severity text 3, body 5, attributes 6.
                    let mut severity_text = "";
                    let mut fields = entry;
                    while let Some((tag, value)) = fields.next_field()? {
                        match (tag, value) {
                            (3, WireValue::LengthDelimited(t)) => severity_text = text(t)?,
                            (3, _) => return Err(Unreadable),
                            _ => {}
                        }
                    }
                    Ok(f(&Item {
                        resource,
                        scope,
                        attributes: WireAttributes::new(entry, 6, misread),
                        kind: ItemKind::Log {
                            body: value_of(entry, 5)?,
                            severity_text,
                        },
                    }))
                }
                Signal::Metrics => {
                    let data = MetricData::read(entry)?;
                    let field = data.point_attributes_field();
                    data.any_point(|point| {
                        Ok::<_, Unreadable>(f(&Item {
                            resource,
                            scope,
                            attributes: WireAttributes::new(point, field, misread),
                            kind: ItemKind::DataPoint {
                                metric_name: data.name,
                            },
                        }))
                    })
                }
            })
        })
    })
}
