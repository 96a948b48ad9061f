//! The receiver against real files: a writer appends, rotates (rename and copy-truncate), deletes; a test
//! exporter at the end of the pipeline resolves each batch as the test says. Every wait is bounded; no test
//! asserts on timing.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use otlake_core::batch::channel;
use otlake_core::proto::common::v1::any_value;
use otlake_core::{
    BatchReceiver, ComponentId, ExportRequest, Factory, Fanout, Outcome, ReceiverContext,
    ReceiverFactory, Signal,
};
use otlake_receiver_filelog::FilelogReceiverFactory;
use otlake_receiver_filelog::receiver::MAX_IN_FLIGHT;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

/// Longest any test waits for something to arrive.
const PATIENCE: Duration = Duration::from_secs(20);

/// A running receiver and the end of its pipeline.
struct Tail {
    shutdown: CancellationToken,
    task: JoinHandle<otlake_core::Result<()>>,
    rx: BatchReceiver,
}

/// One log record as the exporter saw it.
#[derive(Clone, Debug)]
struct Seen {
    body: String,
    attributes: HashMap<String, String>,
}

fn text(value: &Option<otlake_core::proto::common::v1::AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn start(config: Value) -> Tail {
    let factory = FilelogReceiverFactory;
    let config = factory.parse(&config).expect("valid config");
    let id = ComponentId::new("filelog");
    let receiver = ReceiverFactory::build(&factory, &id, config).expect("builds");
    let (tx, rx) = channel("test", 2);
    let shutdown = CancellationToken::new();
    let cx = ReceiverContext {
        id,
        outputs: HashMap::from([(Signal::Logs, Fanout::new(vec![tx], Duration::from_secs(5)))]),
        shutdown: shutdown.clone(),
        stop: otlake_core::StopHandle::new(),
    };
    let task = tokio::spawn(receiver.run(cx));
    Tail { shutdown, task, rx }
}

impl Tail {
    /// Takes batches, resolving each with `outcome`, until `count` records arrived.
    async fn take(&mut self, count: usize, outcome: Outcome) -> Vec<Seen> {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        while seen.len() < count {
            let batch = match timeout(deadline - Instant::now(), self.rx.recv()).await {
                Ok(Some(batch)) => batch,
                _ => panic!("only {} of {count} records arrived: {seen:#?}", seen.len()),
            };
            seen.extend(records(&batch.payload.request().expect("decoded").clone()));
            batch.acks.resolve(outcome.clone());
        }
        seen
    }

    /// Asserts nothing more arrives within a short while (used after everything expected arrived).
    async fn nothing_more(&mut self) {
        if let Ok(Some(batch)) = timeout(Duration::from_millis(700), self.rx.recv()).await {
            let extra = records(&batch.payload.request().expect("decoded").clone());
            panic!("unexpected records: {extra:#?}");
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let Tail { task, mut rx, .. } = self;
        // Settle whatever is still in flight as not delivered, as a stopping exporter would.
        let drain = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                drop(b)
            }
        });
        timeout(PATIENCE, task)
            .await
            .expect("stops promptly")
            .expect("joins")
            .expect("no error");
        let _ = timeout(PATIENCE, drain).await;
    }
}

fn records(request: &ExportRequest) -> Vec<Seen> {
    let ExportRequest::Logs(logs) = request else {
        panic!("logs")
    };
    logs.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|r| Seen {
            body: text(&r.body),
            attributes: r
                .attributes
                .iter()
                .map(|kv| (kv.key.clone(), text(&kv.value)))
                .collect(),
        })
        .collect()
}

fn append(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    for line in lines {
        writeln!(file, "{line}").expect("write");
    }
}

/// Waits (bounded) until the receiver's checkpoint file names `file`: its first scan has seen it.
async fn wait_tracked(state: &Path, file: &str) {
    let deadline = Instant::now() + PATIENCE;
    let path = state.join("filelog-filelog.json");
    while !fs::read_to_string(&path).is_ok_and(|text| text.contains(file)) {
        assert!(Instant::now() < deadline, "{file} never tracked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn lines(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} line {i:05}")).collect()
}

fn bodies(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(|s| s.body.clone()).collect()
}

