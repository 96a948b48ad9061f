//! The read-only look on a request still in its wire form: whether redaction would change anything, decided
//! on the validated protobuf bytes with [`FieldCursor`], without decoding. Keys and string values are borrowed
//! from the bytes, so nothing is allocated per item or attribute, and a request with nothing to redact goes on
//! as the bytes it came in (the Delta exporter then converts it from the wire too).
//!
//! Guarantee: when this says no, the decoded look (`RedactionProcessor::needs`) says no. It reads what prost
//! would decode: every occurrence of a repeated or merged field is looked at (a merged message keeps a subset
//! of what its occurrences hold), and the key of an attribute is its last `key` field, as prost keeps it.
//! Bytes it cannot read (impossible after validation) count as "would change", which sends the request to the
//! decoded path, where the decode refuses it.

use otlake_core::Signal;
use otlake_core::wire::look::{any_resource_group, text};
use otlake_core::wire::{FieldCursor, WireError, WireValue};

use crate::redact::{KeyVerdict, Redactor};

/// The bytes could not be read as the message they should be.
struct Unreadable;

impl From<WireError> for Unreadable {
    fn from(_: WireError) -> Self {
        Unreadable
    }
}

type Look = Result<bool, Unreadable>;

/// Whether redacting the request in `chunks` (wire chunks of one `signal`, see `Payload::wire_chunks`) would
/// change anything.
pub fn needs<'a>(
    redactor: &Redactor,
    signal: Signal,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> bool {
    let look = Wire { r: redactor };
    chunks.into_iter().any(|chunk| {
        let request = FieldCursor::new(chunk);
        let result = match signal {
            Signal::Traces => look.traces(request),
            Signal::Logs => look.logs(request),
            Signal::Metrics => look.metrics(request),
        };
        result.unwrap_or(true)
    })
}

