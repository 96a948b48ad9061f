//! The `process` receiver with real Python children: one that logs, raises and exits (its exit code is what the
//! daemon is asked to exit with), and one that writes faster than delivery (held back, no line lost).

use std::collections::HashMap;
use std::time::Duration;

use otlake_core::batch::channel;
use otlake_core::proto::common::v1::any_value;
use otlake_core::{
    ComponentId, ExportRequest, Factory, Fanout, Outcome, ReceiverContext, ReceiverFactory, Signal,
};
use otlake_receiver_filelog::ProcessReceiverFactory;
use serde_json::json;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

const CHILD: &str = r#"
import logging, sys
logging.basicConfig(level=logging.INFO)
log = logging.getLogger("app")
for i in range(5):
    log.info("step %d", i)
print("plain stdout line", flush=True)
raise RuntimeError("boom")
"#;

#[tokio::test]
async fn a_python_child_is_captured_line_by_line_with_its_traceback_joined() {
    let factory = ProcessReceiverFactory;
    let config = factory
        .parse(&json!({"command": ["python3", "-c", CHILD], "passthrough": false, "force_flush_period": "100ms"}))
        .expect("valid");
    let id = ComponentId::new("process");
    let receiver = ReceiverFactory::build(&factory, &id, config).expect("builds");
    let (tx, mut rx) = channel("test", 4);
    let shutdown = CancellationToken::new();
    let stop = otlake_core::StopHandle::new();
    let cx = ReceiverContext {
        id,
        outputs: HashMap::from([(Signal::Logs, Fanout::new(vec![tx], Duration::from_secs(5)))]),
        shutdown: shutdown.clone(),
        stop: stop.clone(),
    };
    let task = tokio::spawn(receiver.run(cx));
    let mut records = Vec::new();
    let mut first = true;
    // The receiver returns once the child exited and every batch is delivered; the channel then closes.
    while let Ok(Some(batch)) = timeout(Duration::from_secs(20), rx.recv()).await {
        let ExportRequest::Logs(logs) = batch.payload.request().expect("decoded").clone() else {
            panic!("logs")
        };
        for rl in &logs.resource_logs {
            for sl in &rl.scope_logs {
                for r in &sl.log_records {
                    let text = |v: &Option<otlake_core::proto::common::v1::AnyValue>| match v
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                    {
                        Some(any_value::Value::StringValue(s)) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    let attrs: HashMap<String, String> = r
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(&kv.value)))
                        .collect();
                    records.push((text(&r.body), r.severity_text.clone(), attrs));
                }
            }
        }
        // The first batch fails once: it must come again, not be lost.
        if first {
            first = false;
            records.clear();
            batch
                .acks
                .resolve(Outcome::retryable("exporter restarting"));
        } else {
            batch.acks.resolve(Outcome::Delivered);
        }
    }
    timeout(Duration::from_secs(20), task)
        .await
        .expect("returns")
        .expect("joins")
        .expect("ok");
    // The child died of its uncaught exception: Python's exit code 1 is what the daemon is asked to exit with.
    assert_eq!(stop.requested(), Some(1));
    let bodies: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
    for i in 0..5 {
        assert!(bodies.contains(&format!("step {i}").as_str()), "{bodies:?}");
    }
    assert!(bodies.contains(&"plain stdout line"), "{bodies:?}");
    let error: Vec<_> = records.iter().filter(|r| r.1 == "ERROR").collect();
    assert_eq!(error.len(), 1, "{records:#?}");
    assert_eq!(error[0].2["exception.type"], "RuntimeError");
    assert_eq!(error[0].2["exception.message"], "boom");
    assert_eq!(error[0].2["log.iostream"], "stderr");
    assert_eq!(records.len(), 7, "{records:#?}");
}

#[tokio::test]
async fn a_child_writing_faster_than_delivery_is_held_back_on_its_pipe_and_loses_no_line() {
    const LINES: usize = 200_000;
    let factory = ProcessReceiverFactory;
    let script =
        format!("import sys\nfor i in range({LINES}):\n    sys.stdout.write(f'line {{i}}\\n')\n");
    let config = factory
        .parse(
            &json!({"command": ["python3", "-c", script], "passthrough": false, "operators": []}),
        )
        .expect("valid");
    let id = ComponentId::new("process");
    let receiver = ReceiverFactory::build(&factory, &id, config).expect("builds");
    // A pipeline with room for one batch, and an exporter that takes its time over each.
    let (tx, mut rx) = channel("test", 1);
    let cx = ReceiverContext {
        id,
        outputs: HashMap::from([(Signal::Logs, Fanout::new(vec![tx], Duration::from_secs(30)))]),
        shutdown: CancellationToken::new(),
        stop: otlake_core::StopHandle::new(),
    };
    let task = tokio::spawn(receiver.run(cx));
    let mut seen = vec![false; LINES];
    let mut batches = 0;
    while let Ok(Some(batch)) = timeout(Duration::from_secs(30), rx.recv()).await {
        batches += 1;
        let ExportRequest::Logs(logs) = batch.payload.request().expect("decoded").clone() else {
            panic!("logs")
        };
        for r in logs
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
        {
            let Some(any_value::Value::StringValue(body)) =
                r.body.as_ref().and_then(|v| v.value.clone())
            else {
                panic!("a string body: {r:?}")
            };
            let n: usize = body["line ".len()..].parse().expect("numbered");
            assert!(!seen[n], "line {n} twice");
            seen[n] = true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        batch.acks.resolve(Outcome::Delivered);
    }
    timeout(Duration::from_secs(30), task)
        .await
        .expect("returns")
        .expect("joins")
        .expect("ok");
    let missing: Vec<usize> = (0..LINES).filter(|&n| !seen[n]).take(5).collect();
    assert!(missing.is_empty(), "lines missing, e.g. {missing:?}");
    // Several batches: the child's output did not fit in one, so it waited on its pipe between them.
    assert!(batches > 2, "{batches} batches");
}