fn config(dir: &Path, extra: Value) -> Value {
    let mut config = json!({
        "include": [format!("{}/*.log*", dir.display())],
        "start_at": "beginning",
        "poll_interval": "20ms",
        "force_flush_period": "100ms",
        "fingerprint_size": "64",
    });
    if let (Some(c), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    config
}

#[tokio::test]
async fn reads_files_old_and_new_with_their_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.log");
    append(&app, lines("a", 0..3));
    let mut tail = start(config(dir.path(), json!({"include_file_path": true})));
    let seen = tail.take(3, Outcome::Delivered).await;
    assert_eq!(bodies(&seen), lines("a", 0..3));
    assert_eq!(seen[0].attributes["log.file.name"], "app.log");
    assert_eq!(
        seen[0].attributes["log.file.path"],
        app.display().to_string()
    );

    append(&app, lines("a", 3..5));
    append(&dir.path().join("later.log"), lines("b", 0..2));
    let mut seen = bodies(&tail.take(4, Outcome::Delivered).await);
    seen.sort();
    let mut expected = [lines("a", 3..5), lines("b", 0..2)].concat();
    expected.sort();
    assert_eq!(seen, expected);
    tail.nothing_more().await;
    tail.stop().await;
}

#[tokio::test]
async fn start_at_end_skips_what_was_there_but_reads_new_files_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    append(&dir.path().join("old.log"), lines("old", 0..3));
    let state = dir.path().join("state");
    let storage = state.display().to_string();
    let mut tail = start(config(
        dir.path(),
        json!({"start_at": "end", "storage": storage}),
    ));
    // Once the first scan has noted the end of old.log, the line after it must arrive, not the ones before.
    wait_tracked(&state, "old.log").await;
    append(&dir.path().join("old.log"), lines("old", 3..4));
    append(&dir.path().join("new.log"), lines("new", 0..2));
    let mut seen = bodies(&tail.take(3, Outcome::Delivered).await);
    seen.sort();
    assert_eq!(seen, [lines("new", 0..2), lines("old", 3..4)].concat());
    tail.stop().await;
}

#[tokio::test]
async fn rotation_by_rename_and_by_copy_truncate_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.log");
    let mut tail = start(config(dir.path(), json!({})));
    append(&app, lines("first", 0..50));
    let mut seen = bodies(&tail.take(50, Outcome::Delivered).await);

    // Rename rotation: lines written just before the rename are read from the renamed file.
    append(&app, lines("first", 50..60));
    fs::rename(&app, dir.path().join("app.log.1")).expect("rename");
    append(&app, lines("second", 0..20));
    seen.extend(bodies(&tail.take(30, Outcome::Delivered).await));

    // Copy-truncate: the copy keeps the old fingerprint (read on from the old offset, so the lines written
    // after the last read and before the copy arrive from it), the truncated file starts again. A scan between
    // the copy and the truncation sees two files with the same first bytes and reads only the original.
    append(&app, lines("second", 20..30));
    fs::copy(&app, dir.path().join("app.log.2")).expect("copy");
    tokio::time::sleep(Duration::from_millis(60)).await; // let a scan see both (not needed for correctness)
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&app)
        .expect("truncate");
    append(&app, lines("third", 0..10));
    seen.extend(bodies(&tail.take(20, Outcome::Delivered).await));
    tail.nothing_more().await;

    seen.sort();
    let mut expected = [
        lines("first", 0..60),
        lines("second", 0..30),
        lines("third", 0..10),
    ]
    .concat();
    expected.sort();
    assert_eq!(seen, expected);
    tail.stop().await;
}

#[tokio::test]
async fn a_deleted_file_is_read_to_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.log");
    append(&app, lines("a", 0..5));
    let mut tail = start(config(dir.path(), json!({})));
    let mut seen = bodies(&tail.take(5, Outcome::Delivered).await);
    // Written and deleted between two polls: read through the handle opened before.
    append(&app, lines("a", 5..8));
    fs::remove_file(&app).expect("delete");
    seen.extend(bodies(&tail.take(3, Outcome::Delivered).await));
    assert_eq!(seen, lines("a", 0..8));
    tail.stop().await;
}

