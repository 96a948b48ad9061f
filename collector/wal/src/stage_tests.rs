//! The stage with a real log directory and a hand-driven "exporter" (the receiving end of its output), so each
//! test decides what the destination answers.

use std::time::Duration;

use otlake_core::batch::channel;
use otlake_core::test_util::{batch_with_ack, sample_logs, sample_traces};
use otlake_core::{AckReceiver, Batch, Outcome, Payload};

use super::*;

struct Running {
    input: BatchSender,
    output: BatchReceiver,
    task: tokio::task::JoinHandle<otlake_core::Result<()>>,
}

fn config(dir: &std::path::Path) -> WalConfig {
    WalConfig {
        directory: dir.to_path_buf(),
        ..WalConfig::default()
    }
}

fn start(config: &WalConfig) -> Running {
    let (input, input_rx) = channel("wal/test", 64);
    let (output_tx, output) = channel("exporter/test", WalStage::output_capacity());
    let stage = WalStage::new("delta".parse().expect("id"), config);
    Running {
        input,
        output,
        task: tokio::spawn(stage.run(input_rx, output_tx)),
    }
}

async fn next(output: &mut BatchReceiver) -> Batch {
    tokio::time::timeout(Duration::from_secs(10), output.recv())
        .await
        .expect("the stage dispatches within 10 s")
        .expect("output open")
}

async fn send(input: &BatchSender, payload: impl Into<Payload>) -> AckReceiver {
    let (batch, ack) = batch_with_ack(payload);
    input.send(batch).await.expect("stage running");
    ack
}

async fn stop(running: Running) -> BatchReceiver {
    let Running {
        input,
        output,
        task,
    } = running;
    drop(input);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops within 10 s")
        .expect("task")
        .expect("clean stop");
    output
}

#[tokio::test]
async fn a_request_is_acknowledged_once_logged_and_reaches_the_exporter_numbered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = start(&config(dir.path()));
    let ack = send(&running.input, sample_traces(1, 3)).await;
    // Delivered before the exporter answered anything: the log is the durability point.
    assert_eq!(ack.wait().await.outcome, Outcome::Delivered);
    let batch = next(&mut running.output).await;
    assert_eq!(batch.item_count(), 3);
    let first = batch.meta.source().map(|p| p.sequence).expect("numbered");
    let identity = batch.meta.source().expect("numbered").app_id.clone();
    batch.acks.resolve(Outcome::Delivered);
    let ack = send(&running.input, sample_logs(1, 2)).await;
    assert_eq!(ack.wait().await.outcome, Outcome::Delivered);
    let batch = next(&mut running.output).await;
    assert_eq!(batch.meta.source().map(|p| p.sequence), Some(first + 1));
    batch.acks.resolve(Outcome::Delivered);
    stop(running).await;

    // Both delivered: nothing is replayed.
    let mut running = start(&config(dir.path()));
    let ack = send(&running.input, sample_logs(1, 1)).await;
    assert_eq!(ack.wait().await.outcome, Outcome::Delivered);
    let batch = next(&mut running.output).await;
    assert_eq!(
        batch.meta.source().map(|p| p.sequence),
        Some(first + 2),
        "no replay, numbering continues"
    );
    assert_eq!(
        batch.meta.source().map(|p| p.app_id.clone()),
        Some(identity),
        "the log's identity lives in its directory: the same after a restart"
    );
    batch.acks.resolve(Outcome::Delivered);
    stop(running).await;
}

