//! The `file` exporter: appends each batch as one line of OTLP/JSON to a file, the Collector's `file` exporter
//! format, so tools that read that format read ours.
//!
//! A batch's acknowledgements resolve `Delivered` only after its line is written, flushed and `fsync`ed: a
//! client that heard success will find its data in the file after a crash. A line whose write fails halfway
//! (a full disk) is cut off again before anything else is appended, so every line in the file stays whole
//! OTLP/JSON; directories the exporter creates, and the one holding the file, are fsynced at start-up so the
//! file itself survives a crash.

mod lines;

use std::path::PathBuf;

use async_trait::async_trait;
use otlake_core::{
    BatchReceiver, ComponentError, ComponentId, ConfigError, ExportRequest, Exporter,
    ExporterContext, ExporterFactory, Factory, Outcome, Payload, Signal, telemetry,
};
use serde::Deserialize;

use lines::{LineFile, Lines};

/// `exporters.file:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// The file to append to (created with its parent directories). Required.
    pub path: String,
    /// `json` (the only format; accepted for Collector compatibility).
    pub format: Option<String>,
}

impl FileConfig {
    fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.path.trim().is_empty() {
            errors.push(ConfigError::new(
                "path",
                "required: the file to write OTLP/JSON lines to",
            ));
        }
        if let Some(format) = &self.format
            && format != "json"
        {
            errors.push(ConfigError::new(
                "format",
                format!("`{format}` is not supported: only `json`"),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

pub struct FileExporterFactory;

impl Factory for FileExporterFactory {
    type Config = FileConfig;

    fn type_name(&self) -> &'static str {
        "file"
    }
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }
    fn description(&self) -> &'static str {
        "appends OTLP/JSON lines to a file, fsynced before the acknowledgement"
    }
    fn validate(&self, config: &FileConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ExporterFactory for FileExporterFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: FileConfig,
        _signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError> {
        Ok(Box::new(FileExporter {
            path: PathBuf::from(config.path),
        }))
    }
}

pub struct FileExporter {
    path: PathBuf,
}

#[async_trait]
impl Exporter for FileExporter {
    async fn run(
        self: Box<Self>,
        input: BatchReceiver,
        cx: ExporterContext,
    ) -> otlake_core::Result<()> {
        let startup = |e: std::io::Error| {
            ComponentError::startup(
                format!("file exporter {}: opening {}", cx.id, self.path.display()),
                e,
            )
        };
        let dir = match self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => parent,
            None => std::path::Path::new("."),
        };
        lines::create_dir_all_durably(dir).await.map_err(startup)?;
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(startup)?;
        let lines = Lines::open(file, &self.path).await.map_err(startup)?;
        // The file's directory entry (a new file's) is durable only once the directory is synced.
        lines::sync_dir(dir).await.map_err(startup)?;
        write_batches(input, lines, &cx.id, &self.path.display().to_string()).await;
        Ok(())
    }
}

/// Appends each batch as one line and resolves its acknowledgements; returns when the input closes.
async fn write_batches<F: LineFile>(
    mut input: BatchReceiver,
    mut lines: Lines<F>,
    id: &ComponentId,
    path: &str,
) {
    while let Some(batch) = input.recv().await {
        let mut line = match to_json(&batch.payload) {
            Ok(line) => line,
            Err(e) => {
                batch.acks.resolve(Outcome::rejected(format!(
                    "not representable as OTLP/JSON: {e}"
                )));
                continue;
            }
        };
        line.push('\n');
        let outcome = match lines.append(line.as_bytes()).await {
            Ok(()) => Outcome::Delivered,
            Err(e) => Outcome::retryable(format!("cannot write {path}: {e}")),
        };
        telemetry::record_export(id, batch.signal(), batch.item_count(), &outcome);
        batch.acks.resolve(outcome);
    }
}

/// One OTLP/JSON line (the spec's JSON mapping: camelCase, hex ids, integer enums).
fn to_json(payload: &Payload) -> Result<String, String> {
    let json = match payload.request().map_err(|e| e.to_string())? {
        ExportRequest::Traces(r) => serde_json::to_string(r),
        ExportRequest::Logs(r) => serde_json::to_string(r),
        ExportRequest::Metrics(r) => serde_json::to_string(r),
    };
    json.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::DynExporterFactory;
    use otlake_core::batch::channel;
    use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
    use otlake_core::test_util::{batch_with_ack, build_exporter, sample_metrics, sample_traces};
    use serde_json::Value;

    fn build(path: &std::path::Path) -> Box<dyn Exporter> {
        build_exporter(
            &FileExporterFactory,
            &serde_json::json!({"path": path}),
            &Signal::ALL,
        )
        .expect("valid config")
    }

    #[test]
    fn config_requires_a_path_and_refuses_unknown_keys() {
        let f: &dyn DynExporterFactory = &FileExporterFactory;
        let err = f.validate(&Value::Null).expect_err("no path");
        assert_eq!(err[0].path, "path");
        assert!(
            f.validate(&serde_json::json!({"path": "/tmp/x", "rotation": {}}))
                .is_err()
        );
        assert!(
            f.validate(&serde_json::json!({"path": "/tmp/x", "format": "proto"}))
                .is_err()
        );
        assert!(
            f.validate(&serde_json::json!({"path": "/tmp/x", "format": "json"}))
                .is_ok()
        );
    }

    #[tokio::test]
    async fn lifecycle_built_dropped_and_run_on_a_closed_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(build(&dir.path().join("never.json")));
        assert!(
            !dir.path().join("never.json").exists(),
            "build must do no I/O"
        );
        let (tx, rx) = channel("test", 1);
        drop(tx);
        build(&dir.path().join("out.json"))
            .run(
                rx,
                ExporterContext {
                    id: ComponentId::new("file"),
                },
            )
            .await
            .expect("ends cleanly");
    }

