//! The managed tables' size limits through the real SDK: an 11 MB span attribute is refused alone (its
//! neighbours land, the client hears `partial_success`), a 2 MB log line is truncated and marked, a 31 MB
//! request is refused whole with 413.

use otlake_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::test_util::sample_traces;
use prost::Message;
use serde_json::Value;

use crate::delta::delta_config;
use crate::support::{Daemon, post_protobuf, query, sdk_send};

#[test]
fn record_and_log_line_limits_keep_the_neighbours_and_tell_the_client() {
    let mut d = Daemon::start(&delta_config(""));
    let grpc = format!("127.0.0.1:{}", d.ports.grpc);
    let http = format!("127.0.0.1:{}", d.ports.http);

    // One span of 10 with an 11 MB attribute, over gRPC: the request succeeds, the big span alone is refused.
    let spans = sdk_send(&[
        "--protocol",
        "grpc",
        "--endpoint",
        &grpc,
        "--tag",
        "big",
        "--spans",
        "10",
        "--span-attr-bytes",
        "11000000",
        "--only",
        "traces",
    ]);
    assert_eq!(spans["results"]["traces"], "SUCCESS");
    // A 2 MB log line among 5, over HTTP: truncated to the 1 MB line limit and marked with its size.
    let logs = sdk_send(&[
        "--protocol",
        "http",
        "--endpoint",
        &http,
        "--tag",
        "line",
        "--logs",
        "5",
        "--log-body-bytes",
        "2000000",
        "--only",
        "logs",
    ]);
    assert_eq!(logs["results"]["logs"], "SUCCESS");
    // 31 MB in one request (4 spans of ~8 MB): refused whole.
    let huge = sdk_send(&[
        "--protocol",
        "http",
        "--endpoint",
        &http,
        "--tag",
        "huge",
        "--spans",
        "5",
        "--span-attr-bytes",
        "8000000",
        "--big-spans",
        "4",
        "--only",
        "traces",
    ]);
    assert_eq!(
        huge["results"]["traces"], "FAILURE",
        "a 31 MB request must be refused"
    );

    // The client-visible partial success, on the wire.
    let mut request = sample_traces(1, 3);
    request.resource_spans[0].scope_spans[0].spans[1]
        .attributes
        .push(KeyValue {
            key: "e2e.big".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("z".repeat(11_000_000))),
            }),
            ..Default::default()
        });
    let r = post_protobuf(d.ports.http, "/v1/traces", &request.encode_to_vec());
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = ExportTraceServiceResponse::decode(r.body.as_slice()).expect("an OTLP response");
    let partial = answer.partial_success.expect("partial_success is set");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("10000000"),
        "names the limit: {}",
        partial.error_message
    );

    let data = d.dir.path().join("data");
    let by_tag = query(
        &data,
        "SELECT attributes['e2e.tag'] AS tag, count(*) AS n, count(attributes['e2e.big']) AS big FROM otel_spans GROUP BY 1 ORDER BY 1",
    );
    let sent_small = spans["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .filter(|s| s["big"] == false)
        .count();
    assert_eq!(sent_small, 9);
    // 10 spans: an untagged root and 9 tagged chat spans, one of them big: 8 tagged spans land.
    let chat = by_tag.iter().find(|r| r["tag"] == "big").expect("tag big");
    assert_eq!(chat["n"], 8, "{by_tag:?}");
    assert_eq!(chat["big"], 0, "{by_tag:?}");
    assert!(
        by_tag.iter().all(|r| r["tag"] != "huge"),
        "nothing of the refused request landed: {by_tag:?}"
    );
    let ids: Vec<Value> = query(&data, "SELECT span_id FROM otel_spans")
        .into_iter()
        .map(|r| r["span_id"].clone())
        .collect();
    for s in spans["spans"].as_array().expect("spans") {
        assert_eq!(
            ids.contains(&s["span_id"]),
            s["big"] == false,
            "span {} (big: {})",
            s["span_id"],
            s["big"]
        );
    }

    let lines = query(
        &data,
        "SELECT strlen(body) AS len, attributes['otlake.truncated'] AS marked FROM otel_logs WHERE attributes['e2e.tag'] = 'line' ORDER BY len DESC",
    );
    assert_eq!(lines.len(), 5, "every log landed: {lines:?}");
    let longest = octets(&lines[0]["len"]);
    assert!(
        longest <= 1_000_000 && longest > 900_000,
        "truncated to the line limit: {longest}"
    );
    // The mark holds the original size of the record (its 2 MB body and the rest).
    let original = lines[0]["marked"]
        .as_str()
        .and_then(|m| m.parse::<u64>().ok());
    assert!(
        original.is_some_and(|n| (2_000_000..2_010_000).contains(&n)),
        "{:?}",
        lines[0]
    );
    assert!(
        lines[1..].iter().all(|l| l["marked"].is_null()),
        "neighbours untouched: {lines:?}"
    );
    assert!(d.terminate());
}

fn octets(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .expect("a length")
}

/// `n` spans of which the first `big` carry a 5 kB attribute (over a 2 kB `max_record_bytes`).
fn spans_with_big(n: usize, big: usize) -> Vec<u8> {
    let mut request = sample_traces(1, n);
    for span in request.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .take(big)
    {
        span.attributes.push(KeyValue {
            key: "e2e.big".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("z".repeat(5_000))),
            }),
            ..Default::default()
        });
    }
    request.encode_to_vec()
}

#[test]
fn two_clients_in_one_batch_through_two_pipelines_each_hear_their_own_rejected_count_once() {
    // Two pipelines that both refuse the big spans, then batch the two clients' requests together.
    let d = crate::support::Daemon::start(&format!(
        "{}processors:\n  size_limit:\n    max_record_bytes: 2kB\n    max_log_line_bytes: 1kB\n  batch:\n    timeout: 1s\nexporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces/a: {{receivers: [otlp], processors: [size_limit, batch], exporters: [file]}}\n    traces/b: {{receivers: [otlp], processors: [size_limit, batch], exporters: [file]}}\n{}",
        crate::support::OTLP_IN,
        crate::support::TELEMETRY
    ));
    let port = d.ports.http;
    let clients: Vec<_> = [(4, 1), (5, 2)]
        .into_iter()
        .map(|(n, big)| {
            std::thread::spawn(move || {
                let r = post_protobuf(port, "/v1/traces", &spans_with_big(n, big));
                assert_eq!(r.status, 200, "{}", r.text());
                let answer =
                    ExportTraceServiceResponse::decode(r.body.as_slice()).expect("a response");
                (big, answer.partial_success.map(|p| p.rejected_spans))
            })
        })
        .collect();
    for client in clients {
        let (big, rejected) = client.join().expect("client");
        assert_eq!(
            rejected,
            Some(big as i64),
            "a client that sent {big} oversized spans hears {big} rejected, once"
        );
    }
}
