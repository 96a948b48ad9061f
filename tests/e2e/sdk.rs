//! The real Python OpenTelemetry SDK exporters (gRPC and HTTP/protobuf) send spans, logs and metrics; every
//! acknowledged item is in the file exporter's output once: spans with their ids and attributes, log bodies,
//! metric data points with their values and attributes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{
    Daemon, OTLP_IN, TELEMETRY, landed_log_bodies, landed_metric_points, read_jsonl,
    sdk_send_acknowledged, sent_log_bodies, sent_metric_points,
};

fn file_config() -> String {
    format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n    logs: {{receivers: [otlp], exporters: [file]}}\n    metrics: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}"
    )
}

fn attribute_text(v: &Value) -> String {
    let v = &v["value"];
    for key in ["stringValue", "boolValue", "doubleValue"] {
        if let Some(x) = v.get(key) {
            return x.to_string().trim_matches('"').to_owned();
        }
    }
    v.get("intValue")
        .map(|x| x.to_string().trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// A span as it landed: name, attributes as text, and how many times it landed.
type Landed = (String, BTreeMap<String, String>, usize);

/// (trace id, span id) → how each span in the output landed.
fn spans_in(lines: &[Value]) -> BTreeMap<(String, String), Landed> {
    let mut spans = BTreeMap::new();
    for line in lines {
        for rs in line["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    let attrs = s["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|kv| {
                            (
                                kv["key"].as_str().unwrap_or_default().to_owned(),
                                attribute_text(kv),
                            )
                        })
                        .collect();
                    let key = (
                        s["traceId"].as_str().unwrap_or_default().to_owned(),
                        s["spanId"].as_str().unwrap_or_default().to_owned(),
                    );
                    let entry = spans.entry(key).or_insert((
                        s["name"].as_str().unwrap_or_default().to_owned(),
                        attrs,
                        0,
                    ));
                    entry.2 += 1;
                }
            }
        }
    }
    spans
}

fn send(protocol: &str, port: u16, tag: &str) -> Value {
    sdk_send_acknowledged(
        protocol,
        port,
        &["--tag", tag, "--spans", "12", "--logs", "9"],
    )
}

#[test]
fn python_sdk_over_grpc_and_http_lands_every_item_with_ids_and_attributes() {
    let mut daemon = Daemon::start(&file_config());
    let grpc = send("grpc", daemon.ports.grpc, "grpc");
    let http = send("http", daemon.ports.http, "http");
    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());

    let lines = read_jsonl(&daemon.dir.path().join("out.jsonl"));
    let landed = spans_in(&lines);
    for sent in [&grpc, &http] {
        for (signal, result) in sent["results"].as_object().expect("results") {
            assert_eq!(result, "SUCCESS", "{signal} export was not acknowledged");
        }
        for span in sent["spans"].as_array().expect("spans") {
            let key = (
                span["trace_id"].as_str().expect("id").to_owned(),
                span["span_id"].as_str().expect("id").to_owned(),
            );
            let (name, attrs, copies) = landed
                .get(&key)
                .unwrap_or_else(|| panic!("span {key:?} missing"));
            assert_eq!(*copies, 1, "span {key:?} landed {copies} times");
            assert_eq!(name, span["name"].as_str().expect("name"));
            for (k, v) in span["attributes"].as_object().expect("attributes") {
                let expected = v.to_string().trim_matches('"').to_owned();
                assert_eq!(
                    attrs.get(k),
                    Some(&expected),
                    "attribute {k} of span {key:?}"
                );
            }
        }
    }
    assert_eq!(landed.len(), 24, "exactly the 2 x 12 spans sent");
    // Logs and metrics by content: every body and every data point (name, kind, value, attributes) sent is
    // there exactly once, and nothing else is.
    assert_eq!(landed_log_bodies(&lines), sent_log_bodies(&[&grpc, &http]));
    let points = sent_metric_points(&[&grpc, &http]);
    assert_eq!(points.len(), 6, "3 points per send: {points:?}");
    assert_eq!(landed_metric_points(&lines), points);
}
