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
//! 1. open the log (blocking I/O off the reactor): recover, report any damaged tail, queue the intact entries
//!    not yet delivered, which go to the exporter first (replay);
//! 2. the writer takes every batch waiting at its input (group commit: one write and one `fdatasync` for all
//!    of them), then resolves their acknowledgements `Delivered`; a full log or an I/O error (disk full)
//!    resolves them `Retryable` and the stage keeps running;
//! 3. the dispatcher hands entries to the exporter in sequence order, each numbered with its sequence in the
//!    batch metadata ([`RequestMeta::wal_sequence`]) and carrying an acknowledgement of the stage's own, with
//!    at most `in_flight_bytes` outstanding; that acknowledgement holds the entry's share of the daemon's
//!    memory budget until the exporter answers, and the stage waits for answers when the budget is spent. A `Retryable` answer stops dispatching; once everything in flight
//!    has answered and a backoff has passed, every entry not delivered is sent again in order (go-back-N),
//!    which keeps an exporter's commits in sequence order (the Delta exporter relies on it);
//! 4. when the input closes (shutdown), nothing new is dispatched: the exporter's input is closed so it
//!    flushes, the stage waits for what is in flight, records the checkpoint and returns. What was not
//!    delivered stays in the log for the next start.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use otlake_core::batch::{BatchReceiver, BatchSender};
use otlake_core::memory::EXPANSION;
use otlake_core::telemetry::{WAL_BYTES, WAL_DAMAGED_BYTES, WAL_DROPPED, WAL_ENTRIES};
use otlake_core::{
    Ack, AckSet, Batch, BoxError, ComponentError, ComponentId, MemoryBudget, Outcome, Payload,
    RequestMeta, Reservation, Verdict,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::config::WalConfig;
use crate::entry;
use crate::error::WalError;
use crate::log::{Group, Location, Reader, Recovery, Wal, WalOptions};

/// Batches (client requests) written with one group commit at most.
const MAX_GROUP_BATCHES: usize = 512;
/// Encoded bytes written with one group commit at most.
const MAX_GROUP_BYTES: usize = 16 << 20;
/// Entries handed to the exporter and not yet answered, at most (also the exporter channel's capacity).
pub const MAX_IN_FLIGHT_ENTRIES: usize = 1024;
/// Encoded bytes of appended entries kept in memory for the dispatcher; beyond, they are read back from disk.
/// Kept entries also hold their decoded size in the daemon's memory budget, and are read back when it is spent.
const MEMORY_BUDGET: u64 = 16 << 20;
/// First and longest wait before sending again after the exporter answered retryable.
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the checkpoint is written and delivered segments deleted, at most.
const TRUNCATE_EVERY: Duration = Duration::from_secs(1);
/// What a client hears as `Retry-After` when the log cannot take its data.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The durable stage in front of one exporter. See the module docs.
pub struct WalStage {
    exporter: ComponentId,
    options: WalOptions,
    in_flight_bytes: u64,
}

/// One entry the writer appended, on its way to the dispatcher.
struct Appended {
    sequence: u64,
    location: Location,
    bytes: u64,
    /// The batch's payload, if the memory budget allowed keeping it (else it is read back from disk).
    payload: Option<Arc<Payload>>,
    /// The payload's share of the daemon's memory budget, while it is kept.
    reservation: Option<Reservation>,
    meta: Arc<RequestMeta>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting,
    InFlight,
    Done,
    Failed,
}

struct Pending {
    sequence: u64,
    location: Location,
    bytes: u64,
    payload: Option<Arc<Payload>>,
    meta: Option<Arc<RequestMeta>>,
    /// The payload counts against the writer's memory budget until first dispatched.
    in_budget: bool,
    /// The kept payload's share of the daemon's memory budget; handed to the exporter's acknowledgement.
    reservation: Option<Reservation>,
    state: State,
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
            exporter,
        }
    }

    /// The capacity the channel from this stage to the exporter needs so that dispatching never waits.
    pub fn output_capacity() -> usize {
        MAX_IN_FLIGHT_ENTRIES
    }

    /// Runs until `input` closes; see the module docs.
    pub async fn run(self, input: BatchReceiver, output: BatchSender) -> otlake_core::Result<()> {
        let options = self.options.clone();
        let opened = tokio::task::spawn_blocking(move || Wal::open(options)).await;
        let (wal, recovery) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => return Err(startup(&self.exporter, e)),
            Err(e) => return Err(startup(&self.exporter, e)),
        };
        let queue = report_recovery(&self.exporter, &wal, recovery);
        let reader = wal.reader();
        let first_undelivered = queue.front().map_or(wal.next_sequence(), |p| p.sequence);
        let (appended_tx, appended_rx) = mpsc::unbounded_channel();
        let (truncate_tx, truncate_rx) = watch::channel(first_undelivered);
        let cached = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            exporter: self.exporter.clone(),
            wal: Some(wal),
            cached: Arc::clone(&cached),
            failing: false,
        };
        let dispatcher = Dispatcher {
            exporter: self.exporter.clone(),
            queue,
            next: 0,
            in_flight: 0,
            in_flight_bytes: 0,
            max_in_flight_bytes: self.in_flight_bytes,
            answers: FuturesUnordered::new(),
            retry_at: None,
            backoff: BACKOFF_START,
            reader: Some(reader),
            cached,
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
            "Write-ahead log has a damaged tail (torn write or corruption); skipping it and keeping every entry before it.");
        metrics::counter!(WAL_DAMAGED_BYTES, "exporter" => exporter.to_string())
            .increment(damage.bytes_skipped);
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

