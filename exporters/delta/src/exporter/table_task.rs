//! One table's task: the commit window, the gates of numbered sources, and the commit that resolves a window's
//! acknowledgements.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use otlake_core::telemetry::record_export;
use otlake_core::{AckSet, Batch, ComponentId, Outcome, Signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::error::DeltaError;
use crate::sink::{CommitOutcome, TableSink};

/// How long a client should wait before retrying after a failed commit.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Test-only seam for the supervision tests: a batch of exactly this many items panics the table task, as
/// a bug would.
#[cfg(test)]
pub(super) const PANIC_ON_ITEMS: usize = 4_321;

/// Test-only seam for the head-of-line test: a batch of exactly this many items makes the table task signal
/// [`STALLED`] and wait for a permit of [`RELEASE_STALL`], as a slow object store would.
#[cfg(test)]
pub(super) const STALL_ON_ITEMS: usize = 4_322;
#[cfg(test)]
pub(super) static STALLED: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);
#[cfg(test)]
pub(super) static RELEASE_STALL: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

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
    /// Per numbered source (a write-ahead log, a file journal): its first sequence in the window. The commit
    /// records each source's last one as its `txn` version, so a replay skips what is already in the table.
    first_of_source: BTreeMap<Arc<str>, u64>,
}

impl Window {
    fn new() -> Self {
        Window {
            acks: Vec::new(),
            items: 0,
            bytes: 0,
            opened: None,
            first_of_source: BTreeMap::new(),
        }
    }

    fn take(&mut self) -> (Vec<AckSet>, usize) {
        let items = self.items;
        self.items = 0;
        self.bytes = 0;
        self.opened = None;
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
    // Per numbered source: after a failed window, the first sequence it held of that source. Later batches of
    // the source are refused until it sends that one again, so its commits stay in sequence order and none is
    // skipped as committed; or until the source shows it no longer holds it (a write-ahead log dropped it as
    // damaged), so the table never waits forever.
    let mut gates: HashMap<Arc<str>, u64> = HashMap::new();
    loop {
        let deadline = window.opened.map(|t| t + limits.max_latency);
        let next = tokio::select! {
            batch = rx.recv() => batch,
            () = sleep_until(deadline) => {
                close_gates(&mut gates, commit(&mut sink, &mut window, &exporter, signal).await);
                continue;
            }
        };
        let Some(batch) = next else { break };
        #[cfg(test)]
        if batch.payload.item_count() == PANIC_ON_ITEMS {
            panic!("test: a table task panics");
        }
        #[cfg(test)]
        if batch.payload.item_count() == STALL_ON_ITEMS {
            STALLED.add_permits(1);
            if let Ok(permit) = RELEASE_STALL.acquire().await {
                permit.forget();
            }
        }
        let bytes = batch.payload.encoded_len();
        let source = batch.meta.source().cloned();
        if let Some(position) = &source {
            // The log dropped the gate's entry on purpose (damaged on disk): it will never come again.
            if gates
                .get(&position.app_id)
                .is_some_and(|&first| position.first_undelivered.is_some_and(|low| low > first))
            {
                gates.remove(&position.app_id);
            }
            match gates.get(&position.app_id) {
                Some(&first) if position.sequence > first => {
                    batch.acks.resolve(Outcome::Retryable {
                        reason: "an earlier batch of this source is being sent again first".into(),
                        retry_after: Some(RETRY_AFTER),
                    });
                    continue;
                }
                Some(_) => {
                    gates.remove(&position.app_id);
                }
                None => {}
            }
        }
        let appended = match &source {
            Some(position) => {
                sink.append_positioned(&position.app_id, position.sequence, &batch.payload)
                    .await
            }
            None => sink.append(&batch.payload).await.map(Some),
        };
        match appended {
            // A replayed batch the table already holds (committed before a crash): nothing to add.
            Ok(None) => batch.acks.resolve(Outcome::Delivered),
            Ok(Some(items)) => {
                window.acks.push(batch.acks);
                window.items += items;
                window.bytes += bytes;
                window.opened.get_or_insert_with(Instant::now);
                if let Some(position) = &source {
                    window
                        .first_of_source
                        .entry(Arc::clone(&position.app_id))
                        .or_insert(position.sequence);
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
                // A refused batch is not sent again, so it cannot reopen its source's gate.
                let mut failed = std::mem::take(&mut window.first_of_source);
                if let Some(position) = source.filter(|_| e.is_retryable()) {
                    failed.entry(position.app_id).or_insert(position.sequence);
                }
                close_gates(&mut gates, failed);
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
            close_gates(
                &mut gates,
                commit(&mut sink, &mut window, &exporter, signal).await,
            );
        }
    }
    commit(&mut sink, &mut window, &exporter, signal).await;
}

/// Remembers, per source, the first sequence of a failed window (the lowest, if several failed).
fn close_gates(gates: &mut HashMap<Arc<str>, u64>, failed: BTreeMap<Arc<str>, u64>) {
    for (app_id, first) in failed {
        let gate = gates.entry(app_id).or_insert(first);
        *gate = (*gate).min(first);
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

/// Commits the window; returns the first sequence of each source in it if it failed (see `table_task`'s
/// gates).
async fn commit(
    sink: &mut TableSink,
    window: &mut Window,
    exporter: &ComponentId,
    signal: Signal,
) -> BTreeMap<Arc<str>, u64> {
    let first_of_source = std::mem::take(&mut window.first_of_source);
    let (acks, items) = window.take();
    if acks.is_empty() && sink.window_rows() == 0 {
        return BTreeMap::new();
    }
    let outcome = match sink.commit().await {
        Ok(CommitOutcome::Committed {
            table_version,
            rows,
        }) => {
            debug!(exporter = %exporter, table = sink.name(), table_version, rows, "Committed.");
            Outcome::Delivered
        }
        // Only an empty window (batches without items) commits nothing; they are delivered as they are.
        Ok(CommitOutcome::Empty) => Outcome::Delivered,
        Ok(CommitOutcome::AlreadyCommitted { app_id, committed }) => {
            // An earlier commit of unknown outcome did land: the source sends the window again and its entries
            // are then skipped as committed.
            debug!(exporter = %exporter, table = sink.name(), app_id, committed,
                "The window's entries are in the table already.");
            Outcome::retryable("an earlier attempt of this commit is in the table")
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
    if failed {
        first_of_source
    } else {
        BTreeMap::new()
    }
}
