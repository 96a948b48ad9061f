//! The `debug` exporter: writes what it receives to stderr, for people watching a pipeline.
//!
//! `verbosity` follows the Collector's: `basic` one summary line per batch, `normal` one line per item,
//! `detailed` every field (OTLP/JSON). It resolves acknowledgements `Delivered` once the lines are written:
//! stderr is as durable as this exporter gets, and nobody points production data only at `debug`.

use std::io::Write;

use async_trait::async_trait;
use otlake_core::proto::common::v1::{AnyValue, any_value};
use otlake_core::{
    BatchReceiver, ComponentId, ConfigError, ExportRequest, Exporter, ExporterContext,
    ExporterFactory, Factory, Outcome, Payload, PayloadDecodeError, Signal, telemetry,
};
use serde::Deserialize;

/// `exporters.debug:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    /// `basic` (default): a summary line per batch; `normal`: a line per item; `detailed`: every field.
    pub verbosity: Verbosity,
    /// Accepted for Collector compatibility; ignored (otlake never samples debug output).
    pub sampling_initial: Option<u64>,
    /// Accepted for Collector compatibility; ignored.
    pub sampling_thereafter: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    #[default]
    Basic,
    Normal,
    Detailed,
}

pub struct DebugExporterFactory;

impl Factory for DebugExporterFactory {
    type Config = DebugConfig;

    fn type_name(&self) -> &'static str {
        "debug"
    }
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }
    fn description(&self) -> &'static str {
        "writes a summary, one line per item, or every field to stderr"
    }
}

impl ExporterFactory for DebugExporterFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: DebugConfig,
        _signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError> {
        Ok(Box::new(DebugExporter {
            verbosity: config.verbosity,
            out: Box::new(std::io::stderr()),
        }))
    }
}

pub struct DebugExporter {
    verbosity: Verbosity,
    out: Box<dyn Write + Send>,
}

#[async_trait]
impl Exporter for DebugExporter {
    async fn run(
        mut self: Box<Self>,
        mut input: BatchReceiver,
        cx: ExporterContext,
    ) -> otlake_core::Result<()> {
        while let Some(batch) = input.recv().await {
            let outcome = match render(&cx.id, &batch.payload, self.verbosity) {
                Ok(text) => match self
                    .out
                    .write_all(text.as_bytes())
                    .and_then(|_| self.out.flush())
                {
                    Ok(()) => Outcome::Delivered,
                    Err(e) => Outcome::retryable(format!("debug exporter cannot write: {e}")),
                },
                Err(e) => Outcome::rejected(e.to_string()),
            };
            telemetry::record_export(&cx.id, batch.signal(), batch.item_count(), &outcome);
            batch.acks.resolve(outcome);
        }
        Ok(())
    }
}

/// The text for one batch. `basic` reads only counts and sizes, so a payload in wire form stays undecoded.
fn render(
    id: &ComponentId,
    payload: &Payload,
    verbosity: Verbosity,
) -> Result<String, PayloadDecodeError> {
    let signal = payload.signal();
    let mut text = format!(
        "{id}: {} {} ({} bytes)\n",
        payload.item_count(),
        signal.item_name(),
        payload.encoded_len()
    );
    match verbosity {
        Verbosity::Basic => {}
        Verbosity::Normal => text.push_str(&item_lines(payload.request()?)),
        Verbosity::Detailed => {
            let json = match payload.request()? {
                ExportRequest::Traces(r) => serde_json::to_string_pretty(r),
                ExportRequest::Logs(r) => serde_json::to_string_pretty(r),
                ExportRequest::Metrics(r) => serde_json::to_string_pretty(r),
            };
            text.push_str(&json.unwrap_or_else(|e| format!("<not printable: {e}>")));
            text.push('\n');
        }
    }
    Ok(text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn any_text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn item_lines(request: &ExportRequest) -> String {
    let mut lines = String::new();
    match request {
        ExportRequest::Traces(r) => {
            for span in r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
            {
                lines.push_str(&format!(
                    "  span {} trace={} id={} duration={}ns attributes={}\n",
                    span.name,
                    hex(&span.trace_id),
                    hex(&span.span_id),
                    span.end_time_unix_nano
                        .saturating_sub(span.start_time_unix_nano),
                    span.attributes.len()
                ));
            }
        }
        ExportRequest::Logs(r) => {
            for log in r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| &sl.log_records)
            {
                lines.push_str(&format!(
                    "  log {} {}\n",
                    log.severity_text,
                    any_text(&log.body)
                ));
            }
        }
        ExportRequest::Metrics(r) => {
            for m in r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
            {
                lines.push_str(&format!(
                    "  metric {} points={}\n",
                    m.name,
                    otlake_core::payload::data_point_count(m)
                ));
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::DynExporterFactory;
    use otlake_core::batch::channel;
    use otlake_core::test_util::{batch_with_ack, build_exporter, sample_logs, sample_traces};
    use serde_json::Value;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn config_accepts_collector_keys_and_refuses_others() {
        let f: &dyn DynExporterFactory = &DebugExporterFactory;
        assert!(
            f.validate(&serde_json::json!({"verbosity": "detailed", "sampling_initial": 5}))
                .is_ok()
        );
        assert!(f.validate(&Value::Null).is_ok());
        let err = f
            .validate(&serde_json::json!({"verbose": true}))
            .expect_err("unknown key");
        assert!(
            err[0].to_string().contains("unknown field `verbose`"),
            "{:?}",
            err
        );
        assert!(
            f.validate(&serde_json::json!({"verbosity": "loud"}))
                .is_err()
        );
    }

    #[tokio::test]
    async fn lifecycle_built_dropped_and_run_on_a_closed_input() {
        let id = ComponentId::new("debug");
        drop(build_exporter(&DebugExporterFactory, &Value::Null, &Signal::ALL).expect("builds"));
        let exporter =
            build_exporter(&DebugExporterFactory, &Value::Null, &Signal::ALL).expect("builds");
        let (tx, rx) = channel("test", 1);
        drop(tx);
        exporter
            .run(rx, ExporterContext { id })
            .await
            .expect("ends cleanly");
    }

    #[tokio::test]
    async fn writes_one_line_per_item_then_acknowledges() {
        let captured = Captured::default();
        let exporter = Box::new(DebugExporter {
            verbosity: Verbosity::Normal,
            out: Box::new(captured.clone()),
        });
        let (tx, rx) = channel("test", 4);
        let (traces, traces_ack) = batch_with_ack(sample_traces(1, 2));
        let (logs, logs_ack) = batch_with_ack(sample_logs(1, 1));
        tx.send(traces).await.expect("open");
        tx.send(logs).await.expect("open");
        drop(tx);
        exporter
            .run(
                rx,
                ExporterContext {
                    id: ComponentId::new("debug"),
                },
            )
            .await
            .expect("runs");
        assert_eq!(traces_ack.wait().await.outcome, Outcome::Delivered);
        assert_eq!(logs_ack.wait().await.outcome, Outcome::Delivered);
        let text = String::from_utf8(captured.0.lock().expect("ok").clone()).expect("utf8");
        assert!(text.contains("debug: 2 spans"), "{text}");
        assert!(
            text.contains("span span-1 trace=0000000000000001"),
            "{text}"
        );
        assert!(text.contains("log INFO log line 0-0"), "{text}");
    }
}