#[tokio::test]
async fn what_the_exporter_did_not_deliver_is_replayed_at_the_next_start_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = start(&config(dir.path()));
    for n in 1..=3 {
        let ack = send(&running.input, sample_traces(1, n)).await;
        assert_eq!(ack.wait().await.outcome, Outcome::Delivered);
    }
    let first = next(&mut running.output).await;
    let first_sequence = first.meta.source().map(|p| p.sequence).expect("numbered");
    first.acks.resolve(Outcome::Delivered);
    // The other two reach the exporter but the process "dies" before they are delivered.
    let second = next(&mut running.output).await;
    let third = next(&mut running.output).await;
    drop(running.input);
    drop((second, third));
    tokio::time::timeout(Duration::from_secs(10), running.task)
        .await
        .expect("stops")
        .expect("task")
        .expect("clean");

    let mut running = start(&config(dir.path()));
    let replayed = [
        next(&mut running.output).await,
        next(&mut running.output).await,
    ];
    let sequences: Vec<Option<u64>> = replayed
        .iter()
        .map(|b| b.meta.source().map(|p| p.sequence))
        .collect();
    assert_eq!(
        sequences,
        [Some(first_sequence + 1), Some(first_sequence + 2)]
    );
    assert_eq!(replayed[0].item_count(), 2);
    assert_eq!(replayed[1].item_count(), 3);
    for batch in replayed {
        batch.acks.resolve(Outcome::Delivered);
    }
    stop(running).await;
}

#[tokio::test]
async fn a_retryable_answer_resends_every_undelivered_entry_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = start(&config(dir.path()));
    for n in 1..=3 {
        send(&running.input, sample_logs(1, n)).await.wait().await;
    }
    let batches = [
        next(&mut running.output).await,
        next(&mut running.output).await,
        next(&mut running.output).await,
    ];
    let sequences: Vec<u64> = batches
        .iter()
        .filter_map(|b| b.meta.source().map(|p| p.sequence))
        .collect();
    let [a, b, c] = batches;
    a.acks.resolve(Outcome::Delivered);
    b.acks.resolve(Outcome::retryable("destination down"));
    c.acks
        .resolve(Outcome::retryable("refused behind an earlier failure"));
    let again = [
        next(&mut running.output).await,
        next(&mut running.output).await,
    ];
    assert_eq!(
        again
            .iter()
            .map(|b| b.meta.source().map(|p| p.sequence))
            .collect::<Vec<_>>(),
        [Some(sequences[1]), Some(sequences[2])]
    );
    assert_eq!(again[0].item_count(), 2);
    for batch in again {
        batch.acks.resolve(Outcome::Delivered);
    }
    stop(running).await;
}

#[tokio::test]
async fn a_refused_entry_is_dropped_and_does_not_block_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = start(&config(dir.path()));
    send(&running.input, sample_logs(1, 1)).await.wait().await;
    send(&running.input, sample_logs(1, 2)).await.wait().await;
    next(&mut running.output)
        .await
        .acks
        .resolve(Outcome::rejected("schema says no"));
    next(&mut running.output)
        .await
        .acks
        .resolve(Outcome::Delivered);
    let mut output = stop(running).await;
    assert!(output.try_recv().is_none(), "nothing resent");
    let mut running = start(&config(dir.path()));
    send(&running.input, sample_logs(1, 3)).await.wait().await;
    assert_eq!(
        next(&mut running.output).await.item_count(),
        3,
        "no replay of either"
    );
}

#[tokio::test]
async fn a_full_log_answers_retryable_and_keeps_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WalConfig {
        max_bytes: 64 << 10,
        ..config(dir.path())
    };
    let mut running = start(&config);
    // Nothing is delivered, so the log fills up.
    let mut outcomes = Vec::new();
    for _ in 0..40 {
        outcomes.push(
            send(&running.input, sample_logs(4, 25))
                .await
                .wait()
                .await
                .outcome,
        );
    }
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Retryable { reason, .. } if reason.contains("full")))
        .count();
    assert!(refused > 0, "{outcomes:?}");
    assert!(matches!(outcomes[0], Outcome::Delivered));
    // Delivering what is logged frees it again.
    while let Some(batch) = running.output.try_recv() {
        batch.acks.resolve(Outcome::Delivered);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(batch) = running.output.try_recv() {
            batch.acks.resolve(Outcome::Delivered);
        }
        let outcome = send(&running.input, sample_logs(1, 1))
            .await
            .wait()
            .await
            .outcome;
        if outcome == Outcome::Delivered {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never took data again: {outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(running.output);
}

#[tokio::test]
async fn runs_with_an_input_that_closes_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(&config(dir.path()));
    stop(running).await;
    assert!(
        dir.path().join("delta").is_dir(),
        "the log lives in the exporter's subdirectory"
    );
}

#[tokio::test]
async fn an_unusable_directory_stops_startup_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").expect("write");
    let (_input, input_rx) = channel("wal/test", 1);
    let (output_tx, _output) = channel("exporter/test", 1);
    let err = WalStage::new("delta".parse().expect("id"), &config(&blocker))
        .run(input_rx, output_tx)
        .await
        .expect_err("cannot create the log");
    assert!(
        err.to_string()
            .contains("write-ahead log of exporter delta"),
        "{err}"
    );
}

