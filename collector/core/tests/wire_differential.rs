//! Differential test of `otlake_core::wire` against prost: on valid requests that use every field of every OTLP
//! message, and on tens of thousands of seeded mutations of them, `wire::validate` accepts exactly what prost's
//! decoder accepts, and on accepted inputs `wire::count` agrees with the decoded request's counts. This is what
//! lets a receiver hand on a request undecoded: a stage that decodes it later cannot meet an error the receiver
//! should have answered.
//!
//! Bounded: a fixed number of iterations from a fixed seed (the same inputs every run), about a second in a
//! debug build.

use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{
    AnyValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlake_core::proto::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point, summary_data_point::ValueAtQuantile,
};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use otlake_core::test_util::fuzz::{Rng, mutate};
use otlake_core::wire::{count, validate};
use otlake_core::{ExportRequest, Signal};
use prost::Message;

fn any(value: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: any(value),
        ..Default::default()
    }
}

/// Attributes of every value type, nested ones included.
fn attributes() -> Vec<KeyValue> {
    use any_value::Value::*;
    vec![
        kv("s", StringValue("gen_ai.chat".into())),
        // Multi-byte UTF-8, so mutations cut and flip inside it (the validator checks ASCII and the rest apart).
        kv("u", StringValue("modèle 日本語 ✓".into())),
        kv("b", BoolValue(true)),
        kv("i", IntValue(-42)),
        kv("d", DoubleValue(1.5)),
        kv("y", BytesValue(vec![0, 1, 2])),
        kv(
            "a",
            ArrayValue(otlake_core::proto::common::v1::ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(IntValue(7)),
                    },
                    AnyValue {
                        value: Some(StringValue("x".into())),
                    },
                ],
            }),
        ),
        kv(
            "m",
            KvlistValue(KeyValueList {
                values: vec![kv("inner", StringValue("v".into()))],
            }),
        ),
        kv("r", StringValueStrindex(3)),
    ]
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: attributes(),
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

fn traces() -> ExportTraceServiceRequest {
    let span = |i: u8| Span {
        trace_id: vec![i; 16],
        span_id: vec![i; 8],
        trace_state: "a=b".into(),
        parent_span_id: vec![9; 8],
        flags: 257,
        name: format!("span-{i}"),
        kind: 3,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_500_000_000,
        attributes: attributes(),
        dropped_attributes_count: 1,
        events: vec![span::Event {
            time_unix_nano: 5,
            name: "e".into(),
            attributes: attributes(),
            dropped_attributes_count: 0,
        }],
        dropped_events_count: 2,
        links: vec![span::Link {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            trace_state: "t".into(),
            attributes: attributes(),
            dropped_attributes_count: 3,
            flags: 1,
        }],
        dropped_links_count: 4,
        status: Some(Status {
            message: "err".into(),
            code: 2,
        }),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource(),
                scope_spans: vec![ScopeSpans {
                    scope: scope(),
                    spans: vec![span(1), span(2)],
                    schema_url: "s".into(),
                }],
                schema_url: "r".into(),
            },
            ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![span(3)],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

fn logs() -> ExportLogsServiceRequest {
    use any_value::Value::*;
    let record = |i: u64| LogRecord {
        time_unix_nano: i,
        observed_time_unix_nano: i + 1,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: any(KvlistValue(KeyValueList {
            values: vec![
                kv("prompt", StringValue("hi".into())),
                kv(
                    "list",
                    ArrayValue(otlake_core::proto::common::v1::ArrayValue {
                        values: vec![AnyValue {
                            value: Some(DoubleValue(2.0)),
                        }],
                    }),
                ),
            ],
        })),
        attributes: attributes(),
        dropped_attributes_count: 1,
        flags: 1,
        trace_id: vec![4; 16],
        span_id: vec![5; 8],
        event_name: "gen_ai.user.message".into(),
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![
                ScopeLogs {
                    scope: scope(),
                    log_records: vec![record(1), record(2)],
                    schema_url: "s".into(),
                },
                ScopeLogs {
                    scope: None,
                    log_records: vec![record(3)],
                    schema_url: String::new(),
                },
            ],
            schema_url: "r".into(),
        }],
    }
}

