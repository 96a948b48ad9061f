//! The daemon's own telemetry as an operator sees it: Prometheus counters per receiver/exporter and signal, a
//! health endpoint, and a clear failure when a component cannot start.

use std::process::Command;
use std::time::Duration;

use otlake_core::test_util::{sample_logs, sample_metrics, sample_traces};
use prost::Message;

use crate::support::{
    Daemon, OTLAKE, OTLP_IN, Ports, TELEMETRY, bounded_output, http_request, post_protobuf,
};

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
    // No metrics pipeline: the 6 data points are refused, and counted as such.
    let unrouted = post_protobuf(
        d.ports.http,
        "/v1/metrics",
        &sample_metrics(2).encode_to_vec(),
    );
    assert_eq!(unrouted.status, 404, "{}", unrouted.text());

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
    // Every request was answered after its data was written: nothing waits in any queue.
    let depths: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("otlake_queue_depth_batches"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(
        !depths.is_empty() && depths.iter().all(|d| *d == 0.0),
        "{text}"
    );
    let refused = |signal: &str, reason: &str| {
        metric(
            &text,
            "otlake_receiver_refused_items_total",
            &[
                "receiver=\"otlp\"",
                &format!("signal=\"{signal}\""),
                &format!("reason=\"{reason}\""),
            ],
        )
    };
    assert_eq!(refused("metrics", "no_pipeline"), Some(6.0), "{text}");
    // A body that does not decode has no item count: it is answered 400 and logged, not counted.
    assert_eq!(refused("traces", "rejected"), Some(0.0), "{text}");
    assert!(d.terminate());
}

#[test]
fn a_component_that_cannot_start_stops_the_daemon_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("write");
    let config = Ports::any().fill(&format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}",
        blocker.display()
    ));
    let path = dir.path().join("otlake.yaml");
    std::fs::write(&path, config).expect("write config");
    let out = bounded_output(
        Command::new(OTLAKE).args(["run", "--config"]).arg(&path),
        Duration::from_secs(60),
    );
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
    let mut ports = Ports::any();
    ports.http = port;
    let config = ports.fill(&format!(
        "{OTLP_IN}exporters:\n  debug:\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [debug]}}\n{TELEMETRY}"
    ));
    let path = dir.path().join("otlake.yaml");
    std::fs::write(&path, config).expect("write config");
    let out = bounded_output(
        Command::new(OTLAKE).args(["run", "--config"]).arg(&path),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")),
        "names the address: {stderr}"
    );
}

/// The readiness probe's contract: 200 once ready, 503 from the moment shutdown begins while the daemon still
/// drains (here: an export to a destination that accepts the connection and never answers, held until
/// `shutdown_grace`).
#[test]
fn health_answers_503_while_the_daemon_shuts_down() {
    // The kernel queues connections to a listener nobody accepts from: the exporter's request hangs.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let mut d = Daemon::start(&format!(
        "{OTLP_IN}exporters:\n  otlphttp:\n    endpoint: http://127.0.0.1:{silent_port}\n    timeout: 60s\n\
         service:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [otlphttp]}}\n{TELEMETRY}    shutdown_grace: 4s\n"
    ));
    let health = || {
        http_request("GET", d.ports.health, "/", &[], b"")
            .map(|r| r.status)
            .ok()
    };
    assert_eq!(health(), Some(200));
    let http = d.ports.http;
    let in_flight = std::thread::spawn(move || {
        post_protobuf(http, "/v1/traces", &sample_traces(1, 2).encode_to_vec()).status
    });
    // Until shutdown the request waits on the silent destination (the ready daemon keeps answering 200).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(health(), Some(200));
    let pid = d.pid().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = None;
    while std::time::Instant::now() < deadline {
        seen = health();
        if seen != Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        seen,
        Some(503),
        "health during shutdown (None: not answering):\n{}",
        d.stderr()
    );
    // The held request is answered retryable at the grace deadline, never 200.
    let status = in_flight.join().expect("client thread");
    assert_eq!(status, 503, "{}", d.stderr());
    drop(silent);
    // Shutdown is already under way: this only waits (bounded) for the exit.
    d.terminate();
}
