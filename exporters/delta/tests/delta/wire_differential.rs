//! Differential tests of the spans wire path (`Rows::append_wire`) against the decoded path (prost decode +
//! `Rows::append`), the reference (log records here too, metrics in [`metrics`]): on requests that use every span field and every AnyValue kind, on the
//! tests' GenAI traces, on seeded random combinations, and on thousands of seeded mutations of their bytes,
//! the record batches must be equal (v1 and v2; v2's `record_id` is a fresh UUIDv7 per row and is compared by
//! shape only), and bytes prost refuses must be refused, without a panic.
//!
//! Bounded: fixed seeds and iteration counts, a few seconds in a debug build.

use std::collections::HashMap;

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::record_batch::RecordBatch;
use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{
    AnyValue, ArrayValue as ArrayValueMsg, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
    any_value,
};
use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use otlake_core::test_util::fuzz::{Rng, mutate};
use otlake_core::test_util::sample_traces;
use otlake_core::{ExportRequest, Payload, Signal};
use otlake_exporter_delta::config::{SchemaVersion, SeverityNumberFormat};
use otlake_exporter_delta::convert::Rows;
use otlake_exporter_delta::location::Location;
use otlake_exporter_delta::schema::TableSchema;
use otlake_exporter_delta::{SinkOptions, TableSink, TableSpec};
use prost::Message;

use crate::data::{self, any, kv};

mod metrics;

const VERSIONS: [SchemaVersion; 2] = [SchemaVersion::V1, SchemaVersion::V2];

/// Attributes of every value kind: nested arrays and lists (with a list inside an array), bytes, doubles
/// that print in every way, strings that need JSON escapes and a long one (a long Variant string), an empty
/// value, a value-less key, a string index, and duplicate keys (the last value wins) at the top and nested.
fn attributes() -> Vec<KeyValue> {
    use any_value::Value::*;
    vec![
        kv("s", StringValue("gen_ai.chat".into())),
        kv("b", BoolValue(true)),
        kv("f", BoolValue(false)),
        kv("i", IntValue(-42)),
        kv("d", DoubleValue(1.5)),
        kv("d.big", DoubleValue(1e300)),
        kv("d.nan", DoubleValue(f64::NAN)),
        kv("d.inf", DoubleValue(f64::NEG_INFINITY)),
        kv("y", BytesValue(vec![0, 1, 2, 255])),
        kv("long", StringValue("x\"y\n\u{1}é".repeat(20))),
        kv(
            "a",
            ArrayValue(ArrayValueMsg {
                values: vec![
                    AnyValue {
                        value: Some(IntValue(7)),
                    },
                    AnyValue {
                        value: Some(StringValue("x".into())),
                    },
                    AnyValue { value: None },
                ],
            }),
        ),
        kv(
            "m",
            KvlistValue(KeyValueList {
                values: vec![
                    kv("inner", StringValue("v".into())),
                    kv("inner", DoubleValue(0.25)),
                    kv("z", ArrayValue(ArrayValueMsg { values: vec![] })),
                ],
            }),
        ),
        kv(
            "am",
            ArrayValue(ArrayValueMsg {
                values: vec![AnyValue {
                    value: Some(KvlistValue(KeyValueList {
                        values: vec![kv("deep", BoolValue(true))],
                    })),
                }],
            }),
        ),
        kv(
            "arr",
            ArrayValue(ArrayValueMsg {
                values: vec![
                    AnyValue {
                        value: Some(BytesValue(vec![9, 8])),
                    },
                    AnyValue {
                        value: Some(DoubleValue(f64::NAN)),
                    },
                    AnyValue {
                        value: Some(DoubleValue(-0.125)),
                    },
                    AnyValue {
                        value: Some(BoolValue(false)),
                    },
                    AnyValue {
                        value: Some(StringValueStrindex(-1)),
                    },
                    AnyValue {
                        value: Some(StringValue("q\"\t".into())),
                    },
                ],
            }),
        ),
        kv("arr.empty", ArrayValue(ArrayValueMsg { values: vec![] })),
        kv("r", StringValueStrindex(3)),
        KeyValue {
            key: "empty".into(),
            value: Some(AnyValue { value: None }),
            ..Default::default()
        },
        KeyValue {
            key: "none".into(),
            ..Default::default()
        },
        kv("s", StringValue("second wins".into())),
        kv("", IntValue(0)),
    ]
}