fn metrics() -> ExportMetricsServiceRequest {
    let exemplars = || {
        vec![Exemplar {
            filtered_attributes: attributes(),
            time_unix_nano: 3,
            span_id: vec![1; 8],
            trace_id: vec![2; 16],
            value: Some(exemplar::Value::AsInt(4)),
        }]
    };
    let number = |v: f64| NumberDataPoint {
        attributes: attributes(),
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        exemplars: exemplars(),
        flags: 1,
        value: Some(number_data_point::Value::AsDouble(v)),
    };
    let metric = |name: &str, data: metric::Data| Metric {
        name: name.into(),
        description: "d".into(),
        unit: "1".into(),
        metadata: attributes(),
        data: Some(data),
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    metric(
                        "g",
                        metric::Data::Gauge(Gauge {
                            data_points: vec![number(1.0), number(2.0)],
                        }),
                    ),
                    metric(
                        "s",
                        metric::Data::Sum(Sum {
                            data_points: vec![number(3.0)],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "h",
                        metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: attributes(),
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                count: 6,
                                sum: Some(10.0),
                                bucket_counts: vec![1, 2, 3],
                                explicit_bounds: vec![0.5, 1.0],
                                exemplars: exemplars(),
                                flags: 0,
                                min: Some(0.1),
                                max: Some(9.0),
                            }],
                            aggregation_temporality: 1,
                        }),
                    ),
                    metric(
                        "e",
                        metric::Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint {
                                attributes: attributes(),
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                count: 3,
                                sum: Some(1.0),
                                scale: -2,
                                zero_count: 1,
                                positive: Some(Buckets {
                                    offset: -1,
                                    bucket_counts: vec![1, 300, 70000],
                                }),
                                negative: Some(Buckets {
                                    offset: 2,
                                    bucket_counts: vec![],
                                }),
                                flags: 0,
                                exemplars: exemplars(),
                                min: Some(0.0),
                                max: Some(2.0),
                                zero_threshold: 0.001,
                            }],
                            aggregation_temporality: 2,
                        }),
                    ),
                    metric(
                        "q",
                        metric::Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                attributes: attributes(),
                                start_time_unix_nano: 1,
                                time_unix_nano: 2,
                                count: 4,
                                sum: 8.0,
                                quantile_values: vec![ValueAtQuantile {
                                    quantile: 0.5,
                                    value: 2.0,
                                }],
                                flags: 0,
                            }],
                        }),
                    ),
                ],
                schema_url: "s".into(),
            }],
            schema_url: "r".into(),
        }],
    }
}

fn prost_decode(signal: Signal, bytes: &[u8]) -> Option<ExportRequest> {
    match signal {
        Signal::Traces => ExportTraceServiceRequest::decode(bytes)
            .ok()
            .map(Into::into),
        Signal::Logs => ExportLogsServiceRequest::decode(bytes).ok().map(Into::into),
        Signal::Metrics => ExportMetricsServiceRequest::decode(bytes)
            .ok()
            .map(Into::into),
    }
}

fn check(signal: Signal, bytes: &[u8]) -> bool {
    let decoded = prost_decode(signal, bytes);
    let verdict = validate(signal, bytes);
    assert_eq!(
        verdict.is_ok(),
        decoded.is_some(),
        "{signal}: wire says {verdict:?}, prost says {} for {bytes:02x?}",
        if decoded.is_some() { "ok" } else { "error" }
    );
    if let Some(request) = decoded {
        let counts = count(signal, bytes);
        assert_eq!(
            (counts.items, counts.entries),
            (request.item_count(), request.entry_count()),
            "{signal}: counts of {bytes:02x?}"
        );
        true
    } else {
        false
    }
}

#[test]
fn validation_agrees_with_prost_on_every_field_and_on_mutations() {
    let seeds: Vec<(Signal, Vec<u8>)> = vec![
        (Signal::Traces, traces().encode_to_vec()),
        (Signal::Logs, logs().encode_to_vec()),
        (Signal::Metrics, metrics().encode_to_vec()),
    ];
    let all: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let mut rng = Rng(0x5eed_0f07_1a4e);
    for (signal, seed) in &seeds {
        assert!(check(*signal, seed), "{signal}: the seed is valid");
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..15_000 {
            let bytes = mutate(&mut rng, seed, &all);
            if check(*signal, &bytes) {
                accepted += 1;
            } else {
                refused += 1;
            }
        }
        // Both verdicts are exercised, or the agreement would say little.
        assert!(
            accepted > 500 && refused > 500,
            "{signal}: {accepted} accepted, {refused} refused"
        );
    }
}

#[test]
fn every_signal_is_checked_against_the_others_bytes() {
    // A request of one signal sent to another's endpoint: field numbers overlap, the shapes do not.
    for bytes in [
        traces().encode_to_vec(),
        logs().encode_to_vec(),
        metrics().encode_to_vec(),
    ] {
        for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
            check(signal, &bytes);
        }
    }
}

#[test]
fn oneof_data_points_count_like_prost_when_variants_repeat() {
    // Metric with a gauge, then a sum, then a second sum: prost keeps the merged sums only.
    let point = NumberDataPoint::default();
    let gauge = Metric {
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![point.clone(); 3],
        })),
        ..Default::default()
    };
    let sum = Metric {
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![point.clone(); 2],
            ..Default::default()
        })),
        ..Default::default()
    };
    let mut metric_bytes = gauge.encode_to_vec();
    metric_bytes.extend(sum.encode_to_vec());
    metric_bytes.extend(sum.encode_to_vec());
    let mut scope = Vec::new();
    prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, &mut scope);
    prost::encoding::encode_varint(metric_bytes.len() as u64, &mut scope);
    scope.extend(&metric_bytes);
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics::decode(scope.as_slice()).expect("scope")],
            ..Default::default()
        }],
    };
    assert_eq!(ExportRequest::from(request.clone()).item_count(), 4);
    let mut raw = Vec::new();
    // Re-encode with the raw metric bytes (prost would normalise the oneof on encode).
    let mut resource = Vec::new();
    prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, &mut resource);
    prost::encoding::encode_varint(scope.len() as u64, &mut resource);
    resource.extend(&scope);
    prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut raw);
    prost::encoding::encode_varint(resource.len() as u64, &mut raw);
    raw.extend(&resource);
    assert!(check(Signal::Metrics, &raw));
    assert_eq!(count(Signal::Metrics, &raw).items, 4);
}
