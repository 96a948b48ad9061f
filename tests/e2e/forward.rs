//! The single-destination exporters end to end: an otlake sidecar forwards to an otlake gateway over gRPC and over
//! HTTP; a downstream that is down for 20 s loses nothing acknowledged; a real peer collector (rotel) sits in
//! between; a real MLflow tracking server receives our traces.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use otlake_core::test_util::sample_traces;
use prost::Message;
use serde_json::Value;

use crate::support::{
    Daemon, OTLP_IN, Ports, TELEMETRY, http_request, landed_log_bodies, landed_metric_points,
    read_jsonl, run_python, sdk_send, sdk_send_acknowledged, sent_log_bodies, sent_metric_points,
};

/// A gateway: OTLP in, every signal to a file.
pub fn gateway() -> Daemon {
    Daemon::start(&gateway_template())
}

/// A sidecar: OTLP in → batch → the exporter `{kind}/out` configured by `body` (indented YAML keys).
fn sidecar(kind: &str, body: &str) -> Daemon {
    Daemon::start(&format!(
        "{OTLP_IN}processors:\n  batch:\n    timeout: 100ms\nexporters:\n  {kind}/out:\n{body}service:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [batch], exporters: [{kind}/out]}}\n    logs: {{receivers: [otlp], processors: [batch], exporters: [{kind}/out]}}\n    metrics: {{receivers: [otlp], processors: [batch], exporters: [{kind}/out]}}\n{TELEMETRY}"
    ))
}

fn span_ids(lines: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for line in lines {
        for rs in line["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    ids.push(s["spanId"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    ids
}

fn sdk_to(port: u16, protocol: &str, tag: &str) -> Value {
    sdk_send_acknowledged(
        protocol,
        port,
        &["--tag", tag, "--spans", "20", "--logs", "6"],
    )
}

fn assert_forwarded(sent: &Value, gateway: &mut Daemon) {
    assert!(
        gateway.terminate(),
        "gateway exits cleanly:\n{}",
        gateway.stderr()
    );
    let lines = read_jsonl(&gateway.dir.path().join("out.jsonl"));
    let landed = span_ids(&lines);
    let unique: BTreeSet<&String> = landed.iter().collect();
    assert_eq!(unique.len(), landed.len(), "no span forwarded twice");
    for s in sent["spans"].as_array().expect("spans") {
        let id = s["span_id"].as_str().expect("id");
        assert!(
            landed.iter().any(|l| l == id),
            "acknowledged span {id} is not at the gateway"
        );
    }
    // Logs and metrics by content, once each: bodies, and data points with their values and attributes.
    assert_eq!(landed_log_bodies(&lines), sent_log_bodies(&[sent]));
    let points = sent_metric_points(&[sent]);
    assert!(!points.is_empty(), "metrics were sent");
    assert_eq!(landed_metric_points(&lines), points);
}

#[test]
fn sidecar_to_gateway_over_grpc_loses_nothing_acknowledged() {
    let mut gw = gateway();
    let mut sc = sidecar(
        "otlp",
        &format!(
            "    endpoint: 127.0.0.1:{}\n    tls:\n      insecure: true\n",
            gw.ports.grpc
        ),
    );
    let sent = sdk_to(sc.ports.grpc, "grpc", "via-grpc");
    assert!(sc.terminate());
    assert_forwarded(&sent, &mut gw);
}

#[test]
fn sidecar_to_gateway_over_http_loses_nothing_acknowledged() {
    let mut gw = gateway();
    let mut sc = sidecar(
        "otlphttp",
        &format!(
            "    endpoint: http://127.0.0.1:{}\n    compression: zstd\n",
            gw.ports.http
        ),
    );
    let sent = sdk_to(sc.ports.http, "http", "via-http");
    assert!(sc.terminate());
    assert_forwarded(&sent, &mut gw);
}

#[test]
fn a_downstream_down_for_20_seconds_loses_nothing_acknowledged() {
    // The gateway's ports are chosen now; nothing listens on them for 20 s.
    let gw_ports = Ports::free();
    let mut sc = sidecar(
        "otlphttp",
        &format!(
            "    endpoint: http://127.0.0.1:{}\n    retry_on_failure:\n      initial_interval: 500ms\n      max_interval: 2s\n      max_elapsed_time: 120s\n",
            gw_ports.http
        ),
    );
    let port = sc.ports.http;
    let (done, answers) = mpsc::channel();
    let mut sent = BTreeSet::new();
    for n in 0..5u64 {
        let mut request = sample_traces(1, 4);
        for (i, span) in request.resource_spans[0].scope_spans[0]
            .spans
            .iter_mut()
            .enumerate()
        {
            span.span_id = (n * 100 + i as u64 + 1).to_be_bytes().to_vec();
            sent.insert(format!("{:016x}", n * 100 + i as u64 + 1));
        }
        let done = done.clone();
        std::thread::spawn(move || {
            let r = http_request(
                "POST",
                port,
                "/v1/traces",
                &[("Content-Type", "application/x-protobuf")],
                &request.encode_to_vec(),
            );
            let _ = done.send(r.map(|r| r.status).unwrap_or(0));
        });
    }
    drop(done);
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        answers.try_recv().is_err(),
        "nothing may be acknowledged while the downstream is down"
    );
    let started = Instant::now();
    let mut gw = Daemon::start_in(
        &gateway_template(),
        tempfile::tempdir().expect("tempdir"),
        gw_ports,
    );
    let statuses: Vec<u16> = answers.iter().collect();
    assert_eq!(
        statuses,
        vec![200; 5],
        "every request is answered once the downstream is back"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(sc.terminate());
    assert!(gw.terminate());
    let landed: BTreeSet<String> = span_ids(&read_jsonl(&gw.dir.path().join("out.jsonl")))
        .into_iter()
        .collect();
    assert_eq!(landed, sent, "every acknowledged span reached the gateway");
}

fn gateway_template() -> String {
    format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n    logs: {{receivers: [otlp], exporters: [file]}}\n    metrics: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}"
    )
}