/// The process-wide metrics recorder of this test binary (installed once); tests read counters of their own
/// exporter id only.
fn counters() -> &'static otlake_core::test_util::CountingRecorder {
    static COUNTERS: std::sync::OnceLock<&'static otlake_core::test_util::CountingRecorder> =
        std::sync::OnceLock::new();
    COUNTERS.get_or_init(|| {
        let recorder = Box::leak(Box::default());
        metrics::set_global_recorder(&*recorder).expect("the only recorder of this test binary");
        recorder
    })
}

/// Waits (at most 10 s) until counter `key` of [`counters`] has counted once.
async fn counted(key: &str) {
    let counters = counters();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while counters.get(key) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} never counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start_as(config: &WalConfig, exporter: &str) -> Running {
    let (input, input_rx) = channel("wal/test", 64);
    let (output_tx, output) = channel("exporter/test", WalStage::output_capacity());
    let stage = WalStage::new(exporter.parse().expect("id"), config);
    Running {
        input,
        output,
        task: tokio::spawn(stage.run(input_rx, output_tx)),
    }
}

fn segment_paths(log: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(log)
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect()
}

#[tokio::test]
async fn an_entry_that_cannot_be_read_back_for_a_while_is_kept_and_sent_once_it_can() {
    let counters = counters();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = start_as(&config(dir.path()), "delta/readback");
    for n in 1..=2 {
        let ack = send(&running.input, sample_logs(1, n)).await;
        assert_eq!(ack.wait().await.outcome, Outcome::Delivered);
    }
    let first = next(&mut running.output).await;
    let second = next(&mut running.output).await;
    let sequences = [
        first.meta.source().map(|p| p.sequence),
        second.meta.source().map(|p| p.sequence),
    ];
    // The segment goes out of reach (as with EMFILE or EIO: opening it fails) before the resend reads it back.
    let log = dir.path().join("delta_readback");
    let parked: Vec<_> = segment_paths(&log)
        .into_iter()
        .map(|path| {
            let away = path.with_extension("parked");
            std::fs::rename(&path, &away).expect("park");
            (path, away)
        })
        .collect();
    first.acks.resolve(Outcome::retryable("commit failed"));
    second
        .acks
        .resolve(Outcome::retryable("refused behind an earlier failure"));
    // The resend (after 0.5 s) tries and fails to read.
    counted("otlake_wal_io_errors_total{exporter=delta/readback,operation=read_back}").await;
    assert!(
        running.output.try_recv().is_none(),
        "nothing readable to send"
    );
    for (path, away) in parked {
        std::fs::rename(&away, &path).expect("restore");
    }
    let again = [
        next(&mut running.output).await,
        next(&mut running.output).await,
    ];
    assert_eq!(
        again
            .iter()
            .map(|b| (b.meta.source().map(|p| p.sequence), b.item_count()))
            .collect::<Vec<_>>(),
        [(sequences[0], 1), (sequences[1], 2)],
        "both entries, in order, once the log can be read again"
    );
    assert_eq!(
        again[1].meta.source().and_then(|p| p.first_undelivered),
        sequences[0],
        "the exporter learns the log still holds the first"
    );
    for batch in again {
        batch.acks.resolve(Outcome::Delivered);
    }
    assert_eq!(
        counters.get("otlake_wal_dropped_entries_total{exporter=delta/readback}"),
        0
    );
    stop(running).await;
}