fn scalar_attributes(n: usize) -> Vec<KeyValue> {
    use any_value::Value::*;
    (0..n)
        .map(|i| match i % 4 {
            0 => kv(&format!("k{i}"), StringValue(format!("v{i}"))),
            1 => kv(&format!("k{i}"), IntValue(i as i64)),
            2 => kv(&format!("k{i}"), DoubleValue(i as f64 / 8.0)),
            _ => kv(&format!("k{i}"), BoolValue(i % 8 == 3)),
        })
        .collect()
}

fn resource() -> Option<Resource> {
    let mut attributes = attributes();
    attributes.push(kv(
        "service.name",
        any_value::Value::StringValue("svc".into()),
    ));
    Some(Resource {
        attributes,
        dropped_attributes_count: 1,
        entity_refs: vec![EntityRef {
            schema_url: "u".into(),
            r#type: "service".into(),
            id_keys: vec!["service.name".into()],
            description_keys: vec!["d".into()],
        }],
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "lib".into(),
        version: "1".into(),
        attributes: attributes(),
        dropped_attributes_count: 2,
    })
}

/// A span that sets every field.
fn full_span(i: u8) -> Span {
    Span {
        trace_id: vec![i; 16],
        span_id: vec![i; 8],
        trace_state: "a=b".into(),
        parent_span_id: vec![9; 8],
        flags: 257,
        name: format!("span-{i}"),
        kind: 3,
        start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(i),
        end_time_unix_nano: u64::MAX,
        attributes: attributes(),
        dropped_attributes_count: 1,
        events: vec![
            span::Event {
                time_unix_nano: 5,
                name: "e".into(),
                attributes: attributes(),
                dropped_attributes_count: 7,
            },
            span::Event::default(),
        ],
        dropped_events_count: 2,
        links: vec![
            span::Link {
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                trace_state: "t".into(),
                attributes: attributes(),
                dropped_attributes_count: 3,
                flags: 1,
            },
            span::Link::default(),
        ],
        dropped_links_count: 4,
        status: Some(Status {
            message: "err".into(),
            code: 2,
        }),
    }
}

/// Every span field, several resources and scopes (one absent each), empty and odd ids (long, short), no
/// status, unknown enum values, many attributes (a large Variant object), empty groups.
fn full_request() -> ExportTraceServiceRequest {
    let odd = Span {
        trace_id: vec![0xab; 40],
        span_id: vec![1],
        kind: 99,
        status: Some(Status {
            message: String::new(),
            code: 7,
        }),
        attributes: scalar_attributes(300),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource(),
                scope_spans: vec![
                    ScopeSpans {
                        scope: scope(),
                        spans: vec![full_span(1), full_span(2)],
                        schema_url: "s".into(),
                    },
                    ScopeSpans {
                        scope: None,
                        spans: vec![odd, Span::default()],
                        schema_url: String::new(),
                    },
                    ScopeSpans::default(),
                ],
                schema_url: "r".into(),
            },
            ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![full_span(3)],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
            ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope::default()),
                    spans: vec![full_span(4)],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
            ResourceSpans::default(),
        ],
    }
}

