//! OTLP/JSON written by hand per the spec (hex ids, integer enums, int64 as strings, camelCase or snake_case)
//! lands exactly like the same data sent as protobuf.

use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use prost::Message;
use serde_json::Value;

use crate::support::{Daemon, OTLP_IN, TELEMETRY, http_request, post_protobuf, read_jsonl};

/// The spec's trace example (opentelemetry-proto examples/trace.json), in camelCase.
const TRACE_JSON: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "eee19b7ec3c1b173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [
          {"key": "my.span.attr", "value": {"stringValue": "some value"}},
          {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
          {"key": "retry_count", "value": {"intValue": 3}}
        ],
        "status": {"code": 2, "message": "boom"}
      }]
    }]
  }]
}"#;

/// `TRACE_JSON` as protobuf, written out by hand from the spec's mapping (hex ids, integer enums, 64-bit
/// integers as strings) rather than decoded by serde: the receiver's JSON path decodes with
/// opentelemetry-proto's serde support, so a reference from the same decoder would share its mistakes.
fn trace_reference() -> ExportTraceServiceRequest {
    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }
    fn attr(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }
    let text = |s: &str| any_value::Value::StringValue(s.into());
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", text("my.service"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "my.library".into(),
                    version: "1.0.0".into(),
                    attributes: vec![attr("my.scope.attribute", text("some scope attribute"))],
                    ..Default::default()
                }),
                spans: vec![Span {
                    trace_id: bytes("5b8efff798038103d269b633813fc60c"),
                    span_id: bytes("eee19b7ec3c1b174"),
                    parent_span_id: bytes("eee19b7ec3c1b173"),
                    name: "I'm a server span".into(),
                    start_time_unix_nano: 1_544_712_660_000_000_000,
                    end_time_unix_nano: 1_544_712_661_000_000_000,
                    kind: span::SpanKind::Server as i32,
                    attributes: vec![
                        attr("my.span.attr", text("some value")),
                        attr("gen_ai.usage.input_tokens", any_value::Value::IntValue(42)),
                        attr("retry_count", any_value::Value::IntValue(3)),
                    ],
                    status: Some(Status {
                        code: status::StatusCode::Error as i32,
                        message: "boom".into(),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn snake_case(json: &str) -> String {
    // Field names only: attribute keys such as "gen_ai.usage.input_tokens" are values and stay as they are.
    [
        ("resourceSpans", "resource_spans"),
        ("scopeSpans", "scope_spans"),
        ("traceId", "trace_id"),
        ("parentSpanId", "parent_span_id"),
        ("spanId", "span_id"),
        ("startTimeUnixNano", "start_time_unix_nano"),
        ("endTimeUnixNano", "end_time_unix_nano"),
        ("stringValue", "string_value"),
        ("intValue", "int_value"),
    ]
    .iter()
    .fold(json.to_owned(), |s, (camel, snake)| {
        s.replace(&format!("\"{camel}\""), &format!("\"{snake}\""))
    })
}

#[test]
fn hand_written_otlp_json_lands_like_protobuf() {
    let config = format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}"
    );
    let mut daemon = Daemon::start(&config);
    let port = daemon.ports.http;
    let json_headers = [("Content-Type", "application/json")];
    for body in [TRACE_JSON.to_owned(), snake_case(TRACE_JSON)] {
        let r = http_request("POST", port, "/v1/traces", &json_headers, body.as_bytes())
            .expect("request");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.header("content-type").is_some_and(|c| c.contains("json")),
            "{:?}",
            r.headers
        );
    }
    // The same request as protobuf, written by hand.
    let r = post_protobuf(port, "/v1/traces", &trace_reference().encode_to_vec());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(daemon.terminate());

    let lines = read_jsonl(&daemon.dir.path().join("out.jsonl"));
    assert_eq!(lines.len(), 3, "three requests, three lines");
    let span = |line: &Value| line["resourceSpans"][0]["scopeSpans"][0]["spans"][0].clone();
    assert_eq!(
        span(&lines[0]),
        span(&lines[2]),
        "JSON and protobuf land identically"
    );
    assert_eq!(
        span(&lines[1]),
        span(&lines[2]),
        "snake_case JSON lands identically"
    );
    assert_eq!(lines[0], lines[2]);
    let landed = span(&lines[0]);
    assert_eq!(landed["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(landed["kind"], 2);
    let keys: Vec<&str> = landed["attributes"]
        .as_array()
        .expect("attrs")
        .iter()
        .map(|a| a["key"].as_str().expect("key"))
        .collect();
    assert_eq!(
        keys,
        ["my.span.attr", "gen_ai.usage.input_tokens", "retry_count"]
    );
}
