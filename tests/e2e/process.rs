//! Process capture end to end: `otlake run [--config F] -- python ...` with a real Python child that logs
//! through `logging`, the real daemon, the Delta logs table read back with `deltalake` + DuckDB. Every wait is
//! bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::query;
use crate::support::{OTLAKE, python, workspace};

/// A config whose command comes from the command line: `process` → batch → delta at `{dir}/data`, no ports.
const DELTA_CONFIG: &str = "receivers:\n  process:\n    force_flush_period: 200ms\nprocessors:\n  batch:\n    timeout: 100ms\nexporters:\n  delta:\n    location: {dir}/data\n    max_latency: 300ms\nservice:\n  pipelines:\n    logs: {receivers: [process], processors: [batch], exporters: [delta]}\n  telemetry:\n    metrics: {level: none}\n    health: {endpoint: \"\"}\n";

/// `otlake run` started in `dir` with `args`; its stdout and stderr go to files there.
struct Run {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Run {
    fn start(dir: &Path, args: &[&str]) -> Run {
        let (stdout, stderr) = (dir.join("otlake.stdout"), dir.join("otlake.stderr"));
        let child = Command::new(OTLAKE)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("otlake starts");
        Run {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (bounded) until otlake's stdout shows `text`.
    fn wait_stdout(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.stdout().contains(text) {
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!(
                    "otlake exited ({status}) before printing {text:?}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} on stdout in 30 s:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) for otlake to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("otlake did not exit within 60 s:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the delta config into `dir` and returns its path.
fn delta_config(dir: &Path) -> PathBuf {
    let path = dir.join("otlake.yaml");
    std::fs::write(
        &path,
        DELTA_CONFIG.replace("{dir}", &dir.display().to_string()),
    )
    .expect("config");
    path
}

/// `otlake run --config <DELTA_CONFIG> -- python tests/clients/process_child.py MODE`, started in `dir`.
fn run_child(dir: &Path, mode: &str) -> Run {
    let config = delta_config(dir);
    let python = python();
    let script = workspace().join("tests/clients/process_child.py");
    let args = [
        "run",
        "--config",
        config.to_str().expect("utf8"),
        "--",
        python.to_str().expect("utf8"),
        script.to_str().expect("utf8"),
        mode,
    ];
    Run::start(dir, &args)
}

#[test]
fn run_captures_a_python_child_that_logs_raises_and_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut run = run_child(dir.path(), "exit3");
    let status = run.wait();
    // The child's exit code is otlake's, and otlake exits only once every line is committed.
    assert_eq!(status.code(), Some(3), "{status}:\n{}", run.stderr());

    // Passed through unchanged: stdout to stdout, logging (stderr) to stderr.
    let (stdout, stderr) = (run.stdout(), run.stderr());
    assert!(stdout.contains("plain stdout line\n"), "{stdout}");
    assert!(!stdout.contains("model loaded"), "{stdout}");
    for line in [
        "INFO:model.server:model loaded\n",
        "ERROR:model.server:inference crashed\nTraceback (most recent call last):\n",
        "ZeroDivisionError: division by zero\n",
        "plain stderr line\n",
    ] {
        assert!(stderr.contains(line), "{line:?} not in stderr:\n{stderr}");
    }

    let location = dir.path().join("data");
    let rows = query(
        &location,
        "SELECT body, severity_text, attributes['log.iostream'] AS stream, \
         instrumentation_scope.name AS logger, attributes['exception.type'] AS type, \
         attributes['exception.message'] AS message, attributes['exception.stacktrace'] AS stack, \
         resource.attributes['process.command'] AS command, resource.attributes['process.pid'] AS pid \
         FROM otel_logs ORDER BY body",
    );
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            json!([
                r["body"],
                r["severity_text"],
                r["stream"],
                r["type"],
                r["message"]
            ])
        })
        .collect();
    // Every line landed, once; the traceback is part of ONE ERROR record, not records of its own.
    assert_eq!(
        summary,
        vec![
            json!(["cache nearly full", "WARNING", "stderr", null, null]),
            json!([
                "inference crashed",
                "ERROR",
                "stderr",
                "ZeroDivisionError",
                "division by zero"
            ]),
            json!(["model loaded", "INFO", "stderr", null, null]),
            json!(["plain stderr line", "", "stderr", null, null]),
            json!(["plain stdout line", "", "stdout", null, null]),
            json!(["request failed", "ERROR", "stderr", null, null]),
        ],
        "{rows:#?}"
    );
    let crashed = &rows[1];
    let stack = crashed["stack"].as_str().unwrap_or_default();
    assert!(
        stack.starts_with("Traceback (most recent call last):")
            && stack.contains("1 / 0")
            && stack
                .trim_end()
                .ends_with("ZeroDivisionError: division by zero"),
        "{stack}"
    );
    assert_eq!(crashed["logger"], "model.server");
    for row in &rows {
        let command = row["command"].as_str().unwrap_or_default();
        assert!(command.ends_with("process_child.py exit3"), "{row}");
        let pid = row["pid"]
            .as_str()
            .map_or_else(|| row["pid"].to_string(), str::to_owned);
        assert!(pid.parse::<u32>().is_ok_and(|p| p > 0), "{row}");
    }

    // The seed query: errors in the last hour (the `logging` default format prints no time: the observed
    // time stands in for it).
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
        - 3600 * 1_000_000_000;
    let errors = query(
        &location,
        &format!(
            "SELECT body, attributes['exception.type'] AS type FROM otel_logs \
             WHERE CAST(severity_number AS INTEGER) >= 17 \
             AND coalesce(nullif(CAST(time_unix_nano AS HUGEINT), 0), CAST(observed_time_unix_nano AS HUGEINT)) \
             > {hour_ago} ORDER BY body"
        ),
    );
    assert_eq!(
        serde_json::Value::Array(errors),
        json!([
            {"body": "inference crashed", "type": "ZeroDivisionError"},
            {"body": "request failed", "type": null}
        ])
    );
}

#[test]
fn sigterm_to_otlake_reaches_the_child_whose_last_words_land_and_whose_exit_code_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut run = run_child(dir.path(), "sigterm");
    run.wait_stdout("ready\n");
    let status = Command::new("kill")
        .args(["-TERM", &run.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let status = run.wait();
    // The child handled SIGTERM and exited 0 (had otlake not forwarded it, the child would exit 1 after 60 s).
    assert_eq!(status.code(), Some(0), "{status}:\n{}", run.stderr());
    let rows = query(
        &dir.path().join("data"),
        "SELECT body, severity_text FROM otel_logs ORDER BY body",
    );
    assert_eq!(
        serde_json::Value::Array(rows),
        json!([
            {"body": "bye", "severity_text": "INFO"},
            {"body": "ready", "severity_text": ""},
            {"body": "serving", "severity_text": "INFO"}
        ])
    );
}

#[test]
fn run_with_no_config_lands_the_commands_logging_in_data_otel_logs_of_the_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("app.py"),
        "import logging\nlogging.basicConfig(level=logging.INFO)\nlogging.getLogger('app').warning('hello from app.py')\n",
    )
    .expect("app.py");
    let mut run = Run::start(dir.path(), &["run", "--", "python3", "app.py"]);
    let status = run.wait();
    assert!(status.success(), "{status}:\n{}", run.stderr());
    assert!(
        run.stderr().contains("WARNING:app:hello from app.py"),
        "{}",
        run.stderr()
    );
    let rows = query(
        &dir.path().join("data"),
        "SELECT body, severity_text, instrumentation_scope.name AS logger FROM otel_logs",
    );
    assert_eq!(
        serde_json::Value::Array(rows),
        json!([{"body": "hello from app.py", "severity_text": "WARNING", "logger": "app"}])
    );
}

#[test]
fn run_with_a_command_refuses_a_config_without_a_process_receiver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("otlake.yaml");
    std::fs::write(
        &config,
        "receivers: {otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}}\nexporters: {debug: }\nservice:\n  pipelines:\n    logs: {receivers: [otlp], exporters: [debug]}\n",
    )
    .expect("config");
    let mut run = Run::start(
        dir.path(),
        &[
            "run",
            "--config",
            config.to_str().expect("utf8"),
            "--",
            "true",
        ],
    );
    let status = run.wait();
    assert_eq!(status.code(), Some(1));
    assert!(
        run.stderr()
            .contains("has no `process` receiver to run `true` in"),
        "{}",
        run.stderr()
    );
}
