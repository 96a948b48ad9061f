//! OTLP/JSON written by hand per the spec (hex ids, integer enums, int64 as strings, camelCase or snake_case)
//! lands exactly like the same data sent as protobuf.

use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
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
    // The same request as protobuf, built from the JSON by the reference decoder.
    let reference: ExportTraceServiceRequest = serde_json::from_str(
        TRACE_JSON
            .replace("\"intValue\": 3", "\"intValue\": \"3\"")
            .as_str(),
    )
    .expect("spec JSON parses");
    let r = post_protobuf(port, "/v1/traces", &reference.encode_to_vec());
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
