//! Nothing lost, nothing duplicated, with a write-ahead log in front of the exporter (`sending_queue: {storage:
//! wal}`): a load generator sends spans and logs at a steady rate over raw OTLP/HTTP and records which requests
//! were acknowledged, while otlake (or its downstream) is killed with SIGKILL mid-stream and restarted. At the end
//! every acknowledged span and log record is at the destination: exactly once in Delta (the replay commits with
//! the log sequence as `txn` version), at least once at an OTLP downstream. Items that landed without an
//! acknowledgement (the process died between the log write and the answer) are counted, never as lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{AnyValue, InstrumentationScope, any_value};
use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlake_core::test_util::kv;
use prost::Message;
use serde_json::Value;

use crate::support::query;
use crate::support::{Daemon, OTLP_IN, Ports, TELEMETRY, http_request, read_jsonl};

/// Items per request of each signal.
const PER_REQUEST: u64 = 10;
/// Pause between two rounds (one traces and one logs request): about 400 items/s of each signal.
const ROUND_PAUSE: Duration = Duration::from_millis(25);

/// What the load generator saw: ids of acknowledged items, and how many requests failed.
#[derive(Default, Debug)]
pub struct Acked {
    pub spans: BTreeSet<String>,
    pub logs: BTreeSet<String>,
    pub failed_requests: usize,
    pub sent_requests: usize,
}

/// Threads sending spans and logs with unique ids (span id / the log's span id, as lowercase hex) until
/// stopped. A request counts as acknowledged only on HTTP 200.
pub struct Load {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Acked>,
}

pub fn id_hex(n: u64) -> String {
    format!("{n:016x}")
}

pub fn traces(first: u64) -> ExportTraceServiceRequest {
    let spans = (first..first + PER_REQUEST)
        .map(|n| Span {
            trace_id: [n.to_be_bytes(), n.to_be_bytes()].concat(),
            span_id: n.to_be_bytes().to_vec(),
            name: "crash-test".into(),
            start_time_unix_nano: 1_760_000_000_000_000_000 + n,
            end_time_unix_nano: 1_760_000_000_000_001_000 + n,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "crash-test")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "crash".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn logs(first: u64) -> ExportLogsServiceRequest {
    let log_records = (first..first + PER_REQUEST)
        .map(|n| LogRecord {
            time_unix_nano: 1_760_000_000_000_000_000 + n,
            severity_number: 9,
            span_id: n.to_be_bytes().to_vec(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("crash log {n}"))),
            }),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "crash-test")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// POSTs a protobuf body; true only for HTTP 200 (a refused connection or a reset is not an answer).
pub fn post(port: u16, path: &str, body: &[u8]) -> bool {
    let answer = http_request(
        "POST",
        port,
        path,
        &[("Content-Type", "application/x-protobuf")],
        body,
    );
    matches!(answer, Ok(r) if r.status == 200)
}

/// Senders working at once: each request waits for the batch timeout and the log's fsync, so one sender alone
/// would send little.
const SENDERS: u64 = 4;

impl Acked {
    fn merge(&mut self, other: Acked) {
        self.spans.extend(other.spans);
        self.logs.extend(other.logs);
        self.failed_requests += other.failed_requests;
        self.sent_requests += other.sent_requests;
    }

    fn summary(&self) -> String {
        format!(
            "{} spans and {} logs acknowledged; {} of {} requests not acknowledged",
            self.spans.len(),
            self.logs.len(),
            self.failed_requests,
            self.sent_requests
        )
    }
}

impl Load {
    /// Starts `SENDERS` threads sending to the OTLP/HTTP port `port`; ids start at `first_id`.
    pub fn start(port: u16, first_id: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let senders: Vec<JoinHandle<Acked>> = (0..SENDERS)
                .map(|sender| {
                    let flag = Arc::clone(&flag);
                    std::thread::spawn(move || send_until(&flag, port, first_id + (sender << 32)))
                })
                .collect();
            let mut acked = Acked::default();
            for sender in senders {
                acked.merge(sender.join().expect("sender"));
            }
            acked
        });
        Load { stop, handle }
    }

    pub fn finish(self) -> Acked {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("load generator")
    }
}