/// A random request built from the pieces above: spans with random subsets of the fields and attributes.
fn random_request(rng: &mut Rng) -> ExportTraceServiceRequest {
    let pool = attributes();
    let pick_attributes = |rng: &mut Rng| -> Vec<KeyValue> {
        (0..rng.below(6))
            .map(|_| pool[rng.below(pool.len())].clone())
            .collect()
    };
    let mut spans = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let mut s = full_span(rng.below(256) as u8);
        if rng.below(2) == 0 {
            s.parent_span_id.clear();
        }
        if rng.below(3) == 0 {
            s.status = None;
        }
        s.attributes = pick_attributes(rng);
        s.events.truncate(rng.below(3));
        for e in &mut s.events {
            e.attributes = pick_attributes(rng);
        }
        s.links.truncate(rng.below(3));
        for l in &mut s.links {
            l.attributes = pick_attributes(rng);
        }
        s.kind = rng.below(7) as i32;
        spans.push(s);
    }
    let groups = 1 + rng.below(3);
    let mut resource_spans = Vec::new();
    for g in 0..groups {
        let mut r = resource();
        if let Some(r) = &mut r {
            r.attributes = pick_attributes(rng);
            r.attributes.push(kv(
                "service.name",
                any_value::Value::StringValue(format!("svc-{g}")),
            ));
        }
        resource_spans.push(ResourceSpans {
            resource: if rng.below(4) == 0 { None } else { r },
            scope_spans: vec![ScopeSpans {
                scope: if rng.below(4) == 0 { None } else { scope() },
                spans: spans.split_off(spans.len() - spans.len().min(1 + rng.below(2))),
                schema_url: String::new(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
        });
    }
    ExportTraceServiceRequest { resource_spans }
}

/// Builders and schemas for both paths, of one table and schema version.
struct Pair {
    signal: Signal,
    version: SchemaVersion,
    schema: TableSchema,
    wire: Rows,
    decoded: Rows,
}

impl Pair {
    fn new(version: SchemaVersion) -> Self {
        Pair::of(Signal::Traces, version)
    }

    fn of(signal: Signal, version: SchemaVersion) -> Self {
        // Severity names (not numbers) for logs: one more rule that must agree.
        let rows = || Rows::new(signal, version, SeverityNumberFormat::Name);
        Pair {
            signal,
            version,
            schema: TableSchema::new(signal, version).expect("schema"),
            wire: rows(),
            decoded: rows(),
        }
    }

    /// Appends one request's bytes to both builders; `Err` when prost refuses them, and then the wire path
    /// must refuse them too (tried on a builder of its own, which a refusal may leave with part of the
    /// request: the sink drops such a builder with its window).
    fn append(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let (signal, decoded) = match self.signal {
            Signal::Logs => (
                Signal::Logs,
                ExportLogsServiceRequest::decode(bytes).map(ExportRequest::Logs),
            ),
            Signal::Metrics => (
                Signal::Metrics,
                ExportMetricsServiceRequest::decode(bytes).map(ExportRequest::Metrics),
            ),
            _ => (
                Signal::Traces,
                ExportTraceServiceRequest::decode(bytes).map(ExportRequest::Traces),
            ),
        };
        match decoded {
            Ok(request) => {
                let decoded = self
                    .decoded
                    .append(&request)
                    .expect("converts")
                    .expect("right table");
                let wire = self
                    .wire
                    .append_wire(signal, bytes)
                    .unwrap_or_else(|e| panic!("prost decodes it but the wire path says: {e}"))
                    .expect("the table has a wire path");
                assert_eq!(wire, decoded, "rows added");
                assert_eq!(wire, request.item_count());
                Ok(wire)
            }
            Err(e) => {
                let mut scratch = Rows::new(self.signal, self.version, SeverityNumberFormat::Name);
                let wire = scratch.append_wire(signal, bytes);
                assert!(
                    wire.is_err(),
                    "prost refuses it ({e}) but the wire path accepts it"
                );
                Err(e.to_string())
            }
        }
    }

    /// Finishes both and asserts the batches are equal.
    fn assert_equal(&mut self, context: &str) -> RecordBatch {
        let wire = self.wire.finish(&self.schema.arrow).expect("wire batch");
        let decoded = self
            .decoded
            .finish(&self.schema.arrow)
            .expect("decoded batch");
        assert_batches_equal(&wire, &decoded, context);
        wire
    }
}

/// Equal batches, column by column for a readable failure; `record_id` (random UUIDv7s) by shape only.
fn assert_batches_equal(wire: &RecordBatch, decoded: &RecordBatch, context: &str) {
    assert_eq!(wire.schema(), decoded.schema(), "{context}: schema");
    assert_eq!(wire.num_rows(), decoded.num_rows(), "{context}: rows");
    for (i, field) in wire.schema().fields().iter().enumerate() {
        let (w, d) = (wire.column(i), decoded.column(i));
        if field.name() == "record_id" {
            let (w, d) = (w.as_string::<i32>(), d.as_string::<i32>());
            assert_eq!(w.null_count(), 0, "{context}: record ids");
            assert!(w.iter().all(|id| id.is_some_and(|id| id.len() == 36)));
            assert_eq!(d.len(), w.len());
            continue;
        }
        assert_eq!(
            w.to_data(),
            d.to_data(),
            "{context}: column {} differs",
            field.name()
        );
    }
}

fn seeds() -> Vec<(String, ExportTraceServiceRequest)> {
    let mut seeds = vec![
        ("full request".to_owned(), full_request()),
        ("sample_traces".to_owned(), sample_traces(3, 4)),
        ("genai traces".to_owned(), data::genai_traces(0, 5, 3)),
        (
            "empty request".to_owned(),
            ExportTraceServiceRequest::default(),
        ),
    ];
    with_random(
        &mut seeds,
        "random request",
        Rng(0x5eed_0001),
        random_request,
    );
    seeds
}

/// Adds 40 requests made by `random` to `seeds`, named `{label} {i}`.
fn with_random<M>(
    seeds: &mut Vec<(String, M)>,
    label: &str,
    mut rng: Rng,
    random: impl Fn(&mut Rng) -> M,
) {
    for i in 0..40 {
        seeds.push((format!("{label} {i}"), random(&mut rng)));
    }
}

#[test]
fn wire_rows_equal_decoded_rows_on_every_field_and_random_requests() {
    for version in VERSIONS {
        let mut pair = Pair::new(version);
        for (name, request) in seeds() {
            let bytes = request.encode_to_vec();
            pair.append(&bytes).expect("valid");
            let batch = pair.assert_equal(&format!("{name}, {version:?}"));
            assert_eq!(
                batch.num_rows(),
                ExportRequest::Traces(request).item_count()
            );
        }
        // Several requests in one chunk: the per-group encodings of resources and scopes must not leak from
        // one request (or group) into the next.
        for (name, request) in seeds() {
            pair.append(&request.encode_to_vec()).expect("valid");
            pair.append(&full_request().encode_to_vec()).expect("valid");
            pair.append(&sample_traces(2, 1).encode_to_vec())
                .expect("valid");
            pair.assert_equal(&format!("{name} and two more in one chunk, {version:?}"));
        }
    }
}

/// A length-delimited field `tag` holding `body`, written by hand (for encodings no prost encoder writes).
fn field(tag: u32, body: &[u8]) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let mut out = Vec::new();
    encode_key(tag, WireType::LengthDelimited, &mut out);
    encode_varint(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

/// Bytes that prost reads the same way but no prost encoder writes: fields out of order (a resource and
/// schema URLs after the spans), scalar fields given twice (the last wins), messages given twice (merged),
/// an attribute value given twice, unknown fields and groups everywhere.
#[test]
fn unusual_but_valid_encodings_are_read_as_prost_reads_them() {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let unknown = {
        let mut out = Vec::new();
        encode_key(99, WireType::StartGroup, &mut out);
        encode_key(1, WireType::Varint, &mut out);
        encode_varint(5, &mut out);
        encode_key(99, WireType::EndGroup, &mut out);
        encode_key(98, WireType::SixtyFourBit, &mut out);
        out.extend_from_slice(&[0; 8]);
        out.extend(field(97, b"junk"));
        out
    };
    let mut span = full_span(5).encode_to_vec();
    span.extend(&unknown);
    // The name and kind again, a second status (merged: the code changes, the message stays).
    span.extend(field(5, b"renamed"));
    encode_key(6, WireType::Varint, &mut span);
    encode_varint(u64::MAX, &mut span);
    span.extend(field(
        15,
        &Status {
            message: String::new(),
            code: 1,
        }
        .encode_to_vec(),
    ));
    // An attribute whose value is given twice (merged: the second, a string, replaces the int), one whose
    // second value is an empty AnyValue (merged: the first stays), and one whose value is a string then an
    // array (the array wins).
    let mut twice = kv("twice", any_value::Value::IntValue(1)).encode_to_vec();
    twice.extend(field(
        2,
        &AnyValue {
            value: Some(any_value::Value::StringValue("s".into())),
        }
        .encode_to_vec(),
    ));
    twice.extend(&unknown);
    span.extend(field(9, &twice));
    let mut kept = kv("kept", any_value::Value::BoolValue(true)).encode_to_vec();
    kept.extend(field(2, &[]));
    span.extend(field(9, &kept));
    let mut nested = kv("nested", any_value::Value::StringValue("s".into())).encode_to_vec();
    nested.extend(field(
        2,
        &AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValueMsg {
                values: vec![AnyValue {
                    value: Some(any_value::Value::IntValue(2)),
                }],
            })),
        }
        .encode_to_vec(),
    ));
    span.extend(field(9, &nested));
    // An attribute whose value is an array given twice (merged: the elements of both).
    let array = |v: i64| {
        AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValueMsg {
                values: vec![AnyValue {
                    value: Some(any_value::Value::IntValue(v)),
                }],
            })),
        }
        .encode_to_vec()
    };
    span.extend(field(
        9,
        &[
            field(1, b"arrays"),
            field(2, &array(1)),
            field(2, &array(2)),
        ]
        .concat(),
    ));
    span.extend(field(
        9,
        &[
            field(1, b"arrays.one"),
            field(2, &[array(1), array(2)].concat()),
        ]
        .concat(),
    ));
    // A scalar AnyValue field given twice inside one AnyValue: the last wins.
    let mut scalar_twice = AnyValue {
        value: Some(any_value::Value::IntValue(1)),
    }
    .encode_to_vec();
    scalar_twice.extend(
        AnyValue {
            value: Some(any_value::Value::BoolValue(true)),
        }
        .encode_to_vec(),
    );
    span.extend(field(
        9,
        &[field(1, b"scalar_twice"), field(2, &scalar_twice)].concat(),
    ));

    let mut scope_spans = field(2, &span);
    scope_spans.extend(field(3, b"scope-schema-after-the-spans"));
    scope_spans.extend(field(1, &scope().expect("scope").encode_to_vec()));
    scope_spans.extend(&unknown);
    let mut resource_spans = field(2, &scope_spans);
    resource_spans.extend(field(3, b"resource-schema-after"));
    resource_spans.extend(field(1, &resource().expect("resource").encode_to_vec()));
    // A second resource message: merged (attributes appended, dropped count replaced).
    resource_spans.extend(field(
        1,
        &Resource {
            attributes: vec![kv(
                "service.name",
                any_value::Value::StringValue("merged".into()),
            )],
            dropped_attributes_count: 9,
            entity_refs: vec![],
        }
        .encode_to_vec(),
    ));
    resource_spans.extend(field(2, &scope_spans));
    let mut request = unknown.clone();
    request.extend(field(1, &resource_spans));
    request.extend(&unknown);
    request.extend(field(1, &resource_spans));

    for version in VERSIONS {
        let mut pair = Pair::new(version);
        assert_eq!(pair.append(&request), Ok(4));
        let batch = pair.assert_equal(&format!("unusual encodings, {version:?}"));
        let name = batch.column_by_name("name").expect("name");
        assert_eq!(
            name.as_string::<i32>().value(0),
            "renamed",
            "the last name wins"
        );
    }
}

