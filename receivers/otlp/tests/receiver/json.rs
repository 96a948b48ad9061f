//! OTLP/JSON: the OTLP specification's example documents (opentelemetry-proto `examples/*.json`) land exactly
//! like the equivalent protobuf, in camelCase and in snake_case; answers come back in JSON.

use http::StatusCode;
use otlake_core::Payload;
use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlake_core::proto::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, metric, number_data_point,
};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::{Value, json};

use crate::support::*;

fn value(v: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn string_kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value(any_value::Value::StringValue(v.into())),
        ..Default::default()
    }
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value(v),
        ..Default::default()
    }
}

fn example_resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![string_kv("service.name", "my.service")],
        ..Default::default()
    })
}

fn example_scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "my.library".into(),
        version: "1.0.0".into(),
        attributes: vec![string_kv("my.scope.attribute", "some scope attribute")],
        ..Default::default()
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// examples/trace.json of the OTLP specification.
fn trace_json() -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
            "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
            "spans": [{
                "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "EEE19B7EC3C1B174",
                "parentSpanId": "EEE19B7EC3C1B173",
                "name": "I'm a server span",
                "startTimeUnixNano": 1544712660000000000u64,
                "endTimeUnixNano": 1544712661000000000u64,
                "kind": 2,
                "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}]
            }]
        }]
    }]})
}

/// The same document with the proto field names (snake_case) and 64-bit integers as strings.
fn trace_json_snake_case() -> Value {
    json!({"resource_spans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"string_value": "my.service"}}]},
        "scope_spans": [{
            "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"string_value": "some scope attribute"}}]},
            "spans": [{
                "trace_id": "5b8efff798038103d269b633813fc60c",
                "span_id": "eee19b7ec3c1b174",
                "parent_span_id": "eee19b7ec3c1b173",
                "name": "I'm a server span",
                "start_time_unix_nano": "1544712660000000000",
                "end_time_unix_nano": "1544712661000000000",
                "kind": 2,
                "attributes": [{"key": "my.span.attr", "value": {"string_value": "some value"}}]
            }]
        }]
    }]})
}

fn trace_expected() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: example_resource(),
            scope_spans: vec![ScopeSpans {
                scope: example_scope(),
                spans: vec![Span {
                    trace_id: hex("5B8EFFF798038103D269B633813FC60C"),
                    span_id: hex("EEE19B7EC3C1B174"),
                    parent_span_id: hex("EEE19B7EC3C1B173"),
                    name: "I'm a server span".into(),
                    start_time_unix_nano: 1_544_712_660_000_000_000,
                    end_time_unix_nano: 1_544_712_661_000_000_000,
                    kind: 2,
                    attributes: vec![string_kv("my.span.attr", "some value")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// examples/logs.json of the OTLP specification.
fn logs_json() -> Value {
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeLogs": [{
            "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
            "logRecords": [{
                "timeUnixNano": "1544712660300000000",
                "observedTimeUnixNano": "1544712660300000000",
                "severityNumber": 10,
                "severityText": "Information",
                "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "EEE19B7EC3C1B174",
                "body": {"stringValue": "Example log record"},
                "attributes": [
                    {"key": "string.attribute", "value": {"stringValue": "some string"}},
                    {"key": "boolean.attribute", "value": {"boolValue": true}},
                    {"key": "int.attribute", "value": {"intValue": "10"}},
                    {"key": "double.attribute", "value": {"doubleValue": 637.704}},
                    {"key": "array.attribute", "value": {"arrayValue": {"values": [
                        {"stringValue": "many"}, {"stringValue": "values"}]}}},
                    {"key": "map.attribute", "value": {"kvlistValue": {"values": [
                        {"key": "some.map.key", "value": {"stringValue": "some value"}}]}}}
                ]
            }]
        }]
    }]})
}