    #[tokio::test]
    async fn acknowledged_batches_are_in_the_file_as_otlp_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/out.json");
        let (tx, rx) = channel("test", 4);
        let task = tokio::spawn(build(&path).run(
            rx,
            ExporterContext {
                id: ComponentId::new("file"),
            },
        ));
        let (traces, traces_ack) = batch_with_ack(sample_traces(2, 3));
        let (metrics, metrics_ack) = batch_with_ack(sample_metrics(1));
        tx.send(traces).await.expect("open");
        tx.send(metrics).await.expect("open");
        assert_eq!(traces_ack.wait().await.outcome, Outcome::Delivered);
        assert_eq!(metrics_ack.wait().await.outcome, Outcome::Delivered);
        // Acknowledged means already in the file, before the exporter stops.
        let text = std::fs::read_to_string(&path).expect("file exists");
        let first: ExportTraceServiceRequest =
            serde_json::from_str(text.lines().next().expect("a line")).expect("OTLP/JSON");
        assert_eq!(first, sample_traces(2, 3));
        assert!(
            text.lines()
                .next()
                .expect("line")
                .contains("\"traceId\":\"00000000000000010000000000000001\"")
        );
        assert_eq!(text.lines().count(), 2);
        drop(tx);
        task.await.expect("joins").expect("ok");
    }

    /// A file whose `fail`th write stops halfway through the line with ENOSPC, as a full disk does.
    struct FailsHalfway {
        file: tokio::fs::File,
        writes: usize,
        fail: usize,
    }

    #[async_trait]
    impl LineFile for FailsHalfway {
        async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            self.writes += 1;
            if self.writes == self.fail {
                LineFile::write_all(&mut self.file, &bytes[..bytes.len() / 2]).await?;
                return Err(std::io::Error::from_raw_os_error(28));
            }
            LineFile::write_all(&mut self.file, bytes).await
        }
        async fn sync_data(&mut self) -> std::io::Result<()> {
            LineFile::sync_data(&mut self.file).await
        }
        async fn set_len(&mut self, len: u64) -> std::io::Result<()> {
            LineFile::set_len(&mut self.file, len).await
        }
    }

    #[tokio::test]
    async fn a_write_that_fails_halfway_leaves_no_partial_line_and_is_answered_retryable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .expect("open");
        let failing = FailsHalfway {
            file,
            writes: 0,
            fail: 2,
        };
        let (tx, rx) = channel("test", 4);
        let id = ComponentId::new("file");
        let task = tokio::spawn(async move {
            write_batches(rx, Lines::new(failing, 0), &id, "out.json").await
        });
        let mut outcomes = Vec::new();
        for spans in 1..=3 {
            let (batch, ack) = batch_with_ack(sample_traces(1, spans));
            tx.send(batch).await.expect("open");
            outcomes.push(ack.wait().await.outcome);
        }
        drop(tx);
        task.await.expect("joins");
        assert_eq!(outcomes[0], Outcome::Delivered);
        assert!(
            matches!(&outcomes[1], Outcome::Retryable { reason, .. } if reason.contains("out.json"))
        );
        assert_eq!(outcomes[2], Outcome::Delivered);
        let text = std::fs::read_to_string(&path).expect("file exists");
        let lines: Vec<ExportTraceServiceRequest> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is whole OTLP/JSON"))
            .collect();
        assert_eq!(
            lines,
            vec![sample_traces(1, 1), sample_traces(1, 3)],
            "the acknowledged batches, and only them"
        );
    }

    #[tokio::test]
    async fn a_partial_last_line_left_by_a_crash_is_cut_at_start_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        let whole = serde_json::to_string(&sample_traces(1, 1)).expect("json") + "\n";
        std::fs::write(&path, format!("{whole}{{\"resourceSpans\":[{{")).expect("write");
        let (tx, rx) = channel("test", 1);
        let task = tokio::spawn(build(&path).run(
            rx,
            ExporterContext {
                id: ComponentId::new("file"),
            },
        ));
        let (batch, ack) = batch_with_ack(sample_traces(1, 2));
        tx.send(batch).await.expect("open");
        assert_eq!(ack.wait().await.outcome, Outcome::Delivered);
        drop(tx);
        task.await.expect("joins").expect("ok");
        let text = std::fs::read_to_string(&path).expect("file");
        let lines: Vec<ExportTraceServiceRequest> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is whole OTLP/JSON"))
            .collect();
        assert_eq!(lines, vec![sample_traces(1, 1), sample_traces(1, 2)]);
    }

    #[tokio::test]
    async fn an_unwritable_path_stops_the_exporter_with_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, b"x").expect("write");
        let (_tx, rx) = channel("test", 1);
        let err = build(&blocker.join("out.json"))
            .run(
                rx,
                ExporterContext {
                    id: ComponentId::new("file"),
                },
            )
            .await
            .expect_err("a file is not a directory");
        assert!(err.to_string().contains("opening"), "{err}");
    }
}
