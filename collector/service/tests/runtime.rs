//! The runtime with real channels and tasks: fan-out acknowledgements, shutdown drain, the grace deadline, a
//! receiver ending the run. Test components are defined here: a receiver that sends what the test gives it (and,
//! with `{stop_with: N}`, ends the run with exit code N once the test stops giving), an exporter that resolves
//! with a configured outcome (or never finishes), and a processor that holds everything until flushed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use otlake_core::test_util::sample_traces;
use otlake_core::{
    Ack, AckReceiver, AckSet, Batch, BatchReceiver, ComponentId, ConfigError, Exporter,
    ExporterContext, ExporterFactory, Factory, Outcome, Processor, ProcessorFactory, Receiver,
    ReceiverContext, ReceiverFactory, Signal,
};
use otlake_service::{Config, Registry, RunError, Stopped};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

type Inbox = Arc<Mutex<Option<mpsc::Receiver<Batch>>>>;

/// A receiver whose requests come from the test through a channel.
struct TestReceiverFactory(Inbox);
struct TestReceiver(mpsc::Receiver<Batch>, Option<u8>);

impl Factory for TestReceiverFactory {
    // Test components read their settings straight from the section.
    type Config = Value;
    fn type_name(&self) -> &'static str {
        "test_in"
    }
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }
    fn description(&self) -> &'static str {
        "test"
    }
}
impl ReceiverFactory for TestReceiverFactory {
    fn build(&self, _: &ComponentId, config: Value) -> Result<Box<dyn Receiver>, ConfigError> {
        let rx = self.0.lock().expect("lock").take().expect("built once");
        let stop_with = config["stop_with"]
            .as_u64()
            .map(|code| u8::try_from(code).expect("an exit code"));
        Ok(Box::new(TestReceiver(rx, stop_with)))
    }
}
#[async_trait]
impl Receiver for TestReceiver {
    async fn run(mut self: Box<Self>, cx: ReceiverContext) -> otlake_core::Result<()> {
        loop {
            tokio::select! {
                _ = cx.shutdown.cancelled() => return Ok(()),
                next = self.0.recv() => match next {
                    Some(batch) => { cx.outputs[&batch.signal()].send(batch).await; }
                    None => {
                        match self.1 {
                            Some(code) => cx.stop.request(code),
                            None => cx.shutdown.cancelled().await,
                        }
                        return Ok(());
                    }
                },
            }
        }
    }
}