/// Runs blocking log I/O off the reactor, handing the log there and back.
async fn with_wal<T: Send + 'static>(
    wal: Wal,
    f: impl FnOnce(&mut Wal) -> T + Send + 'static,
) -> Result<(Wal, T), ComponentError> {
    tokio::task::spawn_blocking(move || {
        let mut wal = wal;
        let out = f(&mut wal);
        (wal, out)
    })
    .await
    .map_err(|e| ComponentError::failed("write-ahead log task", e))
}

/// Appends incoming batches and applies truncation.
struct Writer {
    exporter: ComponentId,
    /// `None` only while a blocking call has it.
    wal: Option<Wal>,
    cached: Arc<AtomicU64>,
    /// Appends are failing (full, disk full): logged once when it starts and once when it ends.
    failing: bool,
}

impl Writer {
    async fn run(
        mut self,
        mut input: BatchReceiver,
        appended: mpsc::UnboundedSender<Appended>,
        mut truncate: watch::Receiver<u64>,
    ) -> otlake_core::Result<()> {
        let mut appended = Some(appended);
        let mut ticker = tokio::time::interval(TRUNCATE_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut applied = *truncate.borrow();
        let mut input_open = true;
        loop {
            tokio::select! {
                batch = input.recv(), if input_open => match batch {
                    Some(batch) => {
                        let mut batches = vec![batch];
                        let mut bytes = 0usize;
                        while batches.len() < MAX_GROUP_BATCHES && bytes < MAX_GROUP_BYTES {
                            match input.try_recv() {
                                Some(b) => {
                                    bytes += b.payload.encoded_len();
                                    batches.push(b);
                                }
                                None => break,
                            }
                        }
                        if let Some(tx) = &appended {
                            self.append(batches, tx).await?;
                        }
                    }
                    None => {
                        // Shutdown: the dispatcher stops once it sees the end of appended entries.
                        input_open = false;
                        appended = None;
                    }
                },
                changed = truncate.changed() => {
                    if changed.is_err() {
                        // The dispatcher is done: record the final checkpoint and stop.
                        let last = *truncate.borrow();
                        self.truncate(last).await?;
                        return Ok(());
                    }
                }
                _ = ticker.tick() => {
                    let wanted = *truncate.borrow();
                    if wanted > applied {
                        self.truncate(wanted).await?;
                        applied = wanted;
                    }
                }
            }
        }
    }

    async fn truncate(&mut self, first_undelivered: u64) -> otlake_core::Result<()> {
        let Some(wal) = self.wal.take() else {
            return Ok(());
        };
        let (wal, result) = with_wal(wal, move |wal| wal.truncate(first_undelivered)).await?;
        match result {
            Ok(removed) if removed > 0 => {
                debug!(exporter = %self.exporter, removed, first_undelivered, "Deleted delivered log segments.")
            }
            Ok(_) => {}
            Err(e) => {
                warn!(exporter = %self.exporter, error = %e, "Could not truncate the write-ahead log; will try again.")
            }
        }
        metrics::gauge!(WAL_BYTES, "exporter" => self.exporter.to_string())
            .set(wal.used_bytes() as f64);
        self.wal = Some(wal);
        Ok(())
    }

    async fn append(
        &mut self,
        batches: Vec<Batch>,
        appended: &mpsc::UnboundedSender<Appended>,
    ) -> otlake_core::Result<()> {
        let Some(wal) = self.wal.take() else {
            return Ok(());
        };
        // Nothing to keep for an empty request: it is delivered as it is.
        let (batches, empty): (Vec<Batch>, Vec<Batch>) = batches
            .into_iter()
            .partition(|b| b.payload.item_count() > 0);
        for batch in empty {
            batch.acks.resolve(Outcome::Delivered);
        }
        let shared: Vec<(Arc<Payload>, Arc<RequestMeta>)> = batches
            .iter()
            .map(|b| (Arc::clone(&b.payload), Arc::clone(&b.meta)))
            .collect();
        let (wal, result) = with_wal(wal, move |wal| {
            let mut group = Group::new();
            for (payload, meta) in &shared {
                group.push(|buf| entry::encode(payload, meta, buf));
            }
            wal.commit(group)
        })
        .await?;
        let used = wal.used_bytes();
        self.wal = Some(wal);
        metrics::gauge!(WAL_BYTES, "exporter" => self.exporter.to_string()).set(used as f64);
        match result {
            Ok(entries) => {
                if self.failing {
                    self.failing = false;
                    info!(exporter = %self.exporter, "The write-ahead log takes data again.");
                }
                for (entry, batch) in entries.into_iter().zip(batches) {
                    let bytes = u64::from(entry.location.body_len);
                    let reservation = (self.cached.load(Ordering::Relaxed) + bytes
                        <= MEMORY_BUDGET)
                        .then(|| MemoryBudget::global().try_reserve(bytes * EXPANSION))
                        .flatten();
                    let keep = reservation.is_some();
                    if keep {
                        self.cached.fetch_add(bytes, Ordering::Relaxed);
                    }
                    // The dispatcher only goes away after the input closed, never while appends happen.
                    let _ = appended.send(Appended {
                        sequence: entry.sequence,
                        location: entry.location,
                        bytes,
                        payload: keep.then(|| Arc::clone(&batch.payload)),
                        reservation,
                        meta: Arc::clone(&batch.meta),
                    });
                    // Durable in the log: that is the acknowledgement point.
                    batch.acks.resolve(Outcome::Delivered);
                }
            }
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    warn!(exporter = %self.exporter, error = %e,
                        "The write-ahead log cannot take data; clients are answered retryable until it can.");
                }
                let outcome = Outcome::Retryable {
                    reason: e.to_string(),
                    retry_after: Some(RETRY_AFTER),
                };
                for batch in batches {
                    batch.acks.resolve(outcome.clone());
                }
            }
        }
        Ok(())
    }
}