fn logs_expected() -> ExportLogsServiceRequest {
    use any_value::Value as V;
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: example_resource(),
            scope_logs: vec![ScopeLogs {
                scope: example_scope(),
                log_records: vec![LogRecord {
                    time_unix_nano: 1_544_712_660_300_000_000,
                    observed_time_unix_nano: 1_544_712_660_300_000_000,
                    severity_number: 10,
                    severity_text: "Information".into(),
                    trace_id: hex("5B8EFFF798038103D269B633813FC60C"),
                    span_id: hex("EEE19B7EC3C1B174"),
                    body: value(V::StringValue("Example log record".into())),
                    attributes: vec![
                        string_kv("string.attribute", "some string"),
                        kv("boolean.attribute", V::BoolValue(true)),
                        kv("int.attribute", V::IntValue(10)),
                        kv("double.attribute", V::DoubleValue(637.704)),
                        kv(
                            "array.attribute",
                            V::ArrayValue(ArrayValue {
                                values: vec![
                                    AnyValue {
                                        value: Some(V::StringValue("many".into())),
                                    },
                                    AnyValue {
                                        value: Some(V::StringValue("values".into())),
                                    },
                                ],
                            }),
                        ),
                        kv(
                            "map.attribute",
                            V::KvlistValue(KeyValueList {
                                values: vec![string_kv("some.map.key", "some value")],
                            }),
                        ),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// examples/metrics.json of the OTLP specification.
fn metrics_json() -> Value {
    let attr = |key: &str| json!([{"key": key, "value": {"stringValue": "some value"}}]);
    json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeMetrics": [{
            "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
            "metrics": [
                {"name": "my.counter", "unit": "1", "description": "I am a Counter",
                 "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [{
                    "asDouble": 5, "startTimeUnixNano": "1544712660300000000",
                    "timeUnixNano": "1544712660300000000", "attributes": attr("my.counter.attr")}]}},
                {"name": "my.gauge", "unit": "1", "description": "I am a Gauge",
                 "gauge": {"dataPoints": [{
                    "asInt": "10", "timeUnixNano": "1544712660300000000",
                    "attributes": attr("my.gauge.attr")}]}},
                {"name": "my.histogram", "unit": "1", "description": "I am a Histogram",
                 "histogram": {"aggregationTemporality": 1, "dataPoints": [{
                    "startTimeUnixNano": "1544712660300000000", "timeUnixNano": "1544712660300000000",
                    "count": "3", "sum": 3, "bucketCounts": ["1", 1, "1"], "explicitBounds": [1],
                    "min": 1, "max": 1, "attributes": attr("my.histogram.attr")}]}}
            ]
        }]
    }]})
}

fn metrics_expected() -> ExportMetricsServiceRequest {
    const T: u64 = 1_544_712_660_300_000_000;
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: example_resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: example_scope(),
                metrics: vec![
                    Metric {
                        name: "my.counter".into(),
                        unit: "1".into(),
                        description: "I am a Counter".into(),
                        data: Some(metric::Data::Sum(Sum {
                            aggregation_temporality: 1,
                            is_monotonic: true,
                            data_points: vec![NumberDataPoint {
                                value: Some(number_data_point::Value::AsDouble(5.0)),
                                start_time_unix_nano: T,
                                time_unix_nano: T,
                                attributes: vec![string_kv("my.counter.attr", "some value")],
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "my.gauge".into(),
                        unit: "1".into(),
                        description: "I am a Gauge".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                value: Some(number_data_point::Value::AsInt(10)),
                                time_unix_nano: T,
                                attributes: vec![string_kv("my.gauge.attr", "some value")],
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "my.histogram".into(),
                        unit: "1".into(),
                        description: "I am a Histogram".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            aggregation_temporality: 1,
                            data_points: vec![HistogramDataPoint {
                                start_time_unix_nano: T,
                                time_unix_nano: T,
                                count: 3,
                                sum: Some(3.0),
                                bucket_counts: vec![1, 1, 1],
                                explicit_bounds: vec![1.0],
                                min: Some(1.0),
                                max: Some(1.0),
                                attributes: vec![string_kv("my.histogram.attr", "some value")],
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn spec_examples_land_exactly_like_their_protobuf() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let addr = receiver.http_addr();
    let cases: [(&str, Value, Payload); 4] = [
        ("/v1/traces", trace_json(), trace_expected().into()),
        (
            "/v1/traces",
            trace_json_snake_case(),
            trace_expected().into(),
        ),
        ("/v1/logs", logs_json(), logs_expected().into()),
        ("/v1/metrics", metrics_json(), metrics_expected().into()),
    ];
    for (path, body, expected) in &cases {
        let reply = post_json(addr, path, body.to_string()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.json(), json!({}));
        let reply = post_protobuf(addr, path, expected.encode_to_vec()).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    receiver.stop().await.expect("clean stop");

    let payloads = seen.payloads();
    assert_eq!(payloads.len(), 8);
    for (i, (path, _, expected)) in cases.iter().enumerate() {
        assert_eq!(&payloads[2 * i], expected, "JSON of case {i} ({path})");
        assert_eq!(
            &payloads[2 * i + 1],
            expected,
            "protobuf of case {i} ({path})"
        );
    }
}

#[tokio::test]
async fn json_errors_are_a_json_status_and_the_next_request_succeeds() {
    let (outputs, _) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let addr = receiver.http_addr();

    let reply = post_json(addr, "/v1/traces", r#"{"resourceSpans": [{"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let status = reply.json();
    assert_eq!(status["code"], json!(3));
    assert!(
        status["message"]
            .as_str()
            .expect("message")
            .contains("invalid JSON"),
        "{status}"
    );

    let bad_id = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "xyz"}]}]}]});
    let reply = post_json(addr, "/v1/traces", bad_id.to_string()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = reply.json()["message"]
        .as_str()
        .expect("message")
        .to_owned();
    assert!(message.contains("spanId"), "{message}");

    let reply = post_json(addr, "/v1/traces", trace_json().to_string()).await;
    assert_eq!(reply.status, StatusCode::OK);
    receiver.stop().await.expect("clean stop");
}
