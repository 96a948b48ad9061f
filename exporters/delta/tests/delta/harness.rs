//! Running the real exporter in a test, and the real Python readers on what it wrote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use otlake_core::batch::channel;
use otlake_core::test_util::build_exporter;
use otlake_core::{
    AckReceiver, BatchSender, ComponentId, ExporterContext, Outcome, Payload, Signal, Verdict,
};
use otlake_exporter_delta::DeltaExporterFactory;
use serde_json::Value;
use tokio::task::JoinHandle;

/// How long any single wait in these tests may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running `delta` exporter fed through a real stage channel.
pub struct Running {
    pub input: BatchSender,
    pub task: JoinHandle<otlake_core::Result<()>>,
}

impl Running {
    /// Builds the exporter from its YAML-equivalent config and runs it for all three signals.
    pub fn start(id: &str, config: Value) -> Running {
        let id: ComponentId = id.parse().expect("component id");
        let exporter =
            build_exporter(&DeltaExporterFactory, &config, &Signal::ALL).expect("valid config");
        let (input, rx) = channel(&id.to_string(), 16);
        let task = tokio::spawn(exporter.run(rx, ExporterContext { id }));
        Running { input, task }
    }

    /// Sends `payload` with a fresh acknowledgement; returns the receiver of its verdict.
    pub async fn send(&self, payload: impl Into<Payload>) -> AckReceiver {
        let (batch, ack) = otlake_core::test_util::batch_with_ack(payload);
        if self.input.send(batch).await.is_err() {
            panic!("the exporter stopped taking batches");
        }
        ack
    }

    /// Closes the input and waits for the exporter to commit and stop.
    pub async fn stop(self) -> otlake_core::Result<()> {
        drop(self.input);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("exporter stopped in time")
            .expect("exporter task did not panic")
    }
}

pub async fn verdict(ack: AckReceiver) -> Verdict {
    tokio::time::timeout(WAIT, ack.wait())
        .await
        .expect("acknowledged in time")
}

pub async fn assert_delivered(ack: AckReceiver) {
    let verdict = verdict(ack).await;
    assert_eq!(verdict.outcome, Outcome::Delivered, "{verdict:?}");
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The Python with `deltalake`, `duckdb` and `pyarrow`: `$OTLAKE_PYTHON`, else `<workspace>/.venv/bin/python`.
pub fn python() -> PathBuf {
    let python = std::env::var_os("OTLAKE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "no Python at {} — run scripts/setup-venv.sh (or set OTLAKE_PYTHON)",
        python.display()
    );
    python
}

/// Runs tests/python/check_tables.py on `location` with `args`; fails the test with its output on failure.
pub fn check_tables(location: &Path, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_tables.py");
    let output = Command::new(python())
        .arg(&script)
        .arg(location)
        .args(args)
        .output()
        .expect("run check_tables.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "check_tables.py failed:\n{text}");
    text
}

/// Checks with check_tables.py (every reader) that the spans table under `dir` holds `spans` rows, each span
/// id once; `extra` are more arguments (e.g. `--schema-version v2`).
pub fn check_spans_once(dir: &Path, spans: usize, extra: &[&str]) {
    let expect = dir.join("expect.json");
    std::fs::write(&expect, br#"{"unique": ["spans"]}"#).expect("write");
    let spans = spans.to_string();
    let mut args = vec![
        "--tables",
        "spans",
        "--expect-spans",
        &spans,
        "--expect-json",
        expect.to_str().expect("utf-8"),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    check_tables(dir, &args);
}

/// A config for a local location with a short latency, so tests finish quickly.
pub fn local_config(location: &Path) -> Value {
    serde_json::json!({
        "location": location.to_str().expect("utf-8 path"),
        "max_latency": "200ms",
    })
}