/// Hands entries to the exporter in order and tracks their answers.
struct Dispatcher {
    exporter: ComponentId,
    /// Entries not yet delivered, in sequence order.
    queue: VecDeque<Pending>,
    /// Index in `queue` of the next entry to consider for sending.
    next: usize,
    in_flight: usize,
    in_flight_bytes: u64,
    max_in_flight_bytes: u64,
    answers: FuturesUnordered<BoxFuture<'static, (u64, Verdict)>>,
    /// Set after a retryable answer: when to go back and send again (once nothing is in flight).
    retry_at: Option<Instant>,
    backoff: Duration,
    /// `None` only while a blocking read has it.
    reader: Option<Reader>,
    cached: Arc<AtomicU64>,
    /// Every sequence below this one is delivered.
    delivered_through: u64,
    truncate: watch::Sender<u64>,
}

impl Dispatcher {
    async fn run(
        mut self,
        mut appended: mpsc::UnboundedReceiver<Appended>,
        output: BatchSender,
    ) -> otlake_core::Result<()> {
        let mut output = Some(output);
        loop {
            if let Some(out) = &output
                && !self.dispatch(out).await
            {
                warn!(exporter = %self.exporter, "The exporter stopped; the write-ahead log keeps its entries for the next start.");
                output = None;
            }
            if output.is_none() && self.in_flight == 0 {
                break;
            }
            let retry_at = self.retry_at;
            tokio::select! {
                Some((sequence, verdict)) = self.answers.next(), if self.in_flight > 0 => {
                    self.answered(sequence, verdict);
                }
                received = appended.recv(), if output.is_some() => match received {
                    Some(entry) => self.queue.push_back(Pending {
                        sequence: entry.sequence,
                        location: entry.location,
                        bytes: entry.bytes,
                        in_budget: entry.payload.is_some(),
                        reservation: entry.reservation,
                        payload: entry.payload,
                        meta: Some(entry.meta),
                        state: State::Waiting,
                    }),
                    None => {
                        // Shutdown: close the exporter's input so it flushes; wait for what is in flight.
                        output = None;
                    }
                },
                () = sleep_until(retry_at), if retry_at.is_some() && self.in_flight == 0 => {
                    self.go_back();
                }
            }
        }
        self.publish();
        let left = self.queue.len();
        if left > 0 {
            info!(exporter = %self.exporter, entries = left, "Stopping with entries in the write-ahead log; they are sent at the next start.");
        }
        Ok(())
    }

