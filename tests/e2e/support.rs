//! Shared helpers for the end-to-end tests: start the real daemon on free loopback ports, talk raw HTTP to it,
//! run the Python clients from ./.venv. Every wait is bounded.

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

/// Runs `command` to its end: whether it succeeded, and its stdout then stderr as one text.
pub fn output_text(command: &mut Command) -> (bool, String) {
    let out = command.output().expect("the command runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
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

/// Runs a Python script from tests/clients with a time limit; returns its output.
pub fn run_python(script: &str, args: &[&str], limit: Duration) -> Output {
    let child = Command::new(python())
        .arg(workspace().join("tests/clients").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    wait_output(child, limit)
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "timed out after {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
    /// Writes `config` (after filling ports) to a temp dir, starts the daemon there and waits until healthy.
    pub fn start(template: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        Daemon::start_in(template, dir, Ports::free())
    }

    pub fn start_in(template: &str, dir: tempfile::TempDir, ports: Ports) -> Daemon {
        let config = ports.fill(&template.replace("{dir}", &dir.path().display().to_string()));
        let config_path = dir.path().join("otlake.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let mut command = Command::new(otlake_bin());
        command.args(["run", "--config"]).arg(&config_path);
        Daemon::from_command(command, dir, ports)
    }

    /// Starts `command` (an `otlake run ...`) in `dir` and waits until its health endpoint on `ports` answers.
    pub fn from_command(mut command: Command, dir: tempfile::TempDir, ports: Ports) -> Daemon {
        let stderr_path = dir.path().join("otlake.stderr");
        let child = command
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
        daemon.wait_healthy();
        daemon
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
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
            if let Ok(r) = http_request("GET", self.ports.health, "/", &[], b"")
                && r.status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("otlake did not become healthy in 30 s:\n{}", self.stderr());
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