/// An exporter resolving with the outcome named in its config (`delivered`, `retryable`, `hang`).
struct TestExporterFactory;
struct TestExporter(String);
impl Factory for TestExporterFactory {
    // Test components read their settings straight from the section.
    type Config = Value;
    fn type_name(&self) -> &'static str {
        "test_out"
    }
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces]
    }
    fn description(&self) -> &'static str {
        "test"
    }
}
impl ExporterFactory for TestExporterFactory {
    fn build(
        &self,
        _: &ComponentId,
        config: Value,
        _: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError> {
        Ok(Box::new(TestExporter(
            config["outcome"].as_str().unwrap_or("delivered").to_owned(),
        )))
    }
}
#[async_trait]
impl Exporter for TestExporter {
    async fn run(
        self: Box<Self>,
        mut input: BatchReceiver,
        _: ExporterContext,
    ) -> otlake_core::Result<()> {
        let mut held = Vec::new();
        while let Some(batch) = input.recv().await {
            match self.0.as_str() {
                "retryable" => batch.acks.resolve(Outcome::retryable("test says retry")),
                "hang" => held.push(batch),
                _ => batch.acks.resolve(Outcome::Delivered),
            }
        }
        if self.0 == "hang" {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// A processor that holds every batch until it is flushed (like a batch processor with an endless timeout),
/// or, with `{when_idle: true}`, until the pipeline's input runs dry.
struct HoldFactory;
struct Hold(Vec<Batch>, bool);
impl Factory for HoldFactory {
    // Test components read their settings straight from the section.
    type Config = Value;
    fn type_name(&self) -> &'static str {
        "hold"
    }
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }
    fn description(&self) -> &'static str {
        "test"
    }
}
impl ProcessorFactory for HoldFactory {
    fn build(
        &self,
        _: &ComponentId,
        config: &Value,
        _: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        let when_idle = config["when_idle"].as_bool().unwrap_or(false);
        Ok(Box::new(Hold(Vec::new(), when_idle)))
    }
}
impl Processor for Hold {
    fn process(&mut self, batch: Batch, _: &mut Vec<Batch>) {
        self.0.push(batch);
    }
    fn flush(&mut self, out: &mut Vec<Batch>) {
        out.append(&mut self.0);
    }
    fn wants_idle(&self) -> bool {
        self.1
    }
    fn on_idle(&mut self, out: &mut Vec<Batch>) {
        out.append(&mut self.0);
    }
}

struct Harness {
    requests: mpsc::Sender<Batch>,
    stop: Option<oneshot::Sender<()>>,
    daemon: tokio::task::JoinHandle<Result<Stopped, RunError>>,
    /// What the next reload reads, and where to ask for one.
    file: Arc<Mutex<String>>,
    reload: mpsc::Sender<String>,
}

impl Harness {
    fn start(yaml: &str) -> Harness {
        let file = Arc::new(Mutex::new(yaml.to_owned()));
        let (reload, reload_requests) = mpsc::channel(1);
        let reloads = otlake_service::Reloads {
            load: Box::new({
                let file = Arc::clone(&file);
                move || Config::parse(&file.lock().expect("lock"))
            }),
            requests: reload_requests,
        };
        let (requests, inbox) = mpsc::channel(16);
        let registry = Registry::new()
            .with_receiver(TestReceiverFactory(Arc::new(Mutex::new(Some(inbox)))))
            .with_processor(HoldFactory)
            .with_exporter(TestExporterFactory);
        let config = Config::parse(yaml).expect("valid yaml");
        let (stop, stopped) = oneshot::channel::<()>();
        let daemon = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            otlake_service::run_reloading(config, &registry, shutdown, |_| {}, Some(reloads)).await
        });
        Harness {
            requests,
            stop: Some(stop),
            daemon,
            file,
            reload,
        }
    }

    /// Replaces the file's text and asks for a reload (applied once the daemon is ready).
    async fn reload(&self, yaml: &str) {
        *self.file.lock().expect("lock") = yaml.to_owned();
        self.reload
            .send("test".into())
            .await
            .expect("daemon running");
    }

    async fn send(&self) -> AckReceiver {
        let (ack, rx) = Ack::new();
        let batch = Batch::new(sample_traces(1, 3).into(), AckSet::single(ack));
        self.requests.send(batch).await.expect("receiver running");
        rx
    }

    async fn stop(mut self) -> Result<Stopped, RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.daemon.await.expect("joins")
    }
}

const TELEMETRY_OFF: &str =
    "  telemetry:\n    metrics: {level: none}\n    health: {endpoint: \"\"}\n";

#[tokio::test]
async fn fan_out_succeeds_only_when_every_exporter_delivers() {
    let yaml = format!(
        "receivers: {{test_in: }}\nexporters:\n  test_out/a: {{outcome: delivered}}\n  test_out/b: {{outcome: retryable}}\n  test_out/c: {{outcome: delivered}}\nservice:\n  pipelines:\n    traces/both_good: {{receivers: [test_in], exporters: [test_out/a, test_out/c]}}\n{TELEMETRY_OFF}"
    );
    let h = Harness::start(&yaml);
    assert_eq!(h.send().await.wait().await.outcome, Outcome::Delivered);
    h.stop().await.expect("clean stop");

    let yaml = format!(
        "receivers: {{test_in: }}\nexporters:\n  test_out/a: {{outcome: delivered}}\n  test_out/b: {{outcome: retryable}}\nservice:\n  pipelines:\n    traces: {{receivers: [test_in], exporters: [test_out/a]}}\n    traces/second: {{receivers: [test_in], exporters: [test_out/b]}}\n{TELEMETRY_OFF}"
    );
    let h = Harness::start(&yaml);
    let verdict = h.send().await.wait().await;
    assert!(
        matches!(verdict.outcome, Outcome::Retryable { .. }),
        "{verdict:?}"
    );
    h.stop().await.expect("clean stop");

    // One pipeline fanning out to a delivering and a failing exporter: the shared batch's verdict is the worst.
    let yaml = format!(
        "receivers: {{test_in: }}\nexporters:\n  test_out/a: {{outcome: delivered}}\n  test_out/b: {{outcome: retryable}}\nservice:\n  pipelines:\n    traces: {{receivers: [test_in], exporters: [test_out/a, test_out/b]}}\n{TELEMETRY_OFF}"
    );
    let h = Harness::start(&yaml);
    let verdict = h.send().await.wait().await;
    assert!(
        matches!(verdict.outcome, Outcome::Retryable { .. }),
        "{verdict:?}"
    );
    h.stop().await.expect("clean stop");
}

