//! [`WalStage`]: the durable stage the service puts between the pipelines and an exporter.
//!
//! ```text
//!  pipelines ──> [input] ──> writer ──(group commit, fsync)──> log on disk ──> acks resolve Delivered
//!                               │ appended entries (payload kept in memory while the budget allows)
//!                               ▼
//!                          dispatcher ──> [output] ──> exporter ──> its own acks per entry
//!                               │   Delivered/Rejected: done; Retryable: go back and resend in order
//!                               └──> first undelivered sequence ──> writer: checkpoint + delete old segments
//! ```
//! Lifecycle of [`WalStage::run`]:
//! 1. open the log (blocking I/O off the reactor): recover, report any damaged bytes (the segment kept aside),
//!    queue the intact entries not yet delivered, which go to the exporter first (replay); then
//!    [`WalStage::opened`] resolves;
//! 2. the writer takes every batch waiting at its input (group commit: one write and one `fdatasync` for all
//!    of them), then resolves their acknowledgements `Delivered`; a full log or an I/O error (disk full)
//!    resolves them `Retryable` and the stage keeps running;
//! 3. the dispatcher hands entries to the exporter in sequence order, each with its position in the batch
//!    metadata ([`RequestMeta::source`]: the log's identity, kept in its directory, and the entry's sequence)
//!    and carrying an acknowledgement of the stage's own, with
//!    at most `in_flight_bytes` outstanding; that acknowledgement holds the entry's share of the daemon's
//!    memory budget until the exporter answers, and the stage waits for answers when the budget is spent. A `Retryable` answer stops dispatching; once everything in flight
//!    has answered and a backoff has passed, every entry not delivered is sent again in order (go-back-N),
//!    which keeps an exporter's commits in sequence order (the Delta exporter relies on it);
//! 4. when the input closes (shutdown), nothing new is dispatched: the exporter's input is closed so it
//!    flushes, the stage waits for what is in flight, records the checkpoint and returns. What was not
//!    delivered stays in the log for the next start.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures::stream::FuturesUnordered;
use otlake_core::batch::{BatchReceiver, BatchSender};
use otlake_core::telemetry::{WAL_BYTES, WAL_DAMAGED_BYTES};
use otlake_core::{BoxError, ComponentError, ComponentId};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info};

use crate::config::WalConfig;
use crate::identity;
use crate::log::{Recovery, Wal, WalOptions};

mod dispatcher;
mod handoff;
mod writer;

use dispatcher::{BACKOFF_START, Dispatcher};
pub use handoff::MAX_IN_FLIGHT_ENTRIES;
use handoff::{Pending, State};
use writer::Writer;

/// Undelivered entries one log holds at most. The stage keeps an index entry (~100 bytes) per undelivered entry in
/// memory, so this bounds that index at ~26 MB whatever `max_bytes` is: a log of tiny unbatched requests
/// answers retryable at this count before its bytes run out.
pub const MAX_ENTRIES: u64 = 256 << 10;

/// The durable stage in front of one exporter. See the module docs.
pub struct WalStage {
    exporter: ComponentId,
    options: WalOptions,
    in_flight_bytes: u64,
    /// Set once the log is open and its replay queued: the daemon reports itself ready only after that.
    opened: watch::Sender<bool>,
    /// Undelivered entries the log holds at most (see [`MAX_ENTRIES`]); settable by tests.
    pub(crate) max_entries: u64,
}

impl WalStage {
    /// A stage for exporter `exporter` with the log in `config.log_dir(exporter)`. No I/O until `run`.
    pub fn new(exporter: ComponentId, config: &WalConfig) -> Self {
        WalStage {
            options: WalOptions {
                dir: config.log_dir(&exporter),
                max_bytes: config.max_bytes,
                segment_bytes: config.effective_segment_size(),
                fsync: config.fsync,
            },
            in_flight_bytes: config.in_flight_bytes,
            max_entries: MAX_ENTRIES,
            exporter,
            opened: watch::Sender::new(false),
        }
    }