/// Appends `rounds` mutations of the first twelve `seeds` per schema version to both paths, holding the wire
/// path to prost's verdict and rows every 16 appends; the mutations must exercise both verdicts.
fn mutations_read_as_prost_reads_them<M: Message>(
    signal: Signal,
    seeds: Vec<(String, M)>,
    mut rng: Rng,
    rounds: usize,
) {
    let seeds: Vec<Vec<u8>> = seeds
        .into_iter()
        .take(12)
        .map(|(_, r)| r.encode_to_vec())
        .collect();
    let (mut accepted, mut refused) = (0, 0);
    for version in VERSIONS {
        let mut pair = Pair::of(signal, version);
        for i in 0..rounds {
            let seed = &seeds[rng.below(seeds.len())];
            let bytes = mutate(&mut rng, seed, &seeds);
            match pair.append(&bytes) {
                Ok(_) => accepted += 1,
                Err(_) => refused += 1,
            }
            if i % 16 == 0 {
                pair.assert_equal(&format!("{signal:?} mutations up to {i}, {version:?}"));
            }
        }
        pair.assert_equal(&format!("the last {signal:?} mutations, {version:?}"));
    }
    assert!(
        accepted > rounds / 5 && refused > rounds / 5,
        "the mutations exercise both verdicts: {accepted} accepted, {refused} refused"
    );
}