#[tokio::test]
async fn shutdown_flushes_held_data_to_the_exporter_before_exiting() {
    let yaml = format!(
        "receivers: {{test_in: }}\nprocessors: {{hold: }}\nexporters: {{test_out: }}\nservice:\n  pipelines:\n    traces: {{receivers: [test_in], processors: [hold], exporters: [test_out]}}\n{TELEMETRY_OFF}"
    );
    let h = Harness::start(&yaml);
    let pending = h.send().await;
    // Held by the processor: not answered until shutdown flushes it.
    let mut pending = Box::pin(pending.wait());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut pending)
            .await
            .is_err(),
        "answered before the held data was exported"
    );
    let stopped = h.stop();
    let (verdict, result) = tokio::join!(pending, stopped);
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(result.expect("clean stop"), Stopped::Requested);
}

#[tokio::test]
async fn a_receiver_ends_the_run_with_its_exit_code_after_the_pipelines_drain() {
    let yaml = format!(
        "receivers: {{test_in: {{stop_with: 3}}}}\nprocessors: {{hold: }}\nexporters: {{test_out: }}\nservice:\n  pipelines:\n    traces: {{receivers: [test_in], processors: [hold], exporters: [test_out]}}\n{TELEMETRY_OFF}"
    );
    let Harness {
        requests,
        stop: _never_sent,
        daemon,
        ..
    } = Harness::start(&yaml);
    let (ack, pending) = Ack::new();
    let batch = Batch::new(sample_traces(1, 3).into(), AckSet::single(ack));
    requests.send(batch).await.expect("receiver running");
    // The receiver's input ends: it asks to stop with 3. Nothing else stops the daemon.
    drop(requests);
    let (verdict, result) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(pending.wait(), daemon)
    })
    .await
    .expect("the run ends without a shutdown signal");
    // The held request was flushed and delivered before the run ended: the stop drains like a shutdown.
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(
        result
            .expect("joins")
            .expect("a clean stop, not a stage that ended early"),
        Stopped::ByReceiver { exit_code: 3 }
    );
}

#[tokio::test]
async fn a_processor_watching_for_idle_input_releases_held_data_without_a_timer() {
    let yaml = format!(
        "receivers: {{test_in: }}\nprocessors: {{hold: {{when_idle: true}}}}\nexporters: {{test_out: }}\nservice:\n  pipelines:\n    traces: {{receivers: [test_in], processors: [hold], exporters: [test_out]}}\n{TELEMETRY_OFF}"
    );
    let h = Harness::start(&yaml);
    // Nothing else arrives, so the pipeline tells the processor its input is idle and the data goes out: every
    // client is answered while the daemon keeps running (the bound only keeps a broken build from hanging).
    let first = h.send().await;
    let second = h.send().await;
    for pending in [first, second] {
        let verdict = tokio::time::timeout(Duration::from_secs(30), pending.wait())
            .await
            .expect("answered while running, without shutdown");
        assert_eq!(verdict.outcome, Outcome::Delivered);
    }
    h.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_stage_late_at_the_grace_deadline_is_reported_and_its_clients_answered_retryable() {
    let yaml = "receivers: {test_in: }\nexporters: {test_out: {outcome: hang}}\nservice:\n  pipelines:\n    traces: {receivers: [test_in], exporters: [test_out]}\n  telemetry:\n    shutdown_grace: 300ms\n    metrics: {level: none}\n    health: {endpoint: \"\"}\n";
    let h = Harness::start(yaml);
    let pending = h.send().await;
    let result = h.stop().await;
    match &result {
        Err(RunError::Late(names)) => assert_eq!(names, "exporter/test_out"),
        other => panic!("expected a late exporter, got {other:?}"),
    }
    assert!(matches!(
        pending.wait().await.outcome,
        Outcome::Retryable { .. }
    ));
}

#[tokio::test]
async fn run_refuses_an_invalid_config_with_the_validation_text() {
    let yaml = "receivers: {test_in: }\nexporters: {test_out: }\nservice:\n  pipelines:\n    logs: {receivers: [test_in], exporters: [test_out]}\n";
    let h = Harness::start(yaml);
    let err = h.daemon.await.expect("joins").expect_err("invalid");
    assert!(
        err.to_string()
            .contains("exporter `test_out` does not support logs (it supports traces)"),
        "{err}"
    );
}

#[tokio::test]
async fn with_a_write_ahead_log_a_request_is_delivered_once_logged_even_while_the_exporter_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "receivers: {{test_in: }}\nexporters:\n  test_out:\n    outcome: retryable\n    sending_queue: {{storage: wal, directory: {}}}\nservice:\n  pipelines:\n    traces: {{receivers: [test_in], exporters: [test_out]}}\n{TELEMETRY_OFF}",
        dir.path().display()
    );
    let h = Harness::start(&yaml);
    assert_eq!(h.send().await.wait().await.outcome, Outcome::Delivered);
    h.stop().await.expect("clean stop");
    let segments = std::fs::read_dir(dir.path().join("test_out"))
        .expect("the exporter's log directory")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "wal"))
        .count();
    assert!(segments >= 1, "the undelivered entry stays in the log");
}

