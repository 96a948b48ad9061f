//! SIGTERM with requests in flight: each is either acknowledged and in the output, or answered retryable (or
//! refused at connect, which a client also retries); none is acknowledged and missing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use otlake_core::test_util::sample_traces;
use prost::Message;

use crate::support::{Daemon, OTLP_IN, TELEMETRY, http_request, read_jsonl, sdk_send_acknowledged};

#[test]
fn requests_in_flight_at_sigterm_are_acknowledged_and_present_or_answered_retryable() {
    let mut d = Daemon::start(&format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}"
    ));
    let port = d.ports.http;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..8u64)
        .map(|client| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut acked = BTreeSet::new();
                let mut unexpected = Vec::new();
                // Bounded: at most 5,000 requests per client, and the loop ends once the daemon is gone.
                for n in 0..5_000u64 {
                    let mut request = sample_traces(1, 1);
                    let id = (client << 32) | n;
                    request.resource_spans[0].scope_spans[0].spans[0].span_id =
                        id.to_be_bytes().to_vec();
                    let headers = [("Content-Type", "application/x-protobuf")];
                    match http_request(
                        "POST",
                        port,
                        "/v1/traces",
                        &headers,
                        &request.encode_to_vec(),
                    ) {
                        Ok(r) if r.status == 200 => {
                            acked.insert(format!("{id:016x}"));
                        }
                        Ok(r) if r.status == 503 && r.header("retry-after").is_some() => {}
                        Ok(r) => unexpected.push(format!("{} {}", r.status, r.text())),
                        Err(_) if stop.load(Ordering::SeqCst) => break,
                        Err(e) => unexpected.push(format!("error before SIGTERM: {e}")),
                    }
                }
                (acked, unexpected)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::SeqCst);
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());

    let mut acked = BTreeSet::new();
    for c in clients {
        let (ids, unexpected) = c.join().expect("client thread");
        assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
        acked.extend(ids);
    }
    assert!(!acked.is_empty(), "the load ran before SIGTERM");
    let landed: BTreeSet<String> = read_jsonl(&d.dir.path().join("out.jsonl"))
        .iter()
        .map(|line| {
            line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    let missing: Vec<_> = acked.difference(&landed).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged spans are missing, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

/// A Collector-style config with no `service.telemetry` section (health from the `health_check` extension).
fn config_without_telemetry() -> String {
    format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {{dir}}/out.jsonl\nextensions:\n  health_check:\n    endpoint: 127.0.0.1:{{health}}\nservice:\n  extensions: [health_check]\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n    logs: {{receivers: [otlp], exporters: [file]}}\n    metrics: {{receivers: [otlp], exporters: [file]}}\n"
    )
}

#[test]
fn without_a_telemetry_section_sigterm_exits_0_with_every_acknowledged_item() {
    // The metrics endpoint takes its default address here (127.0.0.1:8888): this config is the point.
    for run in 0..5 {
        let mut d = Daemon::start(&config_without_telemetry());
        let sent = sdk_send_acknowledged(
            "grpc",
            d.ports.grpc,
            &[
                "--tag",
                &format!("run{run}"),
                "--spans",
                "20",
                "--logs",
                "10",
            ],
        );
        assert!(
            d.terminate(),
            "run {run}: SIGTERM must exit 0:\n{}",
            d.stderr()
        );
        let text = std::fs::read_to_string(d.dir.path().join("out.jsonl")).unwrap_or_default();
        for span in sent["spans"].as_array().expect("spans") {
            let id = span["span_id"].as_str().expect("span id");
            assert!(
                text.contains(id),
                "run {run}: acknowledged span {id} is missing"
            );
        }
        for log in sent["logs"].as_array().expect("logs") {
            let body = log["body"].as_str().expect("body");
            assert!(
                text.contains(body),
                "run {run}: acknowledged log `{body}` is missing"
            );
        }
    }
}
