//! The daemon's own telemetry as an operator sees it: Prometheus counters per receiver/exporter and signal, a
//! health endpoint, and a clear failure when a component cannot start.

use std::process::Command;

use otlake_core::test_util::{sample_logs, sample_traces};
use prost::Message;

use crate::support::{Daemon, OTLAKE, OTLP_IN, Ports, TELEMETRY, http_request, post_protobuf};

fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_count_items_per_receiver_and_exporter_and_health_answers() {
    let mut d = Daemon::start(&format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n    logs: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}"
    ));
    for _ in 0..3 {
        assert_eq!(
            post_protobuf(
                d.ports.http,
                "/v1/traces",
                &sample_traces(2, 5).encode_to_vec()
            )
            .status,
            200
        );
    }
    assert_eq!(
        post_protobuf(d.ports.http, "/v1/logs", &sample_logs(1, 4).encode_to_vec()).status,
        200
    );
    let bad = http_request(
        "POST",
        d.ports.http,
        "/v1/traces",
        &[("Content-Type", "application/x-protobuf")],
        b"\xff\xff",
    )
    .expect("answer");
    assert_eq!(bad.status, 400);

    let health = http_request("GET", d.ports.health, "/", &[], b"").expect("health answers");
    assert_eq!(health.status, 200, "{}", health.text());
    let text = http_request("GET", d.ports.metrics, "/metrics", &[], b"")
        .expect("metrics answer")
        .text();
    let accepted = |signal: &str| {
        metric(
            &text,
            "otlake_receiver_accepted_items_total",
            &["receiver=\"otlp\"", &format!("signal=\"{signal}\"")],
        )
    };
    assert_eq!(accepted("traces"), Some(30.0), "{text}");
    assert_eq!(accepted("logs"), Some(4.0), "{text}");
    let sent = metric(
        &text,
        "otlake_exporter_sent_items_total",
        &["exporter=\"file\"", "signal=\"traces\""],
    );
    assert_eq!(sent, Some(30.0), "{text}");
    assert!(text.contains("otlake_queue_depth_batches"), "{text}");
    assert!(
        text.contains("otlake_receiver_refused_items_total"),
        "the malformed request is counted: {text}"
    );
    assert!(d.terminate());
}

#[test]
fn a_component_that_cannot_start_stops_the_daemon_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("write");
    let config = Ports::free().fill(&format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}",
        blocker.display()
    ));
    let path = dir.path().join("otlake.yaml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(OTLAKE)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "must exit non-zero");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exporter/file failed to start"), "{stderr}");
    assert!(stderr.contains("not-a-dir"), "names the path: {stderr}");
}

#[test]
fn a_port_in_use_stops_the_daemon_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ports = Ports::free();
    ports.http = port;
    let config = ports.fill(&format!(
        "{OTLP_IN}exporters:\n  debug:\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [debug]}}\n{TELEMETRY}"
    ));
    let path = dir.path().join("otlake.yaml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(OTLAKE)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")),
        "names the address: {stderr}"
    );
}