#[tokio::test]
async fn an_undelivered_batch_is_read_again_and_checkpoints_follow_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dir.path().join("state");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let app = logs.join("app.log");
    append(&app, lines("a", 0..10));
    let cfg = config(&logs, json!({"storage": storage.display().to_string()}));

    let mut tail = start(cfg.clone());
    let refused = tail.take(10, Outcome::retryable("exporter down")).await;
    assert_eq!(bodies(&refused), lines("a", 0..10));
    let again = tail.take(10, Outcome::Delivered).await;
    assert_eq!(
        bodies(&again),
        lines("a", 0..10),
        "read again after the failure"
    );

    // Delivered: a restart does not read them again. Not delivered (in flight at the stop): it does.
    append(&app, lines("a", 10..15));
    let batch = timeout(PATIENCE, tail.rx.recv())
        .await
        .expect("arrives")
        .expect("batch");
    drop(batch); // never acknowledged
    tail.stop().await;
    let saved = fs::read_to_string(storage.join("filelog-filelog.json")).expect("checkpoint file");
    assert!(saved.contains("\"offset\""), "{saved}");

    let mut tail = start(cfg);
    let seen = tail.take(5, Outcome::Delivered).await;
    assert_eq!(bodies(&seen), lines("a", 10..15));
    tail.nothing_more().await;
    tail.stop().await;
}

#[tokio::test]
async fn a_slow_pipeline_pauses_reading_and_drops_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.log");
    // More than MAX_IN_FLIGHT batches' worth of lines.
    let total = 8192 * (MAX_IN_FLIGHT + 2);
    append(&app, lines("x", 0..total));
    let mut tail = start(config(dir.path(), json!({})));
    // Hold every batch unresolved: the receiver sends MAX_IN_FLIGHT and then waits for a verdict.
    let mut held = Vec::new();
    while held.len() < MAX_IN_FLIGHT {
        match timeout(PATIENCE, tail.rx.recv()).await {
            Ok(Some(batch)) => held.push(batch),
            _ => panic!("only {} batches arrived", held.len()),
        }
    }
    if let Ok(Some(_)) = timeout(Duration::from_millis(500), tail.rx.recv()).await {
        panic!("more than {MAX_IN_FLIGHT} batches in flight");
    }
    let mut seen: Vec<Seen> = held
        .iter()
        .flat_map(|b| records(&b.payload.request().expect("decoded").clone()))
        .collect();
    for batch in held {
        batch.acks.resolve(Outcome::Delivered);
    }
    let rest = total - seen.len();
    seen.extend(tail.take(rest, Outcome::Delivered).await);
    assert_eq!(bodies(&seen), lines("x", 0..total));
    tail.stop().await;
}

#[tokio::test]
async fn oversize_lines_invalid_utf8_and_a_last_line_without_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.log");
    let mut file = fs::File::create(&app).expect("create");
    file.write_all(b"fine\n").expect("write");
    file.write_all(&[b'z'; 300]).expect("write");
    file.write_all(b"\nbad \xff\xfe bytes\nno newline")
        .expect("write");
    drop(file);
    let mut tail = start(config(dir.path(), json!({"max_log_size": 100})));
    let seen = tail.take(4, Outcome::Delivered).await;
    assert_eq!(seen[0].body, "fine");
    assert_eq!(seen[1].body, "z".repeat(100));
    assert_eq!(seen[1].attributes["otlake.truncated"], "300");
    assert_eq!(seen[2].body, "bad \u{fffd}\u{fffd} bytes");
    assert_eq!(
        seen[3].body, "no newline",
        "emitted after force_flush_period"
    );
    tail.stop().await;
}

#[tokio::test]
async fn a_thousand_files_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..1000 {
        append(
            &dir.path().join(format!("f{i:04}.log")),
            [format!("file {i:04} says hello")],
        );
    }
    let mut tail = start(config(dir.path(), json!({"max_concurrent_files": 300})));
    let mut seen = bodies(&tail.take(1000, Outcome::Delivered).await);
    seen.sort();
    let expected: Vec<String> = (0..1000)
        .map(|i| format!("file {i:04} says hello"))
        .collect();
    assert_eq!(seen, expected);
    tail.nothing_more().await;
    tail.stop().await;
}

#[tokio::test]
async fn operators_run_per_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().join("app.log");
    append(
        &app,
        [
            "ERROR:app:request failed".to_owned(),
            "Traceback (most recent call last):".to_owned(),
            "  File \"app.py\", line 3, in handle".to_owned(),
            "ValueError: bad".to_owned(),
            "INFO:app:ok".to_owned(),
        ],
    );
    let mut tail = start(config(
        dir.path(),
        json!({"operators": [{"type": "python"}]}),
    ));
    let seen = tail.take(2, Outcome::Delivered).await;
    assert_eq!(seen[0].body, "request failed");
    assert_eq!(seen[0].attributes["exception.type"], "ValueError");
    assert_eq!(seen[1].body, "ok");
    tail.stop().await;
}