fn send_until(stop: &AtomicBool, port: u16, first_id: u64) -> Acked {
    let mut acked = Acked::default();
    let mut next = first_id;
    while !stop.load(Ordering::Relaxed) {
        let first = next;
        next += PER_REQUEST;
        let ids = || (first..first + PER_REQUEST).map(id_hex);
        for (path, body, spans) in [
            ("/v1/traces", traces(first).encode_to_vec(), true),
            ("/v1/logs", logs(first).encode_to_vec(), false),
        ] {
            acked.sent_requests += 1;
            if post(port, path, &body) {
                if spans {
                    acked.spans.extend(ids());
                } else {
                    acked.logs.extend(ids());
                }
            } else {
                acked.failed_requests += 1;
            }
        }
        std::thread::sleep(ROUND_PAUSE);
    }
    acked
}

/// Kills the daemon with SIGKILL (no shutdown of any kind) and waits for it to be gone.
pub fn kill_hard(daemon: &mut Daemon) {
    let mut child = daemon.child.take().expect("running");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

/// Starts `config` (absolute paths, ports as placeholders) on `ports` with a fresh config directory.
pub fn start_on(config: &str, ports: Ports) -> Daemon {
    Daemon::start_in(config, tempfile::tempdir().expect("tempdir"), ports)
}

/// Ids in `column` of `table` with their row counts.
pub fn ids_in(location: &std::path::Path, table: &str) -> BTreeMap<String, u64> {
    query(
        location,
        &format!("SELECT span_id, count(*) AS n FROM {table} GROUP BY span_id"),
    )
    .into_iter()
    .filter_map(|row| Some((row["span_id"].as_str()?.to_owned(), row["n"].as_u64()?)))
    .collect()
}

fn missing<'a>(acked: &'a BTreeSet<String>, present: &BTreeMap<String, u64>) -> Vec<&'a String> {
    acked
        .iter()
        .filter(|id| !present.contains_key(*id))
        .collect()
}

pub fn wal_section(directory: &std::path::Path) -> String {
    format!(
        "    sending_queue:\n      storage: wal\n      directory: {}\n",
        directory.display()
    )
}

/// The crash test's daemon: a Delta exporter committing every 200 ms behind a write-ahead log.
fn wal_delta_config(wal: &str) -> String {
    format!(
        "{OTLP_IN}exporters:\n  delta:\n    location: {{dir}}/data\n    max_latency: 200ms\n{wal}service:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [delta]}}\n    logs: {{receivers: [otlp], exporters: [delta]}}\n{TELEMETRY}"
    )
}

