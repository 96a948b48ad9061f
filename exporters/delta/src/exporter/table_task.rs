//! One table's task: the commit window, the write-ahead-log gate, and the commit that resolves a window's
//! acknowledgements.

use std::time::Duration;

use otlake_core::telemetry::record_export;
use otlake_core::{AckSet, Batch, ComponentId, Outcome, Signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, error, warn};

use crate::error::DeltaError;
use crate::sink::{CommitOutcome, TableSink};

/// How long a client should wait before retrying after a failed commit.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// When a table commits.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) max_rows: usize,
    pub(super) max_bytes: usize,
    pub(super) max_latency: Duration,
}

/// The commit window of one table: acknowledgements waiting for the next commit.
struct Window {
    acks: Vec<AckSet>,
    items: usize,
    bytes: usize,
    opened: Option<Instant>,
    /// With a write-ahead log in front: the first and last log sequence in the window. The commit uses the
    /// last as its `txn` version, so a replay skips what is already in the table.
    first_wal: Option<u64>,
    last_wal: Option<u64>,
}

impl Window {
    fn new() -> Self {
        Window {
            acks: Vec::new(),
            items: 0,
            bytes: 0,
            opened: None,
            first_wal: None,
            last_wal: None,
        }
    }

    fn take(&mut self) -> (Vec<AckSet>, usize) {
        let items = self.items;
        self.items = 0;
        self.bytes = 0;
        self.opened = None;
        self.first_wal = None;
        self.last_wal = None;
        (std::mem::take(&mut self.acks), items)
    }
}

fn resolve_all(acks: Vec<AckSet>, outcome: Outcome) {
    for set in acks {
        set.resolve(outcome.clone());
    }
}

/// Owns one table: appends batches, commits by size and time, resolves acknowledgements.
pub(super) async fn table_task(
    mut sink: TableSink,
    mut rx: mpsc::Receiver<Batch>,
    limits: Limits,
    exporter: ComponentId,
    signal: Signal,
) {
    let mut window = Window::new();
    // With a write-ahead log: after a failed window, the first log sequence it held. Later entries are refused
    // until the log sends that one again, so commits stay in sequence order and none is skipped as committed;
    // or until the log shows it no longer holds it (dropped as damaged), so the table never waits forever.
    let mut gate: Option<u64> = None;
    loop {
        let deadline = window.opened.map(|t| t + limits.max_latency);
        let next = tokio::select! {
            batch = rx.recv() => batch,
            () = sleep_until(deadline) => {
                close_gate(&mut gate, commit(&mut sink, &mut window, &exporter, signal).await);
                continue;
            }
        };
        let Some(batch) = next else { break };
        let bytes = batch.payload.encoded_len();
        let wal_sequence = batch.meta.wal_sequence();
        if let Some(sequence) = wal_sequence {
            // The log dropped the gate's entry on purpose (damaged on disk): it will never come again.
            if gate.is_some_and(|first| batch.meta.wal_first_undelivered() > Some(first)) {
                gate = None;
            }
            match gate {
                Some(first) if sequence > first => {
                    batch.acks.resolve(Outcome::Retryable {
                        reason: "an earlier write-ahead log entry of this table is being sent again first"
                            .into(),
                        retry_after: Some(RETRY_AFTER),
                    });
                    continue;
                }
                Some(_) => gate = None,
                None => {}
            }
        }
        let appended = match wal_sequence {
            Some(sequence) => sink.append_sequenced(sequence, &batch.payload).await,
            None => sink.append(&batch.payload).await.map(Some),
        };
        match appended {
            // A replayed log entry the table already holds (committed before a crash): nothing to add.
            Ok(None) => batch.acks.resolve(Outcome::Delivered),
            Ok(Some(items)) => {
                window.acks.push(batch.acks);
                window.items += items;
                window.bytes += bytes;
                window.opened.get_or_insert_with(Instant::now);
                if let Some(sequence) = wal_sequence {
                    window.first_wal.get_or_insert(sequence);
                    window.last_wal = Some(sequence);
                }
            }
            Err(e) => {
                // The whole window is gone: everyone in it must send again. This batch too, unless it is what
                // failed and would fail again (data that does not convert): then it is refused, or its client
                // would retry it forever and take every neighbour's window down with it each time.
                let outcome = retryable(&e);
                let own = if e.is_retryable() {
                    outcome.clone()
                } else {
                    Outcome::rejected(e.to_string())
                };
                // A refused log entry is not sent again, so it cannot reopen the gate.
                let own_sequence = wal_sequence.filter(|_| e.is_retryable());
                close_gate(&mut gate, window.first_wal.or(own_sequence));
                warn!(exporter = %exporter, table = sink.name(), error = %e,
                    "Writing to the Delta table failed; the batches of this commit window will be retried.");
                let (acks, items) = window.take();
                record_export(&exporter, signal, items, &outcome);
                record_export(&exporter, signal, batch.payload.item_count(), &own);
                resolve_all(acks, outcome);
                batch.acks.resolve(own);
                continue;
            }
        }
        if window.items >= limits.max_rows || window.bytes >= limits.max_bytes {
            close_gate(
                &mut gate,
                commit(&mut sink, &mut window, &exporter, signal).await,
            );
        }
    }
    commit(&mut sink, &mut window, &exporter, signal).await;
}

/// Remembers the first log sequence of a failed window (the lowest, if several failed).
fn close_gate(gate: &mut Option<u64>, failed_from: Option<u64>) {
    if let Some(first) = failed_from {
        *gate = Some(gate.map_or(first, |g| g.min(first)));
    }
}

fn retryable(e: &DeltaError) -> Outcome {
    Outcome::Retryable {
        reason: e.to_string(),
        retry_after: Some(RETRY_AFTER),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Commits the window; returns its first write-ahead log sequence if it failed (see `table_task`'s gate).
async fn commit(
    sink: &mut TableSink,
    window: &mut Window,
    exporter: &ComponentId,
    signal: Signal,
) -> Option<u64> {
    let (first_wal, last_wal) = (window.first_wal, window.last_wal);
    let (acks, items) = window.take();
    if acks.is_empty() && sink.window_rows() == 0 {
        return None;
    }
    // With a write-ahead log the transaction version is the log sequence of the window's last entry.
    let sequence = last_wal.unwrap_or_else(|| sink.next_sequence());
    let outcome = match sink.commit(sequence).await {
        Ok(CommitOutcome::Committed {
            table_version,
            rows,
        }) => {
            debug!(exporter = %exporter, table = sink.name(), table_version, rows, sequence, "Committed.");
            Outcome::Delivered
        }
        // Only an empty window (batches without items) commits nothing; they are delivered as they are.
        Ok(CommitOutcome::Empty) => Outcome::Delivered,
        Ok(CommitOutcome::AlreadyCommitted { committed }) => {
            // Another process wrote with our writer id: our rows are not in the table.
            error!(exporter = %exporter, table = sink.name(), sequence, committed,
                "Another writer uses this writer_id; give each writer its own.");
            let _ = sink.refresh().await;
            Outcome::retryable("another writer uses the same writer_id")
        }
        Err(e) => {
            warn!(exporter = %exporter, table = sink.name(), error = %e, items,
                "Delta commit failed; the batches will be retried.");
            retryable(&e)
        }
    };
    let failed = !matches!(outcome, Outcome::Delivered);
    record_export(exporter, signal, items, &outcome);
    resolve_all(acks, outcome);
    if failed { first_wal } else { None }
}