#[test]
fn mutated_bytes_are_refused_as_prost_refuses_them_or_read_as_prost_reads_them() {
    mutations_read_as_prost_reads_them(Signal::Traces, seeds(), Rng(0x5eed_0002), 2500);
}

#[test]
fn truncated_requests_are_errors_not_panics() {
    let bytes = full_request().encode_to_vec();
    let log_bytes = full_logs().encode_to_vec();
    let mut refused = 0;
    for cut in (0..bytes.len()).step_by(7) {
        let mut rows = Rows::new(
            Signal::Traces,
            SchemaVersion::V2,
            SeverityNumberFormat::Number,
        );
        let wire = rows.append_wire(Signal::Traces, &bytes[..cut]);
        let mut logs = Rows::new(
            Signal::Logs,
            SchemaVersion::V2,
            SeverityNumberFormat::Number,
        );
        let logs_wire = logs.append_wire(Signal::Logs, &log_bytes[..cut.min(log_bytes.len())]);
        let logs_prost = ExportLogsServiceRequest::decode(&log_bytes[..cut.min(log_bytes.len())]);
        assert_eq!(logs_wire.is_ok(), logs_prost.is_ok(), "logs cut at {cut}");
        let prost = ExportTraceServiceRequest::decode(&bytes[..cut]);
        assert_eq!(wire.is_ok(), prost.is_ok(), "cut at {cut}");
        refused += usize::from(wire.is_err());
    }
    assert!(refused > 0);
}

