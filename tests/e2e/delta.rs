//! The reason otlake exists: the real Python OTel SDK sends spans, logs and metrics through a running otlake
//! into Delta tables, and real readers (Python `deltalake`, DuckDB) find every acknowledged item there, once,
//! in the schema of docs/otel-tables.md, answering the page's queries.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Daemon, OTLP_IN, Ports, TELEMETRY, sdk_send_acknowledged, workspace};

/// OTLP → size_limit → batch → delta, like the shipped sidecar.yaml.
pub fn delta_config(extra_exporter_keys: &str) -> String {
    format!(
        "{OTLP_IN}processors:\n  size_limit:\n  batch:\n    timeout: 100ms\nexporters:\n  delta:\n    location: {{dir}}/data\n    max_latency: 500ms\n{extra_exporter_keys}service:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [size_limit, batch], exporters: [delta]}}\n    logs: {{receivers: [otlp], processors: [size_limit, batch], exporters: [delta]}}\n    metrics: {{receivers: [otlp], processors: [size_limit, batch], exporters: [delta]}}\n{TELEMETRY}"
    )
}

/// Runs exporters/delta/tests/python/check_tables.py; panics with its output when a check fails.
pub fn check_tables(location: &std::path::Path, args: &[&str]) -> String {
    let script = workspace().join("exporters/delta/tests/python/check_tables.py");
    let mut all = vec![
        script.to_str().expect("utf8").to_owned(),
        location.to_str().expect("utf8").to_owned(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = crate::support::bounded_output(
        std::process::Command::new(crate::support::python()).args(&all),
        Duration::from_secs(300),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "check_tables.py failed:\n{text}");
    text
}

/// The Delta row (v1) one data point reported by sdk_send.py must be: found by name and service, compared by
/// type and values.
fn metric_row(point: &Value) -> Value {
    let kind = point["kind"].as_str().expect("kind");
    let mut row = json!({
        "match": {"name": point["name"], "resource.attributes": {"service.name": point["service"]}},
        "metric_type": kind.to_uppercase(),
    });
    if kind == "histogram" {
        row["histogram.count"] = point["count"].clone();
        row["histogram.sum"] = point["sum"].clone();
    } else {
        row[format!("{kind}.value")] = point["value"].clone();
    }
    row
}

fn send(protocol: &str, port: u16, tag: &str) -> Value {
    sdk_send_acknowledged(
        protocol,
        port,
        &["--tag", tag, "--spans", "15", "--logs", "8"],
    )
}

#[test]
fn python_sdk_data_lands_in_delta_tables_that_deltalake_and_duckdb_read() {
    let mut d = Daemon::start(&delta_config(""));
    let grpc = send("grpc", d.ports.grpc, "grpc");
    let http = send("http", d.ports.http, "http");
    // Acknowledged means committed: read the tables while the daemon still runs.
    let sent = [&grpc, &http];
    let all = |key: &str| -> Vec<Value> {
        sent.iter()
            .flat_map(|s| s[key].as_array().expect(key).clone())
            .collect()
    };
    let expectations = json!({
        "spans": all("spans").iter()
            .map(|s| json!({"span_id": s["span_id"], "trace_id": s["trace_id"], "name": s["name"]}))
            .collect::<Vec<_>>(),
        "logs": all("logs").iter()
            .map(|l| json!({"match": {"body": l["body"]}, "severity_text": l["severity_text"]}))
            .collect::<Vec<_>>(),
        "metrics": all("metric_points").iter().map(metric_row).collect::<Vec<_>>(),
        "unique": ["spans", "logs", "metrics"],
    });
    let file = d.dir.path().join("expect.json");
    std::fs::write(&file, expectations.to_string()).expect("write");
    let location = d.dir.path().join("data");
    let report = check_tables(
        &location,
        &[
            "--expect-spans",
            "30",
            "--expect-logs",
            "16",
            "--expect-metrics",
            "6",
            "--expect-json",
            file.to_str().expect("utf8"),
        ],
    );
    assert!(
        report.contains("chat"),
        "the queries ran and saw the spans:\n{report}"
    );
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());
}

#[test]
fn the_embedded_default_writes_delta_tables_under_data() {
    // `otlake run` with no --config, in a fresh directory, ports moved by the config's own env variables.
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports::any();
    let mut command = std::process::Command::new(crate::support::OTLAKE);
    command
        .arg("run")
        .env("OTLAKE_GRPC_ENDPOINT", format!("127.0.0.1:{}", ports.grpc))
        .env("OTLAKE_HTTP_ENDPOINT", format!("127.0.0.1:{}", ports.http))
        .env(
            "OTLAKE_METRICS_ADDRESS",
            format!("127.0.0.1:{}", ports.metrics),
        )
        .env(
            "OTLAKE_HEALTH_ENDPOINT",
            format!("127.0.0.1:{}", ports.health),
        );
    let mut daemon = Daemon::from_command(command, dir, ports);
    send("http", daemon.ports.http, "default");
    check_tables(
        &daemon.dir.path().join("data"),
        &[
            "--expect-spans",
            "15",
            "--expect-logs",
            "8",
            "--expect-metrics",
            "3",
        ],
    );
    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
}

/// Three otlake processes append to the same tables at once (each with its own writer id, as replicas on one
/// host must): every acknowledged row is there, once.
#[test]
fn three_daemons_appending_to_one_table_lose_and_duplicate_nothing() {
    let shared = tempfile::tempdir().expect("tempdir");
    let location = shared.path().join("data");
    let daemons: Vec<Daemon> = (0..3)
        .map(|i| {
            Daemon::start(&format!(
                "{OTLP_IN}processors:\n  batch:\n    timeout: 50ms\nexporters:\n  delta:\n    location: {}\n    max_latency: 300ms\n    writer_id: replica-{i}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [batch], exporters: [delta]}}\n    logs: {{receivers: [otlp], processors: [batch], exporters: [delta]}}\n{TELEMETRY}",
                location.display()
            ))
        })
        .collect();
    let senders: Vec<_> = daemons
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let port = d.ports.http;
            std::thread::spawn(move || {
                let tag = format!("replica-{i}");
                (0..3)
                    .map(|_| {
                        sdk_send_acknowledged(
                            "http",
                            port,
                            &[
                                "--tag",
                                &tag,
                                "--spans",
                                "25",
                                "--logs",
                                "5",
                                "--no-metrics",
                            ],
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let sent: Vec<Value> = senders
        .into_iter()
        .flat_map(|s| s.join().expect("sender"))
        .collect();
    let expectations = json!({
        "spans": sent.iter().flat_map(|s| s["spans"].as_array().expect("spans").clone())
            .map(|s| json!({"span_id": s["span_id"], "name": s["name"]}))
            .collect::<Vec<_>>(),
        "unique": ["spans"],
    });
    let file = shared.path().join("expect.json");
    std::fs::write(&file, expectations.to_string()).expect("write");
    check_tables(
        &location,
        &[
            "--tables",
            "spans,logs",
            "--expect-spans",
            "225",
            "--expect-logs",
            "45",
            "--expect-json",
            file.to_str().expect("utf8"),
        ],
    );
    for mut d in daemons {
        assert!(d.terminate(), "clean exit:\n{}", d.stderr());
    }
}