/// Whether `f` answers yes for any length-delimited field of the message `cursor` reads. `f` gets the cursor
/// (to enter the field's message with its recursion budget), the field number and the field's bytes.
fn any_field<'a>(
    mut cursor: FieldCursor<'a>,
    mut f: impl FnMut(&FieldCursor<'a>, u32, &'a [u8]) -> Look,
) -> Look {
    let parent = cursor;
    while let Some((tag, value)) = cursor.next_field()? {
        if let WireValue::LengthDelimited(body) = value
            && f(&parent, tag, body)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `truncate: n` would cut a value (`Redactor::attributes_need`): a string longer than `n` characters;
/// a value of another type counts as yes (its text is written only on the decoded path).
fn longer_than(mut value: FieldCursor<'_>, n: usize) -> Look {
    while let Some((tag, field)) = value.next_field()? {
        match (tag, field) {
            (1, WireValue::LengthDelimited(s)) if s.len() > n && text(s)?.chars().count() > n => {
                return Ok(true);
            }
            (2..=8, _) => return Ok(true),
            _ => {}
        }
    }
    Ok(false)
}

struct Wire<'r> {
    r: &'r Redactor,
}

impl Wire<'_> {
    /// Every resource, scope and item of a request's groups (the walk all three requests share); `item` looks
    /// at one span, log record or metric.
    fn groups(&self, request: FieldCursor<'_>, item: fn(&Self, FieldCursor<'_>) -> Look) -> Look {
        any_resource_group(request, |group| {
            Ok(group.any_resource(|r| self.resource(r))?
                || group.any_scope_group(|scopes| -> Look {
                    Ok(scopes.any_scope(|s| self.scope(s))?
                        || scopes.any_item(|i| item(self, i))?)
                })?)
        })
    }

    fn traces(&self, request: FieldCursor<'_>) -> Look {
        self.groups(request, Self::span)
    }

    fn span(&self, span: FieldCursor<'_>) -> Look {
        any_field(span, |c, tag, body| match tag {
            9 => self.key_value(c.enter(body)?, true),
            // Event attributes (3), link attributes (4), status message (2).
            11 => any_field(c.enter(body)?, |c, tag, body| {
                Ok(tag == 3 && self.key_value(c.enter(body)?, true)?)
            }),
            13 => any_field(c.enter(body)?, |c, tag, body| {
                Ok(tag == 4 && self.key_value(c.enter(body)?, true)?)
            }),
            15 => any_field(c.enter(body)?, |_, tag, body| {
                Ok(tag == 2 && self.string(body)?)
            }),
            _ => Ok(false),
        })
    }

    fn logs(&self, request: FieldCursor<'_>) -> Look {
        self.groups(request, Self::log_record)
    }

    /// A LogRecord: body (5), attributes (6).
    fn log_record(&self, record: FieldCursor<'_>) -> Look {
        any_field(record, |c, tag, body| match tag {
            5 => self.any_value(c.enter(body)?),
            6 => self.key_value(c.enter(body)?, true),
            _ => Ok(false),
        })
    }

    fn metrics(&self, request: FieldCursor<'_>) -> Look {
        self.groups(request, Self::metric)
    }

    fn metric(&self, metric: FieldCursor<'_>) -> Look {
        any_field(metric, |c, tag, body| {
            // The data point's attributes field, per kind: gauge and sum (NumberDataPoint), histogram,
            // exponential histogram, summary.
            let attributes = match tag {
                5 | 7 | 11 => 7,
                9 => 9,
                10 => 1,
                _ => return Ok(false),
            };
            any_field(c.enter(body)?, |c, tag, body| {
                Ok(tag == 1
                    && any_field(c.enter(body)?, |c, tag, body| {
                        Ok(tag == attributes && self.key_value(c.enter(body)?, true)?)
                    })?)
            })
        })
    }

    /// Resource attributes: values only (never removed).
    fn resource(&self, resource: FieldCursor<'_>) -> Look {
        any_field(resource, |c, tag, body| {
            Ok(tag == 1 && self.key_value(c.enter(body)?, false)?)
        })
    }

    /// Scope attributes: values only (never removed).
    fn scope(&self, scope: FieldCursor<'_>) -> Look {
        any_field(scope, |c, tag, body| {
            Ok(tag == 3 && self.key_value(c.enter(body)?, false)?)
        })
    }

    /// One attribute, as `Redactor::attributes_need` judges it.
    fn key_value(&self, kv: FieldCursor<'_>, top: bool) -> Look {
        // prost keeps the last `key` field; a missing one is the empty key.
        let mut key: &[u8] = &[];
        let mut fields = kv;
        while let Some((tag, value)) = fields.next_field()? {
            if let (1, WireValue::LengthDelimited(bytes)) = (tag, value) {
                key = bytes;
            }
        }
        match self.r.key_verdict(text(key)?, top) {
            KeyVerdict::Ignored => Ok(false),
            KeyVerdict::Changes => Ok(true),
            KeyVerdict::ValueDecides => any_field(kv, |c, tag, body| {
                Ok(tag == 2 && self.any_value(c.enter(body)?)?)
            }),
            KeyVerdict::TruncatesPast(n) => any_field(kv, |c, tag, body| {
                Ok(tag == 2
                    && (longer_than(c.enter(body)?, n)? || self.any_value(c.enter(body)?)?))
            }),
        }
    }

    /// Whether a string value has a blocked part (`Redactor::utf8_needs`: its UTF-8 is checked only when a
    /// pattern may match).
    fn string(&self, bytes: &[u8]) -> Look {
        self.r.utf8_needs(bytes).ok_or(Unreadable)
    }

    /// Whether a string inside the value has a blocked part (`Redactor::value_needs`).
    fn any_value(&self, value: FieldCursor<'_>) -> Look {
        any_field(value, |c, tag, body| match tag {
            1 => self.string(body),
            5 => any_field(c.enter(body)?, |c, tag, body| {
                Ok(tag == 1 && self.any_value(c.enter(body)?)?)
            }),
            6 => any_field(c.enter(body)?, |c, tag, body| {
                Ok(tag == 1 && self.key_value(c.enter(body)?, false)?)
            }),
            _ => Ok(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use otlake_core::proto::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value};
    use otlake_core::proto::logs::v1::LogRecord;
    use otlake_core::proto::metrics::v1::metric;
    use otlake_core::proto::trace::v1::Status;
    use otlake_core::proto::trace::v1::span::{Event, Link};
    use otlake_core::test_util::fuzz::{Rng, mutate};
    use otlake_core::test_util::{kv, sample_logs, sample_metrics, sample_traces};
    use otlake_core::{ExportRequest, Payload, parse_config};
    use prost::Message;
    use serde_json::json;

    use super::*;
    use crate::RedactionConfig;
    use crate::processor::RedactionProcessor;

    const EMAIL: &str = "ana@example.com";

    fn processor(config: serde_json::Value) -> RedactionProcessor {
        let config: RedactionConfig = parse_config(&config).expect("parses");
        RedactionProcessor::new(Redactor::new(&config).expect("valid"))
    }

    fn configs() -> Vec<RedactionProcessor> {
        [
            json!({"allow_all_keys": true, "builtin_patterns": ["email", "card_number", "api_key"]}),
            json!({"allowed_keys": ["http.route", "note"], "blocked_values": ["ana@"]}),
            json!({"allow_all_keys": true, "ignored_keys": ["note"], "builtin_patterns": ["email"]}),
            json!({"allow_all_keys": true, "blocked_key_patterns": ["^tok"]}),
            json!({"allow_all_keys": true, "content_default": "mask"}),
            json!({"allow_all_keys": true, "content_default": {"truncate": 10}, "builtin_patterns": ["email"]}),
        ]
        .into_iter()
        .map(processor)
        .collect()
    }

    fn text(value: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }
    }

    /// Requests with a secret, or a key some config acts on, in each place the processor reads, and clean ones.
    fn requests() -> Vec<(Signal, Vec<u8>)> {
        let mut out = Vec::new();
        let traces = |edit: &dyn Fn(&mut otlake_core::proto::trace::v1::Span)| {
            let mut r = sample_traces(1, 2);
            edit(&mut r.resource_spans[0].scope_spans[0].spans[1]);
            (Signal::Traces, r.encode_to_vec())
        };
        out.push(traces(&|_| {}));
        out.push(traces(&|s| s.attributes.push(kv("note", EMAIL))));
        out.push(traces(&|s| s.attributes.push(kv("token", "x"))));
        out.push(traces(&|s| s.attributes.push(kv("gen_ai.prompt.0", "hi"))));
        out.push(traces(&|s| {
            s.attributes
                .push(kv("gen_ai.prompt.0", "a prompt longer than ten characters"))
        }));
        out.push(traces(&|s| {
            s.attributes.push(KeyValue {
                key: "list".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::ArrayValue(ArrayValue {
                        values: vec![text("a"), text(EMAIL)],
                    })),
                }),
                ..Default::default()
            })
        }));
        out.push(traces(&|s| {
            s.events.push(Event {
                attributes: vec![kv("note", EMAIL)],
                ..Default::default()
            })
        }));
        out.push(traces(&|s| {
            s.links.push(Link {
                attributes: vec![kv("m", EMAIL)],
                ..Default::default()
            })
        }));
        out.push(traces(&|s| {
            s.status = Some(Status {
                message: format!("failed for {EMAIL}"),
                code: 2,
            })
        }));
        let mut r = sample_traces(1, 1);
        r.resource_spans[0]
            .resource
            .as_mut()
            .expect("resource")
            .attributes
            .push(kv("owner", EMAIL));
        out.push((Signal::Traces, r.encode_to_vec()));
        let mut r = sample_traces(1, 1);
        r.resource_spans[0].scope_spans[0]
            .scope
            .get_or_insert_default()
            .attributes
            .push(kv("o", EMAIL));
        out.push((Signal::Traces, r.encode_to_vec()));

        let logs = |body: AnyValue| {
            let mut r = sample_logs(1, 1);
            r.resource_logs[0].scope_logs[0]
                .log_records
                .push(LogRecord {
                    body: Some(body),
                    ..Default::default()
                });
            (Signal::Logs, r.encode_to_vec())
        };
        out.push(logs(text("nothing here")));
        out.push(logs(text(EMAIL)));
        out.push(logs(AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv("note", "plain"), kv("inner", EMAIL)],
            })),
        }));

        out.push((Signal::Metrics, sample_metrics(1).encode_to_vec()));
        let mut r = sample_metrics(1);
        for m in &mut r.resource_metrics[0].scope_metrics[0].metrics {
            match &mut m.data {
                Some(metric::Data::Gauge(g)) => g.data_points[1].attributes.push(kv("note", EMAIL)),
                Some(metric::Data::Histogram(h)) => {
                    h.data_points[0].attributes.push(kv("tokenizer", "x"))
                }
                _ => {}
            }
        }
        out.push((Signal::Metrics, r.encode_to_vec()));

        out.push((Signal::Traces, duplicate_key()));
        out
    }

    /// A span whose one added attribute has its `key` field twice, `first` then `note`: prost keeps `note`
    /// (which one config ignores). prost never writes this, so the bytes are put together by hand.
    fn duplicate_key() -> Vec<u8> {
        use prost::encoding::{WireType, bytes, encode_key, encode_varint};
        let value = [&[0x0a, EMAIL.len() as u8][..], EMAIL.as_bytes()].concat();
        let mut kv = Vec::new();
        bytes::encode(1, &b"first".to_vec(), &mut kv);
        bytes::encode(1, &b"note".to_vec(), &mut kv);
        bytes::encode(2, &value, &mut kv);
        let mut span =
            sample_traces(1, 1).resource_spans[0].scope_spans[0].spans[0].encode_to_vec();
        encode_key(9, WireType::LengthDelimited, &mut span);
        encode_varint(kv.len() as u64, &mut span);
        span.extend_from_slice(&kv);
        let mut scope_spans = Vec::new();
        bytes::encode(2, &span, &mut scope_spans);
        let mut resource_spans = Vec::new();
        bytes::encode(2, &scope_spans, &mut resource_spans);
        let mut request = Vec::new();
        bytes::encode(1, &resource_spans, &mut request);
        request
    }

    fn decoded(signal: Signal, bytes: &[u8]) -> ExportRequest {
        Payload::from_wire(signal, bytes.to_vec().into())
            .expect("valid")
            .into_request()
            .expect("decodes")
    }

    #[test]
    fn the_wire_look_answers_as_the_decoded_look() {
        let requests = requests();
        for (c, p) in configs().iter().enumerate() {
            let mut yes = 0;
            for (i, (signal, bytes)) in requests.iter().enumerate() {
                let on_wire = needs(&p.redactor, *signal, [bytes.as_slice()]);
                assert_eq!(
                    on_wire,
                    p.needs(&decoded(*signal, bytes)),
                    "config {c}, request {i}"
                );
                yes += usize::from(on_wire);
            }
            assert!(
                yes > 0 && yes < requests.len(),
                "config {c}: {yes} of {}",
                requests.len()
            );
        }
    }

    /// Mutated requests that still validate: whenever the decoded look would redact, the wire look says so too
    /// (it may say yes more often: it looks at every occurrence of a field prost merges).
    #[test]
    fn on_mutated_requests_the_wire_look_never_misses_what_the_decoded_look_finds() {
        let requests = requests();
        let seeds: Vec<Vec<u8>> = requests.iter().map(|(_, b)| b.clone()).collect();
        let configs = configs();
        let mut rng = Rng(0x5eed_f00d);
        let mut checked = 0;
        for _ in 0..20_000 {
            let (signal, seed) = &requests[rng.below(requests.len())];
            let bytes = mutate(&mut rng, seed, &seeds);
            if otlake_core::wire::validate(*signal, &bytes).is_err() {
                continue;
            }
            let request = decoded(*signal, &bytes);
            for p in &configs {
                if p.needs(&request) {
                    assert!(needs(&p.redactor, *signal, [bytes.as_slice()]), "{bytes:?}");
                }
            }
            checked += 1;
        }
        assert!(checked > 1_000, "{checked} valid mutations");
    }
}
