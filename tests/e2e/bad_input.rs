//! Bad input gets its documented status and harms nothing: after each bad request the daemon answers the next
//! good one.

use std::io::Write;
use std::time::Duration;

use otlake_core::test_util::{sample_metrics, sample_traces};
use prost::Message;

use crate::support::{
    Daemon, OTLP_IN, Response, TELEMETRY, http_request, post_protobuf, run_python,
};

fn daemon() -> Daemon {
    Daemon::start(&format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n    logs: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}"
    ))
}

fn good(port: u16) -> Vec<u8> {
    let body = sample_traces(1, 2).encode_to_vec();
    let r = post_protobuf(port, "/v1/traces", &body);
    assert_eq!(
        r.status,
        200,
        "a good request after a bad one: {}",
        r.text()
    );
    body
}

fn expect(r: Response, status: u16, mentions: &str) {
    assert_eq!(r.status, status, "body: {}", r.text());
    assert!(
        r.text().to_lowercase().contains(&mentions.to_lowercase()),
        "the answer should mention `{mentions}`: {}",
        r.text()
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("compress");
    enc.finish().expect("finish")
}

#[test]
fn http_bad_input_gets_its_status_and_the_next_request_succeeds() {
    let mut d = daemon();
    let port = d.ports.http;
    let body = good(port);
    let proto = [("Content-Type", "application/x-protobuf")];

    // Truncated protobuf.
    let r =
        http_request("POST", port, "/v1/traces", &proto, &body[..body.len() - 7]).expect("answer");
    assert_eq!(r.status, 400, "{}", r.text());
    good(port);

    // Invalid JSON.
    let r = http_request(
        "POST",
        port,
        "/v1/traces",
        &[("Content-Type", "application/json")],
        b"{\"resourceSpans\": [",
    )
    .expect("answer");
    assert_eq!(r.status, 400, "{}", r.text());
    good(port);

    // Invalid UTF-8 in a string field: the span name's bytes replaced in the encoded request.
    let mut request = sample_traces(1, 1);
    request.resource_spans[0].scope_spans[0].spans[0].name = "NAME".into();
    let mut bytes = request.encode_to_vec();
    let at = bytes
        .windows(4)
        .position(|w| w == b"NAME")
        .expect("name is in the bytes");
    bytes[at..at + 4].copy_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
    expect(
        http_request("POST", port, "/v1/traces", &proto, &bytes).expect("answer"),
        400,
        "utf",
    );
    good(port);

    // Oversize: 31 MB against the 30 MB default, refused before decoding.
    let big = vec![0u8; 31_000_000];
    let r = http_request("POST", port, "/v1/traces", &proto, &big).expect("answer");
    assert_eq!(r.status, 413, "{}", r.text());
    good(port);

    // Gzip bomb: 100 MB of zeros in a ~100 KB body, refused by the limit on the decompressed size.
    let bomb = gzip(&vec![0u8; 100_000_000]);
    assert!(bomb.len() < 1_000_000);
    let r = http_request(
        "POST",
        port,
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &bomb,
    )
    .expect("answer");
    assert_eq!(r.status, 413, "{}", r.text());
    good(port);

    // A good gzip body is accepted.
    let r = http_request(
        "POST",
        port,
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&body),
    )
    .expect("answer");
    assert_eq!(r.status, 200, "{}", r.text());

    // Wrong content type, unknown path.
    let r = http_request(
        "POST",
        port,
        "/v1/traces",
        &[("Content-Type", "text/plain")],
        &body,
    )
    .expect("answer");
    assert_eq!(r.status, 415, "{}", r.text());
    good(port);
    let r = http_request("POST", port, "/v1/nothing", &proto, &body).expect("answer");
    assert_eq!(r.status, 404, "{}", r.text());
    good(port);

    assert!(d.terminate(), "clean exit:\n{}", d.stderr());
    // Every good request landed; no bad one did.
    let lines = crate::support::read_jsonl(&d.dir.path().join("out.jsonl"));
    assert_eq!(
        lines.len(),
        9,
        "8 good protobuf requests + 1 good gzip request"
    );
}

fn grpc_call(port: u16, signal: &str, bytes: &[u8]) -> serde_json::Value {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), bytes).expect("write");
    let out = run_python(
        "grpc_raw.py",
        &[
            &format!("127.0.0.1:{port}"),
            signal,
            file.path().to_str().expect("utf8 path"),
        ],
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn grpc_bad_input_gets_its_status_and_the_next_call_succeeds() {
    let mut d = daemon();
    let port = d.ports.grpc;
    let body = sample_traces(1, 2).encode_to_vec();
    assert_eq!(grpc_call(port, "traces", &body)["code"], "OK");
    let truncated = grpc_call(port, "traces", &body[..body.len() - 7]);
    assert_eq!(truncated["code"], "INVALID_ARGUMENT", "{truncated}");
    assert_eq!(grpc_call(port, "traces", &body)["code"], "OK");
    let oversize = grpc_call(port, "traces", &vec![0u8; 31_000_000]);
    assert_eq!(oversize["code"], "RESOURCE_EXHAUSTED", "{oversize}");
    assert_eq!(grpc_call(port, "traces", &body)["code"], "OK");
    // A signal no pipeline takes is refused as unimplemented (as HTTP's 404), not swallowed; a crash or an
    // UNAVAILABLE would be something else.
    let unwired = grpc_call(port, "metrics", &sample_metrics(1).encode_to_vec());
    assert_eq!(unwired["code"], "UNIMPLEMENTED", "{unwired}");
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());
}

/// What Python's urllib heard for a POST of `bytes` zero bytes (tests/clients/urllib_post.py).
fn urllib_post(port: u16, bytes: usize, chunked: bool) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{port}/v1/traces");
    let size = bytes.to_string();
    let mut args = vec![url.as_str(), size.as_str()];
    if chunked {
        args.push("--chunked");
    }
    let out = run_python("urllib_post.py", &args, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "urllib_post.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("urllib_post.py prints JSON")
}

#[test]
fn python_urllib_hears_413_naming_the_limit_for_an_oversized_body() {
    let d = daemon();
    let port = d.ports.http;
    // A few rounds: a reset depends on how far the client got when the server closed.
    for round in 0..3 {
        for chunked in [false, true] {
            let answer = urllib_post(port, 31_000_000, chunked);
            assert_eq!(
                answer["status"], 413,
                "round {round}, chunked {chunked}: urllib must read the 413, not a reset: {answer}"
            );
            let body = answer["body"].as_str().unwrap_or_default();
            assert!(
                body.contains("max_request_bytes") && body.contains("30000000"),
                "the 413 names the limit: {body}"
            );
            good(port);
        }
    }
}