/// Lowers `delta.checkpointInterval` of `table` to 10 with Python `deltalake`, as an operator would: a
/// sidecar passes Delta's default of 100 commits within minutes, a test should not wait for that.
fn checkpoint_every_10_commits(table: &std::path::Path) {
    let out = crate::support::run_python(
        "delta_properties.py",
        &[table.to_str().expect("utf8"), "delta.checkpointInterval=10"],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The newest version of the Delta table at `table` and whether any checkpoint file is in its log.
fn delta_log_state(table: &std::path::Path) -> (u64, Vec<String>) {
    let mut version = 0;
    let mut checkpoints = Vec::new();
    for entry in std::fs::read_dir(table.join("_delta_log"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(v) = name.strip_suffix(".json").and_then(|v| v.parse().ok()) {
            version = version.max(v);
        }
        if name.contains(".checkpoint") {
            checkpoints.push(name);
        }
    }
    (version, checkpoints)
}

/// Runs `otlake table ACTION` on `table` under `location`; returns its output, failing the test on an error.
fn table_command(location: &std::path::Path, action: &[&str], table: &str) -> String {
    let (ok, text) = crate::support::output_text(
        std::process::Command::new(crate::support::OTLAKE)
            .arg("table")
            .arg(action[0])
            .arg("--location")
            .arg(location)
            .args(["--table", table])
            .args(&action[1..]),
    );
    assert!(ok, "otlake table {action:?} --table {table}: {text}");
    text
}

/// Past a checkpoint, killed, replayed, compacted, vacuumed, read: the whole life of a sidecar's tables.
#[test]
fn sigkill_past_a_checkpoint_loses_and_duplicates_nothing_acknowledged_through_compaction_and_vacuum()
 {
    let shared = tempfile::tempdir().expect("tempdir");
    let config = wal_delta_config(&wal_section(&shared.path().join("wal")))
        .replace("{dir}", &shared.path().display().to_string());
    let location = shared.path().join("data");
    // The tables, created by otlake, then given a checkpoint every 10 commits.
    let mut daemon = start_on(&config, Ports::any());
    // Ids far from the load generator's.
    assert!(post(
        daemon.ports.http,
        "/v1/traces",
        &traces(1 << 40).encode_to_vec()
    ));
    assert!(post(
        daemon.ports.http,
        "/v1/logs",
        &logs(1 << 40).encode_to_vec()
    ));
    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
    for table in ["otel_spans", "otel_logs"] {
        checkpoint_every_10_commits(&location.join(table));
    }
    let mut daemon = start_on(&config, Ports::any());
    // Restarts reuse this start's ports: the load generator keeps its address.
    let ports = daemon.ports;
    let load = Load::start(ports.http, 1);

    // Load until both tables have a checkpoint, so that every replay below reads a checkpointed log.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let spans = delta_log_state(&location.join("otel_spans"));
        let logs = delta_log_state(&location.join("otel_logs"));
        if !spans.1.is_empty() && !logs.1.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint in 120 s: spans at version {}, logs at {}:\n{}",
            spans.0,
            logs.0,
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut replays = 0;
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1500));
        kill_hard(&mut daemon);
        // Down for a moment: requests in this gap fail and are not acknowledged.
        std::thread::sleep(Duration::from_millis(300));
        daemon = start_on(&config, ports);
        // The daemon is ready only once its log is open, and it says so after "Replaying" if it replays.
        if daemon.stderr().contains("Replaying the write-ahead log") {
            replays += 1;
        }
    }
    // Under steady load a kill always finds acknowledged entries not yet committed: the restarts had
    // something to replay, so the log is what kept them.
    assert!(
        replays > 0,
        "no restart replayed anything:\n{}",
        daemon.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let acked = load.finish();
    assert!(
        !acked.spans.is_empty() && !acked.logs.is_empty(),
        "the load generator got nothing through: {}",
        acked.summary()
    );

    // The log drains into Delta (replays included) within the exporter's latency; wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (spans, logs) = loop {
        let spans = ids_in(&location, "otel_spans");
        let logs = ids_in(&location, "otel_logs");
        let complete =
            missing(&acked.spans, &spans).is_empty() && missing(&acked.logs, &logs).is_empty();
        if complete || Instant::now() > deadline {
            break (spans, logs);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
    assert_exactly_once(&acked, &spans, &logs);
    eprintln!("{} (daemon down or killed mid-request)", acked.summary());

    // Maintenance over the checkpointed log, through the CLI a user runs: compaction rewrites the small
    // files of every commit into few (one commit), vacuum keeps what the retention period protects.
    for table in ["otel_spans", "otel_logs"] {
        let (version, checkpoints) = delta_log_state(&location.join(table));
        assert!(
            !checkpoints.is_empty(),
            "{table}: version {version}, {checkpoints:?}"
        );
        let compacted = table_command(&location, &["compact", "--min-files", "2"], table);
        assert!(
            compacted.contains(&format!("read version {version}"))
                && compacted.contains(&format!("committed version {}", version + 1)),
            "{compacted}"
        );
        let vacuumed = table_command(&location, &["vacuum", "--retention", "168h"], table);
        assert!(vacuumed.contains("0 files deleted"), "{vacuumed}");
    }
    // Exactly once still, and every reader (delta-rs, DuckDB's delta_scan and Polars on delta-kernel-rs)
    // reads the same rows from the compacted, checkpointed tables.
    assert_exactly_once(
        &acked,
        &ids_in(&location, "otel_spans"),
        &ids_in(&location, "otel_logs"),
    );
    crate::delta::check_tables(
        &location,
        &[
            "--tables",
            "spans,logs",
            "--expect-spans",
            &spans.len().to_string(),
            "--expect-logs",
            &logs.len().to_string(),
            "--expect-json",
            &unique_json(shared.path()),
        ],
    );
}

/// An --expect-json file asking check_tables.py for uniqueness of spans and logs.
fn unique_json(dir: &std::path::Path) -> String {
    let path = dir.join("unique.json");
    std::fs::write(&path, r#"{"unique": ["spans", "logs"]}"#).expect("write");
    path.display().to_string()
}

/// Every acknowledged span and log is present exactly once.
fn assert_exactly_once(acked: &Acked, spans: &BTreeMap<String, u64>, logs: &BTreeMap<String, u64>) {
    for (signal, acked, present) in [("spans", &acked.spans, spans), ("logs", &acked.logs, logs)] {
        let lost = missing(acked, present);
        assert!(
            lost.is_empty(),
            "{} acknowledged {signal} are not in Delta, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        let twice: Vec<(&String, &u64)> = present.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{} {signal} are in Delta more than once, e.g. {:?}",
            twice.len(),
            &twice[..twice.len().min(5)]
        );
        let unacknowledged = present.keys().filter(|id| !acked.contains(*id)).count();
        eprintln!(
            "{signal}: {} acknowledged, all present once; {unacknowledged} present without an acknowledgement",
            acked.len()
        );
    }
}

/// A downstream otlake writing every signal to a file (`{dir}/out.jsonl`, `{dir}` being absolute here).
pub fn downstream_config(dir: &std::path::Path) -> String {
    format!(
        "{OTLP_IN}exporters:\n  file:\n    path: {}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n    logs: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}",
        dir.display()
    )
}

/// Span ids and log span ids in the file exporter's output, with how often each appears.
pub fn forwarded_ids(path: &std::path::Path) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let (mut spans, mut logs) = (BTreeMap::new(), BTreeMap::new());
    let hex = |v: &Value| v.as_str().map(|s| s.to_ascii_lowercase());
    for line in read_jsonl(path) {
        for rs in line["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    if let Some(id) = hex(&s["spanId"]) {
                        *spans.entry(id).or_insert(0) += 1;
                    }
                }
            }
        }
        for rl in line["resourceLogs"].as_array().into_iter().flatten() {
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                for l in sl["logRecords"].as_array().into_iter().flatten() {
                    if let Some(id) = hex(&l["spanId"]) {
                        *logs.entry(id).or_insert(0) += 1;
                    }
                }
            }
        }
    }
    (spans, logs)
}