#[test]
fn a_merged_wire_payload_converts_like_the_merged_decoded_one() {
    let (first, second) = (full_request(), data::genai_traces(10, 4, 2));
    let wire = |r: &ExportTraceServiceRequest| {
        Payload::from_wire(Signal::Traces, r.encode_to_vec().into()).expect("valid")
    };
    let mut merged_wire = wire(&first);
    merged_wire.merge(wire(&second)).expect("same signal");
    assert!(merged_wire.is_wire());
    let mut merged_decoded = Payload::from(first);
    merged_decoded
        .merge(Payload::from(second))
        .expect("same signal");
    for version in VERSIONS {
        let mut pair = Pair::new(version);
        let added = pair
            .wire
            .append_wire(Signal::Traces, &merged_wire.encoded())
            .expect("valid")
            .expect("wire path");
        assert_eq!(added, merged_wire.item_count());
        pair.decoded
            .append(merged_decoded.request().expect("decoded"))
            .expect("spans");
        pair.assert_equal(&format!("merged payloads, {version:?}"));
    }
    assert!(merged_wire.is_wire(), "no decoded copy was made");
}

#[test]
fn another_signals_bytes_have_no_wire_path_in_a_table() {
    let logs = otlake_core::test_util::sample_logs(1, 1).encode_to_vec();
    let mut spans = Rows::new(
        Signal::Traces,
        SchemaVersion::V1,
        SeverityNumberFormat::Number,
    );
    assert_eq!(
        spans.append_wire(Signal::Logs, &logs),
        Ok(None),
        "another signal"
    );
    assert!(spans.is_empty());
}

/// Through the sink: a wire payload is written without being decoded, and the table gets the same rows as
/// from the decoded payload (spans, log records, metric points).
#[tokio::test]
async fn the_sink_writes_wire_payloads_without_decoding_them() {
    let requests = [
        ExportRequest::from(data::genai_traces(0, 6, 2)),
        ExportRequest::from(data::mixed_logs(0, 8)),
        ExportRequest::from(data::all_metric_types(4)),
    ];
    for request in requests {
        let signal = request.signal();
        let wire = Payload::from_wire(signal, request.encode_to_vec().into()).expect("valid");
        let decoded = Payload::from(request);
        let mut tables = Vec::new();
        for (name, payload) in [("wire", &wire), ("decoded", &decoded)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let location = Location::parse(dir.path().to_str().expect("utf-8")).expect("location");
            location.prepare().expect("prepare");
            let url = location.table_url(name).expect("url");
            let mut sink = TableSink::open(TableSpec {
                name: name.to_owned(),
                url,
                signal,
                version: SchemaVersion::V1,
                storage_options: HashMap::new(),
                app_id: "test".to_owned(),
                options: SinkOptions::default(),
            })
            .await
            .expect("open");
            assert_eq!(
                sink.append(payload).await.expect("append"),
                payload.item_count()
            );
            sink.commit().await.expect("commit");
            tables.push((dir, read_parquet(&sink).await));
        }
        assert!(
            wire.is_wire(),
            "{signal}: the sink made no decoded copy of the payload"
        );
        assert_batches_equal(
            &tables[0].1,
            &tables[1].1,
            &format!("{signal} tables written by the sink"),
        );
    }
}