/// rotel, a real peer collector from PyPI, between an otlake sidecar and an otlake gateway:
/// otlake → (OTLP/gRPC) → rotel → (OTLP/HTTP) → otlake.
#[test]
fn a_real_peer_collector_receives_from_otlake_and_forwards_to_it() {
    let rotel = rotel_binary();
    let mut gw = gateway();
    let rotel_grpc = crate::support::free_port();
    let rotel_http = crate::support::free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut peer = std::process::Command::new(&rotel)
        .args([
            "start",
            "--otlp-grpc-endpoint",
            &format!("127.0.0.1:{rotel_grpc}"),
        ])
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{rotel_http}")])
        .args(["--exporter", "otlp", "--otlp-exporter-protocol", "http"])
        .args([
            "--otlp-exporter-endpoint",
            &format!("http://127.0.0.1:{}", gw.ports.http),
        ])
        .args(["--log-file"])
        .arg(dir.path().join("rotel.log"))
        .args(["--pid-file"])
        .arg(dir.path().join("rotel.pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rotel starts");
    wait_port(rotel_grpc);
    let mut sc = sidecar(
        "otlp",
        &format!("    endpoint: 127.0.0.1:{rotel_grpc}\n    tls:\n      insecure: true\n"),
    );
    let sent = sdk_send(&[
        "--protocol",
        "grpc",
        "--endpoint",
        &format!("127.0.0.1:{}", sc.ports.grpc),
        "--tag",
        "peer",
        "--spans",
        "20",
        "--only",
        "traces",
    ]);
    assert_eq!(sent["results"]["traces"], "SUCCESS");
    assert!(sc.terminate());
    // rotel acknowledges on receipt and batches for up to 200 ms: wait (bounded) until the gateway has them all.
    let want: BTreeSet<String> = sent["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| s["span_id"].as_str().expect("id").to_owned())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut landed = BTreeSet::new();
    while Instant::now() < deadline {
        landed = span_ids(&read_jsonl(&gw.dir.path().join("out.jsonl")))
            .into_iter()
            .collect();
        if want.is_subset(&landed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = peer.kill();
    let _ = peer.wait();
    assert!(
        want.is_subset(&landed),
        "{} of {} spans reached the gateway through rotel",
        want.intersection(&landed).count(),
        want.len()
    );
    assert!(gw.terminate());
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rotel binary shipped in its PyPI wheel, installed into ./.venv by scripts/setup-venv.sh.
fn rotel_binary() -> std::path::PathBuf {
    let venv = crate::support::python()
        .parent()
        .and_then(|b| b.parent())
        .expect("venv")
        .to_path_buf();
    let lib = venv.join("lib");
    let found = std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/rotel/rotel-agent"))
        .find(|p| p.exists());
    let path = found.unwrap_or_else(|| {
        panic!(
            "rotel is not installed under {}: run scripts/setup-venv.sh",
            lib.display()
        )
    });
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    path
}

/// A real MLflow tracking server (sqlite store, 127.0.0.1) as the destination of `otlphttp`, the way MLflow
/// documents OTLP ingestion: `POST /v1/traces` with header `x-mlflow-experiment-id`.
#[test]
fn spans_sent_through_otlake_appear_in_an_mlflow_experiment() {
    let venv_bin = crate::support::python()
        .parent()
        .expect("bin")
        .to_path_buf();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::support::free_port();
    let uri = format!("http://127.0.0.1:{port}");
    let server = std::process::Command::new(venv_bin.join("mlflow"))
        .args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}/mlflow.db", dir.path().display()))
        .arg("--default-artifact-root")
        .arg(dir.path().join("artifacts"))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("mlflow.log")).expect("log"))
        .spawn()
        .expect("mlflow server starts");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = KillOnDrop(server);
    // MLflow's server imports a lot before it listens: allow it two minutes on a busy 2-core machine.
    let deadline = Instant::now() + Duration::from_secs(120);
    while http_request("GET", port, "/health", &[], b"")
        .map(|r| r.status)
        .ok()
        != Some(200)
    {
        assert!(
            Instant::now() < deadline,
            "mlflow server did not start:\n{}",
            std::fs::read_to_string(dir.path().join("mlflow.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mlflow = |args: &[&str]| {
        let mut all = vec![uri.as_str()];
        all.extend_from_slice(args);
        let out = run_python("mlflow_check.py", &all, Duration::from_secs(120));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let experiment = mlflow(&["create-experiment", "otlake-e2e"]);

    // MLflow takes traces only: a traces pipeline, with the per-signal endpoint.
    let mut sc = Daemon::start(&format!(
        "{OTLP_IN}processors:\n  batch:\n    timeout: 100ms\nexporters:\n  otlphttp/mlflow:\n    traces_endpoint: {uri}/v1/traces\n    headers:\n      x-mlflow-experiment-id: \"{experiment}\"\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [batch], exporters: [otlphttp/mlflow]}}\n{TELEMETRY}"
    ));
    let sent = sdk_send(&[
        "--protocol",
        "http",
        "--endpoint",
        &format!("127.0.0.1:{}", sc.ports.http),
        "--tag",
        "mlflow",
        "--spans",
        "6",
        "--only",
        "traces",
    ]);
    assert_eq!(sent["results"]["traces"], "SUCCESS");
    assert!(sc.terminate());

    let found: Value = serde_json::from_str(&mlflow(&["traces", &experiment])).expect("JSON");
    let trace_id = sent["spans"][0]["trace_id"].as_str().expect("id");
    assert_eq!(found["traces"], 1, "one trace: {found}");
    assert_eq!(found["trace_ids"][0], format!("tr-{trace_id}"), "{found}");
    let mut names: Vec<String> = sent["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    let landed: Vec<String> = found["span_names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("name").to_owned())
        .collect();
    assert_eq!(landed, names, "every span of the trace is in MLflow");
}
