//! `otlake loadgen` against a real daemon (batch → file exporter): a bounded run is fully acknowledged, and
//! every id in its ack log is in the exporter's output; against a closed port it gives up after its retries
//! and says so.

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Daemon, OTLAKE, OTLP_IN, TELEMETRY, free_port, read_jsonl};

const FILE_PIPELINES: &str = "processors:\n  batch:\n    timeout: 100ms\n    send_batch_size: 500\nexporters:\n  file:\n    path: {dir}/out.jsonl\nservice:\n  pipelines:\n    traces: {receivers: [otlp], processors: [batch], exporters: [file]}\n    logs: {receivers: [otlp], processors: [batch], exporters: [file]}\n";

/// Runs `otlake loadgen ARGS --json`, bounded to 60 s.
fn loadgen(args: &[&str]) -> (Output, serde_json::Value) {
    let mut child = Command::new(OTLAKE)
        .arg("loadgen")
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadgen starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("otlake loadgen did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report is JSON ({e}):\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

/// Span ids and log `log.record.uid`s in the file exporter's output.
pub fn landed_ids(d: &Daemon) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let empty = Vec::new();
    let arr = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_else(|| empty.clone());
    for line in read_jsonl(&d.dir.path().join("out.jsonl")) {
        for rs in arr(&line["resourceSpans"]) {
            for ss in arr(&rs["scopeSpans"]) {
                for span in arr(&ss["spans"]) {
                    ids.insert(span["spanId"].as_str().expect("spanId").to_owned());
                }
            }
        }
        for rl in arr(&line["resourceLogs"]) {
            for sl in arr(&rl["scopeLogs"]) {
                for record in arr(&sl["logRecords"]) {
                    for kv in arr(&record["attributes"]) {
                        if kv["key"] == "log.record.uid" {
                            let uid = kv["value"]["stringValue"].as_str().expect("uid");
                            ids.insert(uid.to_owned());
                        }
                    }
                }
            }
        }
    }
    ids
}

fn ack_log(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("ack log")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn assert_every_acked_id_landed(d: &Daemon, acked: &[String]) {
    let landed = landed_ids(d);
    let missing: Vec<&String> = acked.iter().filter(|id| !landed.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged ids are not in the output, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
}

#[test]
fn a_bounded_http_run_of_spans_and_logs_is_acknowledged_and_every_logged_id_landed() {
    let mut d = Daemon::start(&format!("{OTLP_IN}{FILE_PIPELINES}{TELEMETRY}"));
    let acks = d.dir.path().join("acks.txt");
    let endpoint = format!("127.0.0.1:{}", d.ports.http);
    let (out, report) = loadgen(&[
        "--endpoint",
        &endpoint,
        "--signal",
        "traces,logs",
        "--count",
        "2050",
        "--batch",
        "100",
        "--concurrency",
        "4",
        "--ack-log",
        acks.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "exit {:?}: {report}", out.status);
    assert_eq!(report["items"], 2050, "the count is exact: {report}");
    assert_eq!(report["acked_items"], 2050, "{report}");
    assert_eq!(report["refused_items"], 0);
    assert_eq!(report["failed_items"], 0);
    assert!(report["latency"]["p50_ms"].as_f64().expect("p50") > 0.0);

    let acked = ack_log(&acks);
    assert_eq!(
        acked.len(),
        2050,
        "one line per acknowledged span or log record"
    );
    assert_eq!(
        acked.iter().collect::<BTreeSet<_>>().len(),
        2050,
        "ids are unique"
    );
    assert!(
        acked
            .iter()
            .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    );
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());
    assert_every_acked_id_landed(&d, &acked);
}

#[test]
fn a_bounded_grpc_run_is_acknowledged_and_every_logged_span_landed() {
    let mut d = Daemon::start(&format!("{OTLP_IN}{FILE_PIPELINES}{TELEMETRY}"));
    let acks = d.dir.path().join("acks.txt");
    let endpoint = format!("http://127.0.0.1:{}", d.ports.grpc);
    let (out, report) = loadgen(&[
        "--protocol",
        "grpc",
        "--endpoint",
        &endpoint,
        "--count",
        "1000",
        "--batch",
        "50",
        "--concurrency",
        "8",
        "--compression",
        "gzip",
        "--rate",
        "20000",
        "--ack-log",
        acks.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "exit {:?}: {report}", out.status);
    assert_eq!(report["acked_items"], 1000, "{report}");
    let acked = ack_log(&acks);
    assert_eq!(acked.len(), 1000);
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());
    assert_every_acked_id_landed(&d, &acked);
}

#[test]
fn a_closed_port_is_retried_then_reported_as_failed_with_an_empty_ack_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acks = dir.path().join("acks.txt");
    let endpoint = format!("127.0.0.1:{}", free_port());
    let (out, report) = loadgen(&[
        "--endpoint",
        &endpoint,
        "--count",
        "200",
        "--concurrency",
        "1",
        "--retries",
        "1",
        "--ack-log",
        acks.to_str().expect("path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "not everything acknowledged: {report}"
    );
    assert_eq!(report["acked_items"], 0);
    assert_eq!(report["failed_requests"], 2, "{report}");
    assert_eq!(report["retries"], 2, "one retry per request: {report}");
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("onnect"),
        "the connection error is named: {errors}"
    );
    assert!(ack_log(&acks).is_empty());
}