/// A conversion error discards the whole window (the exporter answers every batch of it `Retryable`, so none
/// of its rows may reach the table later), and the sink takes new rows afterwards.
#[tokio::test]
async fn a_conversion_error_discards_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = Location::parse(dir.path().to_str().expect("utf-8")).expect("location");
    location.prepare().expect("prepare");
    let mut sink = TableSink::open(TableSpec {
        name: "spans".to_owned(),
        url: location.table_url("spans").expect("url"),
        signal: Signal::Traces,
        version: SchemaVersion::V2,
        storage_options: HashMap::new(),
        app_id: "test".to_owned(),
        options: SinkOptions::default(),
    })
    .await
    .expect("open");
    let spans = |r: ExportTraceServiceRequest| {
        Payload::from_wire(Signal::Traces, r.encode_to_vec().into()).expect("valid")
    };
    sink.append(&spans(full_request())).await.expect("append");
    assert!(sink.window_rows() > 0);
    let logs = Payload::from_wire(
        Signal::Logs,
        otlake_core::test_util::sample_logs(1, 1)
            .encode_to_vec()
            .into(),
    )
    .expect("valid");
    let err = sink
        .append(&logs)
        .await
        .expect_err("logs into the spans table");
    assert!(err.to_string().contains("this table takes traces"), "{err}");
    assert_eq!(sink.window_rows(), 0, "the window is gone");
    assert_eq!(
        sink.commit().await.expect("commit"),
        otlake_exporter_delta::CommitOutcome::Empty
    );
    let added = sink
        .append(&spans(sample_traces(1, 3)))
        .await
        .expect("append after the error");
    assert_eq!(added, 3);
    assert_eq!(
        sink.commit().await.expect("commit"),
        otlake_exporter_delta::CommitOutcome::Committed {
            table_version: 1,
            rows: 3
        }
    );
}

/// Every row of a local table (its Parquet files, in file name order: one file here).
async fn read_parquet(sink: &TableSink) -> RecordBatch {
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let dir = sink.url().to_file_path().expect("local");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("table dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 1, "one file per commit here");
    let file = std::fs::File::open(&files[0]).expect("open");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    deltalake::arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat")
}

/// A log record that sets every field.
fn full_record(i: u64, body: Option<AnyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        observed_time_unix_nano: 1_700_000_000_000_000_500 + i,
        severity_number: (i % 26) as i32,
        severity_text: "INFO".into(),
        body,
        attributes: attributes(),
        dropped_attributes_count: 3,
        flags: 257,
        trace_id: vec![i as u8; 16],
        span_id: vec![7; 8],
        event_name: "gen_ai.choice".into(),
    }
}