#[tokio::test]
async fn a_request_larger_than_the_whole_log_is_refused_naming_the_limit_and_its_neighbours_logged()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WalConfig {
        max_bytes: 16 << 10,
        ..config(dir.path())
    };
    let mut running = start(&config);
    let huge = sample_logs(1, 3000);
    assert!(Payload::from(huge.clone()).encoded_len() > 16 << 10);
    // Both wait at the input together, so they are offered to the log as one group.
    let refused = send(&running.input, huge).await;
    let neighbour = send(&running.input, sample_logs(1, 1)).await;
    let outcome = refused.wait().await.outcome;
    assert!(
        matches!(&outcome, Outcome::Rejected { reason } if reason.contains("max_bytes of 16384")),
        "{outcome:?}"
    );
    assert_eq!(neighbour.wait().await.outcome, Outcome::Delivered);
    let batch = next(&mut running.output).await;
    assert_eq!(batch.item_count(), 1);
    batch.acks.resolve(Outcome::Delivered);
    stop(running).await;
}

#[tokio::test]
async fn a_failed_truncation_is_tried_again_while_the_log_is_idle() {
    counters();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut running = start_as(&config(dir.path()), "delta/truncate");
    let log = dir.path().join("delta_truncate");
    // The checkpoint cannot be written while a directory stands where its temporary file goes.
    let blocker = log.join("checkpoint.tmp");
    send(&running.input, sample_logs(1, 1)).await.wait().await;
    std::fs::create_dir(&blocker).expect("block");
    let batch = next(&mut running.output).await;
    let delivered = batch.meta.source().expect("numbered").sequence;
    batch.acks.resolve(Outcome::Delivered);
    // A truncation attempt (once a second) fails.
    counted("otlake_wal_io_errors_total{exporter=delta/truncate,operation=truncate}").await;
    assert!(!log.join("checkpoint").exists());
    std::fs::remove_dir(&blocker).expect("unblock");
    // Nothing else happens from here on: no request, no answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let checkpoint = loop {
        if let Ok(text) = std::fs::read_to_string(log.join("checkpoint")) {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the checkpoint was never written while idle"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(checkpoint.trim().parse::<u64>().ok(), Some(delivered + 1));
    stop(running).await;
}

#[tokio::test]
async fn the_log_holds_at_most_max_entries_undelivered_entries_and_answers_retryable_beyond() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, input_rx) = channel("wal/test", 64);
    let (output_tx, mut output) = channel("exporter/test", WalStage::output_capacity());
    let mut stage = WalStage::new("delta".parse().expect("id"), &config(dir.path()));
    stage.max_entries = 10;
    let task = tokio::spawn(stage.run(input_rx, output_tx));
    // The destination is down: nothing is delivered, so undelivered entries pile up, one per request.
    let mut outcomes = Vec::new();
    for _ in 0..15 {
        outcomes.push(send(&input, sample_logs(1, 1)).await.wait().await.outcome);
    }
    let logged = outcomes
        .iter()
        .filter(|o| **o == Outcome::Delivered)
        .count();
    assert_eq!(logged, 10, "{outcomes:?}");
    assert!(
        outcomes[10..].iter().all(
            |o| matches!(o, Outcome::Retryable { reason, .. } if reason.contains("10 entries"))
        ),
        "{outcomes:?}"
    );
    // Delivering frees room in the index: the log takes requests again.
    let mut held = Vec::new();
    while held.len() < 10 {
        held.push(next(&mut output).await);
    }
    for batch in held.drain(..5) {
        batch.acks.resolve(Outcome::Delivered);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let outcome = send(&input, sample_logs(1, 1)).await.wait().await.outcome;
        if outcome == Outcome::Delivered {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop((held, output));
    drop(input);
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}