#[test]
fn the_example_configs_validate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/examples/filelog.yaml");
    let text = fs::read_to_string(&path).expect("configs/examples/filelog.yaml");
    let yaml: Value = serde_saphyr::from_str(&text).expect("YAML");
    let receivers = yaml["receivers"].as_object().expect("receivers");
    assert_eq!(receivers.len(), 3);
    for (id, section) in receivers {
        FilelogReceiverFactory
            .parse(section)
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/examples/process.yaml");
    let text = fs::read_to_string(&path).expect("configs/examples/process.yaml");
    let yaml: Value = serde_saphyr::from_str(&text).expect("YAML");
    otlake_receiver_filelog::ProcessReceiverFactory
        .parse(&yaml["receivers"]["process"])
        .expect("valid process section");
}

#[tokio::test]
async fn a_checkpoint_beats_start_at_end_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let app = logs.join("app.log");
    append(&app, lines("before", 0..3));
    let cfg = config(
        &logs,
        json!({"start_at": "end", "storage": dir.path().join("state").display().to_string()}),
    );
    let mut tail = start(cfg.clone());
    // The first scan notes the end of app.log; only what comes after it is read.
    wait_tracked(&dir.path().join("state"), "app.log").await;
    append(&app, lines("during", 0..2));
    assert_eq!(
        bodies(&tail.take(2, Outcome::Delivered).await),
        lines("during", 0..2)
    );
    tail.stop().await;

    // Written while otlake was down: the checkpoint, not `start_at: end`, says where to go on.
    append(&app, lines("while down", 0..3));
    let mut tail = start(cfg);
    assert_eq!(
        bodies(&tail.take(3, Outcome::Delivered).await),
        lines("while down", 0..3)
    );
    tail.nothing_more().await;
    tail.stop().await;
}

/// The next batch to reach the end of the pipeline (bounded wait).
async fn next_batch(tail: &mut Tail) -> otlake_core::Batch {
    timeout(PATIENCE, tail.rx.recv())
        .await
        .expect("a batch arrives")
        .expect("the pipeline is open")
}

#[tokio::test]
async fn a_batch_not_delivered_goes_again_under_its_own_number_also_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dir.path().join("state");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let app = logs.join("app.log");
    append(&app, lines("a", 0..10));
    let cfg = config(&logs, json!({"storage": storage.display().to_string()}));

    let mut tail = start(cfg.clone());
    let first = next_batch(&mut tail).await;
    let position = first.meta.source().cloned().expect("a numbered batch");
    let sent = records(first.payload.request().expect("decoded"));
    assert_eq!(bodies(&sent), lines("a", 0..10));
    first.acks.resolve(Outcome::retryable("exporter down"));
    // Lines written meanwhile do not join the batch sent again: it is the same batch.
    append(&app, lines("b", 0..3));
    let again = next_batch(&mut tail).await;
    assert_eq!(
        again.meta.source().map(|p| (&p.app_id, p.sequence)),
        Some((&position.app_id, position.sequence)),
        "the same number"
    );
    assert_eq!(
        bodies(&records(again.payload.request().expect("decoded"))),
        bodies(&sent)
    );
    // Not acknowledged when the receiver stops (as at a kill -9): the next start sends it again first, under
    // the same source and number, and then what came after it under higher numbers.
    drop(again);
    tail.stop().await;
    let mut tail = start(cfg.clone());
    let replayed = next_batch(&mut tail).await;
    let replayed_position = replayed.meta.source().cloned().expect("numbered");
    assert_eq!(
        (&replayed_position.app_id, replayed_position.sequence),
        (&position.app_id, position.sequence),
        "the same source and number after a restart"
    );
    assert_eq!(
        bodies(&records(replayed.payload.request().expect("decoded"))),
        bodies(&sent)
    );
    replayed.acks.resolve(Outcome::Delivered);
    let next = next_batch(&mut tail).await;
    let next_position = next.meta.source().cloned().expect("numbered");
    assert!(
        next_position.sequence > position.sequence,
        "{next_position:?}"
    );
    assert_eq!(
        bodies(&records(next.payload.request().expect("decoded"))),
        lines("b", 0..3)
    );
    next.acks.resolve(Outcome::Delivered);
    tail.nothing_more().await;
    tail.stop().await;

    // Everything delivered: a restart sends nothing again.
    let mut tail = start(cfg);
    tail.nothing_more().await;
    tail.stop().await;
}