/// Bodies of every kind (each attribute value of `attributes()`, an empty AnyValue, none), records without
/// times (v2 takes the observed time), several resources and scopes (one absent each).
fn full_logs() -> ExportLogsServiceRequest {
    let mut records: Vec<LogRecord> = attributes()
        .into_iter()
        .enumerate()
        .map(|(i, kv)| full_record(i as u64, kv.value))
        .collect();
    records.push(full_record(90, Some(AnyValue { value: None })));
    records.push(full_record(91, None));
    records.push(LogRecord::default());
    let mut untimed = full_record(92, any(any_value::Value::IntValue(5)));
    untimed.time_unix_nano = 0;
    records.push(untimed);
    let half = records.split_off(records.len() / 2);
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: resource(),
                scope_logs: vec![
                    ScopeLogs {
                        scope: scope(),
                        log_records: records,
                        schema_url: "s".into(),
                    },
                    ScopeLogs::default(),
                ],
                schema_url: "r".into(),
            },
            ResourceLogs {
                resource: None,
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: half,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

fn random_logs(rng: &mut Rng) -> ExportLogsServiceRequest {
    let pool = attributes();
    let records = (0..1 + rng.below(5))
        .map(|i| {
            let body = match rng.below(4) {
                0 => None,
                _ => pool[rng.below(pool.len())].value.clone(),
            };
            let mut record = full_record(i as u64, body);
            record.attributes = (0..rng.below(6))
                .map(|_| pool[rng.below(pool.len())].clone())
                .collect();
            if rng.below(2) == 0 {
                record.trace_id.clear();
            }
            record
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: if rng.below(4) == 0 { None } else { resource() },
            scope_logs: vec![ScopeLogs {
                scope: if rng.below(4) == 0 { None } else { scope() },
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn log_seeds() -> Vec<(String, ExportLogsServiceRequest)> {
    let mut seeds = vec![
        ("full logs".to_owned(), full_logs()),
        (
            "sample_logs".to_owned(),
            otlake_core::test_util::sample_logs(2, 3),
        ),
        ("mixed logs".to_owned(), data::mixed_logs(0, 16)),
        (
            "empty request".to_owned(),
            ExportLogsServiceRequest::default(),
        ),
    ];
    with_random(&mut seeds, "random logs", Rng(0x5eed_0003), random_logs);
    seeds
}

#[test]
fn wire_log_rows_equal_decoded_log_rows() {
    for version in VERSIONS {
        let mut pair = Pair::of(Signal::Logs, version);
        for (name, request) in log_seeds() {
            pair.append(&request.encode_to_vec()).expect("valid");
            pair.assert_equal(&format!("{name}, {version:?}"));
        }
        for (name, request) in log_seeds() {
            pair.append(&request.encode_to_vec()).expect("valid");
            pair.append(&full_logs().encode_to_vec()).expect("valid");
            pair.assert_equal(&format!("{name} and more in one chunk, {version:?}"));
        }
    }
}

/// Bodies given twice (merged as prost merges them), fields out of order, unknown fields.
#[test]
fn unusual_log_encodings_are_read_as_prost_reads_them() {
    let any_bytes = |v: any_value::Value| AnyValue { value: Some(v) }.encode_to_vec();
    let array = |v: i64| {
        any_bytes(any_value::Value::ArrayValue(ArrayValueMsg {
            values: vec![AnyValue {
                value: Some(any_value::Value::IntValue(v)),
            }],
        }))
    };
    let bodies: Vec<Vec<Vec<u8>>> = vec![
        // A string then an int: the int.
        vec![
            any_bytes(any_value::Value::StringValue("s".into())),
            any_bytes(any_value::Value::IntValue(3)),
        ],
        // A value then an empty AnyValue: the value stays.
        vec![any_bytes(any_value::Value::BoolValue(true)), Vec::new()],
        // An empty AnyValue alone: an empty body (NULL text, Variant null).
        vec![Vec::new()],
        // Two arrays: merged.
        vec![array(1), array(2)],
        // An array then a string: the string.
        vec![
            array(1),
            any_bytes(any_value::Value::StringValue("s".into())),
        ],
        // A key-value list then a double.
        vec![
            any_bytes(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv("k", any_value::Value::IntValue(1))],
            })),
            any_bytes(any_value::Value::DoubleValue(2.5)),
        ],
    ];
    let mut records = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let mut record = full_record(i as u64, None).encode_to_vec();
        for b in body {
            record.extend(field(5, b));
        }
        record.extend(field(12, b"renamed"));
        record.extend(field(99, b"unknown"));
        records.extend(field(2, &record));
    }
    let mut scope_logs = records;
    scope_logs.extend(field(1, &scope().expect("scope").encode_to_vec()));
    let mut resource_logs = field(2, &scope_logs);
    resource_logs.extend(field(1, &resource().expect("resource").encode_to_vec()));
    let request = field(1, &resource_logs);
    for version in VERSIONS {
        let mut pair = Pair::of(Signal::Logs, version);
        assert_eq!(pair.append(&request), Ok(bodies.len()));
        let batch = pair.assert_equal(&format!("unusual log encodings, {version:?}"));
        let name = batch.column_by_name("event_name").expect("event_name");
        assert_eq!(name.as_string::<i32>().value(0), "renamed");
    }
}

#[test]
fn mutated_log_bytes_are_refused_as_prost_refuses_them_or_read_as_prost_reads_them() {
    mutations_read_as_prost_reads_them(Signal::Logs, log_seeds(), Rng(0x5eed_0004), 2000);
}
