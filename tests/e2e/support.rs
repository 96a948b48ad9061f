//! Shared helpers for the end-to-end tests: start the real daemon on loopback, talk raw HTTP to it, run the
//! Python clients from ./.venv. Every wait is bounded.
//!
//! A daemon is started with `--ready-file` and counts as started once that file appears: the daemon writes it
//! only after every receiver is bound and every write-ahead log is open, with the addresses it bound. So the
//! usual config binds port 0 ([`Ports::any`]) and the test learns the ports from the file: no port is picked,
//! dropped and bound again later. Tests whose config must name a port before the daemon starts (a sidecar
//! pointing at a gateway started later, a restart on the same port) still use [`Ports::free`].
//! Children get a fixed environment: `RUST_LOG=info` (unless the test sets its own) and no `OTEL_*` variables
//! from the developer's shell.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const OTLAKE: &str = env!("CARGO_BIN_EXE_otlake");

/// The daemon [`Daemon::start`] runs: `OTLAKE_BIN` when set (worktrees that share one cargo target dir overwrite
/// each other's `target/debug/otlake`, so a run can point at a private copy), else [`OTLAKE`].
pub fn otlake_bin() -> PathBuf {
    std::env::var_os("OTLAKE_BIN").map_or_else(|| PathBuf::from(OTLAKE), PathBuf::from)
}

/// The workspace root (this file is tests/e2e/support.rs, compiled from collector/bin).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace exists")
}