    /// Sends what the in-flight limits allow. Returns false if the exporter is gone.
    async fn dispatch(&mut self, output: &BatchSender) -> bool {
        while self.retry_at.is_none()
            && self.next < self.queue.len()
            && self.in_flight < MAX_IN_FLIGHT_ENTRIES
            && (self.in_flight == 0 || self.in_flight_bytes < self.max_in_flight_bytes)
        {
            let index = self.next;
            if self.queue[index].state != State::Waiting {
                self.next += 1;
                continue;
            }
            // What the exporter will hold counts in the daemon's memory budget until it answers. When the
            // budget is spent, wait for answers; with nothing in flight, send anyway so the log always drains.
            let reservation = match self.queue[index].reservation.take() {
                Some(kept) => Some(kept),
                None => {
                    let wanted = self.queue[index].bytes * EXPANSION;
                    match MemoryBudget::global().try_reserve(wanted) {
                        Some(reserved) => Some(reserved),
                        None if self.in_flight > 0 => return true,
                        None => None,
                    }
                }
            };
            self.next += 1;
            let Some((payload, meta)) = self.load(index).await else {
                continue;
            };
            let entry = &mut self.queue[index];
            let (ack, receiver) = Ack::new();
            if let Some(reservation) = reservation {
                ack.hold(reservation);
            }
            let batch = Batch {
                payload,
                acks: AckSet::single(ack),
                meta: Arc::new((*meta).clone().with_wal_sequence(entry.sequence)),
            };
            // Only the exporter holds the payload now; a resend after a retryable answer reads it back.
            entry.payload = None;
            entry.meta = None;
            entry.state = State::InFlight;
            self.in_flight += 1;
            self.in_flight_bytes += entry.bytes;
            let sequence = entry.sequence;
            self.answers
                .push(Box::pin(async move { (sequence, receiver.wait().await) }));
            if output.send(batch).await.is_err() {
                return false;
            }
        }
        true
    }