#[test]
fn a_downstream_killed_mid_stream_gets_every_acknowledged_item_at_least_once() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let wal_dir = tempfile::tempdir().expect("tempdir");
    let gw_ports = Ports::free();
    let gw_config = downstream_config(out_dir.path());
    let mut gateway = start_on(&gw_config, gw_ports);
    let sidecar_config = format!(
        "{OTLP_IN}processors:\n  batch:\n    timeout: 100ms\nexporters:\n  otlphttp/gateway:\n    endpoint: http://127.0.0.1:{}\n    retry_on_failure:\n      initial_interval: 200ms\n      max_interval: 1s\n      max_elapsed_time: 3s\n{}service:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [batch], exporters: [otlphttp/gateway]}}\n    logs: {{receivers: [otlp], processors: [batch], exporters: [otlphttp/gateway]}}\n{TELEMETRY}",
        gw_ports.http,
        wal_section(wal_dir.path())
    );
    let sc_ports = Ports::free();
    let mut sidecar = start_on(&sidecar_config, sc_ports);
    let load = Load::start(sc_ports.http, 1 << 40);
    // The downstream dies twice (once for longer than the exporter's own retries), the sidecar once.
    for (down_for, which) in [(1500, "gateway"), (5000, "gateway"), (300, "sidecar")] {
        std::thread::sleep(Duration::from_millis(1500));
        if which == "gateway" {
            kill_hard(&mut gateway);
            std::thread::sleep(Duration::from_millis(down_for));
            gateway = start_on(&gw_config, gw_ports);
        } else {
            kill_hard(&mut sidecar);
            std::thread::sleep(Duration::from_millis(down_for));
            sidecar = start_on(&sidecar_config, sc_ports);
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    let acked = load.finish();
    assert!(
        !acked.spans.is_empty() && !acked.logs.is_empty(),
        "the load generator got little through: {}",
        acked.summary()
    );

    let out = out_dir.path().join("out.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (spans, logs) = loop {
        let (spans, logs) = forwarded_ids(&out);
        let complete =
            missing(&acked.spans, &spans).is_empty() && missing(&acked.logs, &logs).is_empty();
        if complete || Instant::now() > deadline {
            break (spans, logs);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        sidecar.terminate(),
        "sidecar exits cleanly:\n{}",
        sidecar.stderr()
    );
    assert!(gateway.terminate(), "gateway exits cleanly");
    for (signal, acked, present) in [
        ("spans", &acked.spans, &spans),
        ("logs", &acked.logs, &logs),
    ] {
        let lost = missing(acked, present);
        assert!(
            lost.is_empty(),
            "{} acknowledged {signal} never reached the downstream, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        let repeated = present.values().filter(|n| **n > 1).count();
        eprintln!(
            "{signal}: {} acknowledged, all forwarded; {repeated} forwarded more than once (at-least-once)",
            acked.len()
        );
    }
}