#[tokio::test]
async fn write_ahead_log_settings_are_validated_with_their_path() {
    let yaml = "receivers: {test_in: }\nexporters:\n  test_out:\n    sending_queue: {storage: wal, max_bytes: 10, fsynk: true}\nservice:\n  pipelines:\n    traces: {receivers: [test_in], exporters: [test_out]}\n";
    let config = Config::parse(yaml).expect("yaml");
    let registry = Registry::new()
        .with_receiver(TestReceiverFactory(Arc::new(Mutex::new(None))))
        .with_exporter(TestExporterFactory);
    // The log's keys are checked by the service; any other key stays for the exporter to judge.
    let errors = otlake_service::validate(&config, &registry).expect_err("invalid");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "exporters.test_out.sending_queue.max_bytes");
    assert!(errors[0].line.is_some(), "{errors:?}");
}

/// The hold processor's pipeline into a delivering exporter; `{hold}` is the processor's section.
fn held_pipeline(hold: &str) -> String {
    format!(
        "receivers: {{test_in: }}\nprocessors: {{hold: {hold}}}\nexporters: {{test_out: }}\nservice:\n  pipelines:\n    traces: {{receivers: [test_in], processors: [hold], exporters: [test_out]}}\n{TELEMETRY_OFF}"
    )
}

#[tokio::test]
async fn a_reload_that_changes_a_processor_flushes_the_old_pipeline_and_keeps_the_receiver() {
    let h = Harness::start(&held_pipeline("{when_idle: false}"));
    let held = h.send().await;
    let mut held = Box::pin(held.wait());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut held)
            .await
            .is_err(),
        "the processor holds the request"
    );
    // The processor's section changes: its pipeline is replaced; the old one flushes what it holds into the
    // exporter, which answers the client while the daemon keeps running. (The test receiver can be built
    // only once: a rebuilt receiver would fail the run.)
    h.reload(&held_pipeline("{when_idle: true}")).await;
    let verdict = tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("answered at the reload, without shutdown");
    assert_eq!(verdict.outcome, Outcome::Delivered);
    // The new pipeline (releasing when idle) took over the same channel: a new request is answered too.
    let after = tokio::time::timeout(Duration::from_secs(30), h.send().await.wait())
        .await
        .expect("answered by the new pipeline");
    assert_eq!(after.outcome, Outcome::Delivered);
    assert_eq!(h.stop().await.expect("clean stop"), Stopped::Requested);
}

#[tokio::test]
async fn an_invalid_reload_changes_nothing() {
    let h = Harness::start(&held_pipeline("{}"));
    let held = h.send().await;
    let mut held = Box::pin(held.wait());
    // Unknown exporter type, then broken YAML: neither touches the running pipeline, which still holds the
    // request (a replaced pipeline would have flushed it).
    h.reload(&held_pipeline("{}").replace("test_out: }", "nope: }"))
        .await;
    h.reload("receivers: [unclosed\n").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut held)
            .await
            .is_err(),
        "an invalid reload flushed the pipeline"
    );
    let stopped = h.stop();
    let (verdict, result) = tokio::join!(held, stopped);
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(result.expect("clean stop"), Stopped::Requested);
}