    /// The payload of entry `index`: from memory, or read back from the log.
    async fn load(&mut self, index: usize) -> Option<(Arc<Payload>, Arc<RequestMeta>)> {
        let entry = &mut self.queue[index];
        if entry.in_budget {
            // First dispatch of an entry the writer kept in memory: its share of the budget is released.
            entry.in_budget = false;
            self.cached.fetch_sub(entry.bytes, Ordering::Relaxed);
        }
        if let (Some(payload), Some(meta)) = (entry.payload.clone(), entry.meta.clone()) {
            return Some((payload, meta));
        }
        let (sequence, location) = (entry.sequence, entry.location);
        let mut reader = self.reader.take()?;
        let read = tokio::task::spawn_blocking(move || {
            let body = reader.read(sequence, location);
            (reader, body)
        })
        .await;
        let body = match read {
            Ok((reader, body)) => {
                self.reader = Some(reader);
                body
            }
            Err(e) => Err(WalError::Corrupt {
                path: Default::default(),
                offset: location.offset,
                reason: format!("read task failed: {e}"),
            }),
        };
        let decoded = body
            .map_err(|e| e.to_string())
            .and_then(|body| entry::decode(&body).map_err(|e| e.to_string()));
        match decoded {
            Ok((payload, meta)) => Some((Arc::new(payload), Arc::new(meta))),
            Err(reason) => {
                error!(exporter = %self.exporter, sequence, reason = %reason,
                    "A write-ahead log entry cannot be read back; dropping it.");
                metrics::counter!(WAL_DROPPED, "exporter" => self.exporter.to_string())
                    .increment(1);
                self.queue[index].state = State::Done;
                self.pop_done();
                None
            }
        }
    }

    fn answered(&mut self, sequence: u64, verdict: Verdict) {
        self.in_flight -= 1;
        let Ok(index) = self.queue.binary_search_by_key(&sequence, |p| p.sequence) else {
            return;
        };
        let entry = &mut self.queue[index];
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(entry.bytes);
        match verdict.outcome {
            Outcome::Delivered => {
                entry.state = State::Done;
                self.backoff = BACKOFF_START;
            }
            Outcome::Rejected { reason } => {
                error!(exporter = %self.exporter, sequence, reason = %reason,
                    "The destination refused a logged entry for good; dropping it from the write-ahead log.");
                metrics::counter!(WAL_DROPPED, "exporter" => self.exporter.to_string())
                    .increment(1);
                entry.state = State::Done;
            }
            Outcome::Retryable {
                reason,
                retry_after,
            } => {
                entry.state = State::Failed;
                if self.retry_at.is_none() {
                    let wait = retry_after
                        .unwrap_or_default()
                        .max(self.backoff)
                        .min(BACKOFF_MAX);
                    debug!(exporter = %self.exporter, sequence, reason = %reason, wait = ?wait,
                        "Exporter answered retryable; sending again from the first undelivered entry.");
                    self.retry_at = Some(Instant::now() + wait);
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        self.pop_done();
    }

    /// Drops delivered entries from the front and tells the writer how far the log may be truncated.
    fn pop_done(&mut self) {
        let mut popped = 0;
        while self.queue.front().is_some_and(|p| p.state == State::Done) {
            if let Some(p) = self.queue.pop_front() {
                self.delivered_through = p.sequence + 1;
            }
            popped += 1;
        }
        if popped > 0 {
            self.next = self.next.saturating_sub(popped);
            self.publish();
        }
    }

    fn publish(&self) {
        let first_undelivered = self
            .queue
            .front()
            .map_or(self.delivered_through, |p| p.sequence);
        self.truncate.send_if_modified(|current| {
            let advance = first_undelivered > *current;
            if advance {
                *current = first_undelivered;
            }
            advance
        });
        metrics::gauge!(WAL_ENTRIES, "exporter" => self.exporter.to_string())
            .set(self.queue.len() as f64);
    }

    /// After a retryable answer and once nothing is in flight: send every undelivered entry again, in order.
    fn go_back(&mut self) {
        self.retry_at = None;
        let mut first = None;
        for (i, entry) in self.queue.iter_mut().enumerate() {
            if entry.state == State::Failed {
                entry.state = State::Waiting;
                first.get_or_insert(i);
            }
        }
        if let Some(first) = first {
            self.next = self.next.min(first);
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