    /// Resolves `true` once `run` has opened the log (recovered, replay queued), `false` if it failed first.
    pub fn opened(&self) -> impl std::future::Future<Output = bool> + Send + 'static {
        let mut rx = self.opened.subscribe();
        async move { rx.wait_for(|open| *open).await.is_ok() }
    }

    /// The capacity the channel from this stage to the exporter needs so that dispatching never waits.
    pub fn output_capacity() -> usize {
        MAX_IN_FLIGHT_ENTRIES
    }

    /// Runs until `input` closes; see the module docs.
    pub async fn run(self, input: BatchReceiver, output: BatchSender) -> otlake_core::Result<()> {
        let options = self.options.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let fsync = options.fsync;
            let (wal, recovery) = Wal::open(options)?;
            // Read with the directory's lock held (Wal::open took it).
            let identity = identity::read_or_create(wal.dir(), fsync)?;
            Ok::<_, crate::WalError>((wal, recovery, identity))
        })
        .await;
        let (wal, recovery, identity) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => return Err(startup(&self.exporter, e)),
            Err(e) => return Err(startup(&self.exporter, e)),
        };
        let queue = report_recovery(&self.exporter, &wal, recovery);
        self.opened.send_replace(true);
        let reader = wal.reader();
        let first_undelivered = queue.front().map_or(wal.next_sequence(), |p| p.sequence);
        let (appended_tx, appended_rx) = mpsc::unbounded_channel();
        let (truncate_tx, truncate_rx) = watch::channel(first_undelivered);
        let cached = Arc::new(AtomicU64::new(0));
        let entries = Arc::new(AtomicU64::new(queue.len() as u64));
        let writer = Writer {
            exporter: self.exporter.clone(),
            wal: Some(wal),
            cached: Arc::clone(&cached),
            entries: Arc::clone(&entries),
            max_entries: self.max_entries,
            failing: false,
        };
        let dispatcher = Dispatcher {
            exporter: self.exporter.clone(),
            identity,
            queue,
            next: 0,
            in_flight: 0,
            in_flight_bytes: 0,
            max_in_flight_bytes: self.in_flight_bytes,
            answers: FuturesUnordered::new(),
            retry_at: None,
            backoff: BACKOFF_START,
            reader: Some(reader),
            log_dir: self.options.dir.clone(),
            cached,
            entries,
            delivered_through: first_undelivered,
            truncate: truncate_tx,
        };
        let (written, dispatched) = tokio::join!(
            writer.run(input, appended_tx, truncate_rx),
            dispatcher.run(appended_rx, output)
        );
        written.and(dispatched)
    }
}

fn startup(exporter: &ComponentId, e: impl Into<BoxError>) -> ComponentError {
    ComponentError::startup(format!("write-ahead log of exporter {exporter}"), e)
}

/// Logs what recovery found and turns its entries into the dispatcher's initial queue.
fn report_recovery(exporter: &ComponentId, wal: &Wal, recovery: Recovery) -> VecDeque<Pending> {
    for damage in &recovery.damage {
        error!(exporter = %exporter, segment = %damage.segment.display(), offset = damage.offset,
            bytes_skipped = damage.bytes_skipped, reason = %damage.reason,
            "Write-ahead log has damaged bytes (a damaged tail after a torn write, or corruption); skipping them and keeping every intact entry around them.");
        metrics::counter!(WAL_DAMAGED_BYTES, "exporter" => exporter.to_string())
            .increment(damage.bytes_skipped);
    }
    for aside in &recovery.quarantined {
        error!(exporter = %exporter, kept_at = %aside.display(),
            "A damaged write-ahead log segment was kept aside for inspection; delete it when done.");
    }
    if !recovery.entries.is_empty() {
        info!(exporter = %exporter, entries = recovery.entries.len(), bytes = wal.used_bytes(),
            dir = %wal.dir().display(), "Replaying the write-ahead log.");
    } else {
        debug!(exporter = %exporter, dir = %wal.dir().display(), "Write-ahead log opened empty.");
    }
    metrics::gauge!(WAL_BYTES, "exporter" => exporter.to_string()).set(wal.used_bytes() as f64);
    recovery
        .entries
        .into_iter()
        .map(|e| Pending {
            sequence: e.sequence,
            location: e.location,
            bytes: u64::from(e.location.body_len),
            payload: None,
            meta: None,
            in_budget: false,
            reservation: None,
            state: State::Waiting,
        })
        .collect()
}

#[cfg(test)]
#[path = "../stage_tests.rs"]
mod tests;
