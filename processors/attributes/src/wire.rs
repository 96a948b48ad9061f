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

#[cfg(test)]
mod tests {
    use otlake_core::test_util::fuzz::{Rng, requests};
    use otlake_core::{Payload, parse_config};
    use serde_json::{Value, json};

    use super::*;
    use crate::{attributes_processor, resource_processor};

    /// Keys, names and string values of the random requests: what the configs below look for, and others.
    const WORDS: &[&str] = &[
        "user",
        "ana",
        "n",
        "3",
        "2.5",
        "k",
        "http.route",
        "/health",
        "service.name",
        "s1",
        "GET",
        "",
    ];

    /// `attributes` configs: every action, and `include` / `exclude` on every property a signal allows.
    fn attributes_configs(signal: Signal) -> Vec<Value> {
        let mut configs = vec![
            json!({"actions": [{"key": "user", "action": "hash"}]}),
            json!({"actions": [{"key": "n", "converted_type": "int", "action": "convert"}]}),
            json!({"actions": [{"key": "k", "converted_type": "string", "action": "convert"}]}),
            json!({"actions": [{"key": "k", "converted_type": "double", "action": "convert"}]}),
            json!({"actions": [{"key": "user", "value": "x", "action": "upsert"}],
                   "include": {"match_type": "regexp", "services": ["a"]}}),
            json!({"actions": [{"pattern": "^htt", "action": "delete"}],
                   "exclude": {"match_type": "regexp", "attributes": [{"key": "user", "value": "^a"}]}}),
            json!({"actions": [{"key": "copy", "from_attribute": "user", "action": "insert"}]}),
            json!({"actions": [{"key": "http.route", "pattern": "^/(?P<first>[a-z]+)", "action": "extract"}]}),
            json!({"actions": [{"key": "n", "value": 1, "action": "insert"}],
                   "include": {"match_type": "strict", "libraries": [{"name": "s1"}]}}),
            json!({"actions": [{"key": "n", "value": 1, "action": "upsert"}],
                   "include": {"match_type": "regexp", "resources": [{"key": "service.name", "value": "a"}]}}),
        ];
        let only = match signal {
            Signal::Traces => vec![
                json!({"match_type": "regexp", "span_names": ["^GET"]}),
                json!({"match_type": "strict", "span_kinds": ["SPAN_KIND_SERVER"]}),
            ],
            Signal::Logs => vec![
                json!({"match_type": "strict", "log_bodies": ["ana"]}),
                json!({"match_type": "strict", "log_severity_texts": ["3"]}),
            ],
            Signal::Metrics => vec![json!({"match_type": "strict", "metric_names": ["n"]})],
        };
        for include in only {
            configs
                .push(json!({"actions": [{"key": "k", "action": "delete"}], "include": include}));
        }
        configs
    }

    /// Random requests with repeated and merged fields at every level: the wire looks of `attributes` and
    /// `resource` answer exactly as their decoded looks, for each config.
    #[test]
    fn the_wire_looks_answer_as_the_decoded_looks() {
        const REQUESTS: usize = 500;
        let mut rng = Rng(0xa77_2155);
        for signal in Signal::ALL {
            for config in attributes_configs(signal) {
                let p = attributes_processor(&parse_config(&config).expect("parses"), signal)
                    .expect("valid");
                let mut yes = 0;
                for i in 0..REQUESTS {
                    let bytes = requests::request(&mut rng, signal, WORDS);
                    let payload = Payload::from_wire(signal, bytes.clone().into()).expect("valid");
                    let decoded = p.needs(payload.request().expect("decodes"));
                    let on_wire = p.needs_on_wire(signal, [bytes.as_slice()]);
                    assert_eq!(
                        on_wire, decoded,
                        "{signal} {config}, request {i}: {bytes:?}"
                    );
                    yes += usize::from(on_wire);
                }
                assert!(
                    yes > 0 && yes < REQUESTS,
                    "{signal} {config}: {yes} of {REQUESTS}"
                );
            }
            for config in [
                json!({"attributes": [{"key": "service.name", "value": "ana", "action": "insert"}]}),
                json!({"attributes": [{"key": "n", "converted_type": "string", "action": "convert"}]}),
                json!({"attributes": [{"key": "user", "action": "delete"}]}),
            ] {
                let p = resource_processor(&parse_config(&config).expect("parses")).expect("valid");
                let mut yes = 0;
                for i in 0..REQUESTS {
                    let bytes = requests::request(&mut rng, signal, WORDS);
                    let payload = Payload::from_wire(signal, bytes.clone().into()).expect("valid");
                    let decoded = p.needs(payload.request().expect("decodes"));
                    let on_wire = p.needs_on_wire([bytes.as_slice()]);
                    assert_eq!(
                        on_wire, decoded,
                        "{signal} {config}, request {i}: {bytes:?}"
                    );
                    yes += usize::from(on_wire);
                }
                assert!(
                    yes > 0 && yes < REQUESTS,
                    "{signal} {config}: {yes} of {REQUESTS}"
                );
            }
        }
    }
}