/// Runs `command` to its end (at most 60 s, then the test fails): whether it succeeded, and its stdout then
/// stderr as one text.
pub fn output_text(command: &mut Command) -> (bool, String) {
    let out = bounded_output(command, Duration::from_secs(60));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `command` to its end with piped output, at most `limit` (then the test fails), without the caller's
/// `OTEL_*` variables.
pub fn bounded_output(command: &mut Command, limit: Duration) -> Output {
    let child = without_otel_env(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command runs");
    wait_output(child, limit)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind :0")
        .local_addr()
        .expect("addr")
        .port()
}

/// The venv's Python, with the OTel SDK, deltalake and duckdb (scripts/setup-venv.sh makes it).
pub fn python() -> PathBuf {
    let path = std::env::var_os("OTLAKE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-venv.sh (the README's test command does) or set OTLAKE_PYTHON",
        path.display()
    );
    path
}

/// Removes the caller's `OTEL_*` variables (SDK endpoints, headers, exporters) from a child's environment, so
/// that only what the test passes reaches it.
pub fn without_otel_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs a Python script from tests/clients with a time limit; returns its output.
pub fn run_python(script: &str, args: &[&str], limit: Duration) -> Output {
    let child = without_otel_env(&mut Command::new(python()))
        .arg(workspace().join("tests/clients").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    wait_output(child, limit)
}

/// Waits for `child` at most `limit` (killing it then, and failing the test); returns its output. Its pipes
/// are drained while it runs, so a chatty child never blocks on a full pipe.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status: status.unwrap_or_else(|| child.wait().expect("wait")),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(
        status.is_some(),
        "timed out after {limit:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The ports a daemon listens on.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub grpc: u16,
    pub http: u16,
    pub metrics: u16,
    pub health: u16,
}

impl Ports {
    /// Port 0 everywhere: the daemon binds what the kernel gives and reports it in its ready file.
    pub fn any() -> Ports {
        Ports {
            grpc: 0,
            http: 0,
            metrics: 0,
            health: 0,
        }
    }

    /// Ports free right now, for a config that must name them before the daemon starts (another process may
    /// take one meanwhile: prefer [`Ports::any`]).
    pub fn free() -> Ports {
        Ports {
            grpc: free_port(),
            http: free_port(),
            metrics: free_port(),
            health: free_port(),
        }
    }

    /// Fills `{grpc}`, `{http}`, `{metrics}`, `{health}` in a config template.
    pub fn fill(&self, template: &str) -> String {
        template
            .replace("{grpc}", &self.grpc.to_string())
            .replace("{http}", &self.http.to_string())
            .replace("{metrics}", &self.metrics.to_string())
            .replace("{health}", &self.health.to_string())
    }
}

/// The usual receiver + telemetry part of a test config; append `exporters:` and `service.pipelines`.
pub const OTLP_IN: &str = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{grpc}\n      http:\n        endpoint: 127.0.0.1:{http}\n";
pub const TELEMETRY: &str = "  telemetry:\n    metrics:\n      address: 127.0.0.1:{metrics}\n    health:\n      endpoint: 127.0.0.1:{health}\n";

/// A running `otlake run` process; killed on drop if the test did not stop it.
pub struct Daemon {
    pub child: Option<Child>,
    pub ports: Ports,
    pub dir: tempfile::TempDir,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Writes `config` (after filling ports, all 0) to a temp dir, starts the daemon there and waits until it
    /// is ready; `ports` then holds the bound ports.
    pub fn start(template: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        Daemon::start_in(template, dir, Ports::any())
    }

    pub fn start_in(template: &str, dir: tempfile::TempDir, ports: Ports) -> Daemon {
        let config = ports.fill(&template.replace("{dir}", &dir.path().display().to_string()));
        let config_path = dir.path().join("otlake.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let mut command = Command::new(otlake_bin());
        command.args(["run", "--config"]).arg(&config_path);
        Daemon::from_command(command, dir, ports)
    }

    /// Starts `command` (an `otlake run ...`) in `dir` and waits (bounded) until it is ready: its ready file
    /// is written. A port given as 0 in `ports` is replaced by the one the daemon bound.
    pub fn from_command(mut command: Command, dir: tempfile::TempDir, ports: Ports) -> Daemon {
        let stderr_path = dir.path().join("otlake.stderr");
        let ready_path = dir.path().join("otlake.ready");
        let _ = std::fs::remove_file(&ready_path);
        command.arg("--ready-file").arg(&ready_path);
        if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
            command.env("RUST_LOG", "info");
        }
        let child = without_otel_env(&mut command)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("otlake starts");
        let mut daemon = Daemon {
            child: Some(child),
            ports,
            dir,
            stderr_path,
        };
        let addresses = daemon.wait_ready(&ready_path);
        let bound = |suffix: &str| {
            addresses
                .iter()
                .find(|(name, _)| name.ends_with(suffix))
                .map(|(_, address)| address.port())
        };
        let fill = |port: &mut u16, suffix: &str| {
            if *port == 0
                && let Some(bound) = bound(suffix)
            {
                *port = bound;
            }
        };
        fill(&mut daemon.ports.grpc, "/grpc");
        fill(&mut daemon.ports.http, "/http");
        fill(&mut daemon.ports.metrics, "telemetry/metrics");
        fill(&mut daemon.ports.health, "telemetry/health");
        daemon
    }

    /// Waits (at most 60 s) for the ready file; returns its addresses (name, address).
    fn wait_ready(&mut self, ready_path: &Path) -> Vec<(String, std::net::SocketAddr)> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(ready_path) {
                let ready: serde_json::Value =
                    serde_json::from_str(&text).expect("the ready file is JSON");
                return ready["addresses"]
                    .as_object()
                    .expect("the ready file has addresses")
                    .iter()
                    .map(|(name, address)| {
                        let address = address.as_str().expect("an address is a string");
                        (name.clone(), address.parse().expect("a socket address"))
                    })
                    .collect();
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("wait"))
            {
                panic!(
                    "otlake exited during start-up ({status}):\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "otlake did not become ready in 60 s:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        let pid = self.pid().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "otlake did not exit within 60 s of SIGTERM:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), bounded by a 60 s socket timeout.
pub fn http_request(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // The server may answer (413) and close before reading a large body: a write error then is fine.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// POSTs an OTLP/HTTP protobuf body.
pub fn post_protobuf(port: u16, path: &str, body: &[u8]) -> Response {
    http_request(
        "POST",
        port,
        path,
        &[("Content-Type", "application/x-protobuf")],
        body,
    )
    .expect("request")
}

/// Reads the file exporter's output: one OTLP/JSON object per line.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// Runs tests/clients/sdk_send.py (the real OpenTelemetry Python SDK exporters); returns what it sent and how
/// each export ended (`results.traces` = `SUCCESS` | `FAILURE`, ...).
pub fn sdk_send(args: &[&str]) -> serde_json::Value {
    let out = run_python("sdk_send.py", args, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "sdk_send.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("sdk_send.py prints JSON")
}

/// [`sdk_send`] to `127.0.0.1:port`, asserting that every export it made was acknowledged.
pub fn sdk_send_acknowledged(protocol: &str, port: u16, extra: &[&str]) -> serde_json::Value {
    let endpoint = format!("127.0.0.1:{port}");
    let mut args = vec!["--protocol", protocol, "--endpoint", endpoint.as_str()];
    args.extend_from_slice(extra);
    let sent = sdk_send(&args);
    for (signal, result) in sent["results"].as_object().expect("results") {
        assert_eq!(result, "SUCCESS", "{signal} was not acknowledged");
    }
    sent
}

/// A number as the tests compare it: OTLP/JSON writes 64-bit integers as strings, doubles as numbers.
fn number_text(v: &serde_json::Value) -> String {
    let n = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// One metric data point as a comparable line: `service|name|kind|value|count|sum|k=v,...`.
fn point_line(
    service: &str,
    name: &str,
    kind: &str,
    numbers: [&serde_json::Value; 3],
    mut attributes: Vec<String>,
) -> String {
    attributes.sort();
    let [value, count, sum] = numbers.map(number_text);
    format!(
        "{service}|{name}|{kind}|{value}|{count}|{sum}|{}",
        attributes.join(",")
    )
}

/// An OTLP/JSON attribute value as text (strings as they are).
fn any_value_text(v: &serde_json::Value) -> String {
    ["stringValue", "boolValue", "doubleValue", "intValue"]
        .iter()
        .find_map(|k| v.get(*k))
        .map(|x| x.to_string().trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// The log bodies in OTLP/JSON lines (the file exporter's output), one per record, sorted.
pub fn landed_log_bodies(lines: &[serde_json::Value]) -> Vec<String> {
    let mut bodies: Vec<String> = lines
        .iter()
        .flat_map(|l| l["resourceLogs"].as_array().into_iter().flatten())
        .flat_map(|rl| rl["scopeLogs"].as_array().into_iter().flatten())
        .flat_map(|sl| sl["logRecords"].as_array().into_iter().flatten())
        .map(|r| any_value_text(&r["body"]))
        .collect();
    bodies.sort();
    bodies
}

/// The metric data points in OTLP/JSON lines, as [`point_line`]s, sorted.
pub fn landed_metric_points(lines: &[serde_json::Value]) -> Vec<String> {
    let none = serde_json::Value::Null;
    let mut points = Vec::new();
    for rm in lines
        .iter()
        .flat_map(|l| l["resourceMetrics"].as_array().into_iter().flatten())
    {
        let service = rm["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|kv| kv["key"] == "service.name")
            .map(|kv| any_value_text(&kv["value"]))
            .unwrap_or_default();
        for m in rm["scopeMetrics"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|sm| sm["metrics"].as_array().into_iter().flatten())
        {
            let name = m["name"].as_str().unwrap_or_default();
            for kind in ["sum", "gauge", "histogram"] {
                for p in m[kind]["dataPoints"].as_array().into_iter().flatten() {
                    let value = p
                        .get("asDouble")
                        .or_else(|| p.get("asInt"))
                        .unwrap_or(&none);
                    let attributes = p["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|kv| {
                            format!(
                                "{}={}",
                                kv["key"].as_str().unwrap_or_default(),
                                any_value_text(&kv["value"])
                            )
                        })
                        .collect();
                    let numbers = if kind == "histogram" {
                        [&none, &p["count"], &p["sum"]]
                    } else {
                        [value, &none, &none]
                    };
                    points.push(point_line(&service, name, kind, numbers, attributes));
                }
            }
        }
    }
    points.sort();
    points
}

/// The log bodies `sdk_send.py` reported sending, over all `sent`, sorted.
pub fn sent_log_bodies(sent: &[&serde_json::Value]) -> Vec<String> {
    let mut bodies: Vec<String> = sent
        .iter()
        .flat_map(|s| s["logs"].as_array().into_iter().flatten())
        .map(|l| l["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    bodies.sort();
    bodies
}

/// The metric data points `sdk_send.py` reported sending, over all `sent`, as [`point_line`]s, sorted.
pub fn sent_metric_points(sent: &[&serde_json::Value]) -> Vec<String> {
    let mut points: Vec<String> = sent
        .iter()
        .flat_map(|s| s["metric_points"].as_array().into_iter().flatten())
        .map(|p| {
            let attributes = p["attributes"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            point_line(
                p["service"].as_str().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default(),
                p["kind"].as_str().unwrap_or_default(),
                [&p["value"], &p["count"], &p["sum"]],
                attributes,
            )
        })
        .collect();
    points.sort();
    points
}

/// Rows of `sql` over the Delta tables under `location`, read with `deltalake` (`query_delta.py`).
pub fn query(location: &Path, sql: &str) -> Vec<serde_json::Value> {
    query_delta(&[], location, sql)
}

/// Rows of `sql` read through DuckDB's own Delta reader (`delta_scan`), which decodes the VARIANT columns of v2
/// tables into typed values (`query_delta.py --delta-scan`).
pub fn query_v2(location: &Path, sql: &str) -> Vec<serde_json::Value> {
    query_delta(&["--delta-scan"], location, sql)
}

fn query_delta(options: &[&str], location: &Path, sql: &str) -> Vec<serde_json::Value> {
    let mut args = options.to_vec();
    args.extend([location.to_str().expect("utf8"), sql]);
    let out = run_python("query_delta.py", &args, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON rows")
}
