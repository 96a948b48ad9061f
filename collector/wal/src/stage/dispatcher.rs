//! The dispatcher half of the stage: hands entries to the exporter in sequence order, tracks their
//! answers, goes back and resends after a retryable one.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use otlake_core::batch::BatchSender;
use otlake_core::memory::EXPANSION;
use otlake_core::telemetry::{WAL_DROPPED, WAL_ENTRIES, WAL_IO_ERRORS};
use otlake_core::{
    Ack, AckSet, Batch, ComponentId, MemoryBudget, Outcome, Payload, RequestMeta, SourcePosition,
    Verdict,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::entry;
use crate::error::WalError;
use crate::log::Reader;

use super::handoff::*;

/// First and longest wait before sending again after the exporter answered retryable.
pub(super) const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What became of reading one entry for dispatch.
enum Load {
    Ready(Arc<Payload>, Arc<RequestMeta>),
    /// Damaged on disk and dropped (counted, logged).
    Dropped,
    /// Not readable for now (an I/O error): kept, read again after a backoff.
    Unreadable,
}

/// Hands entries to the exporter in order and tracks their answers.
pub(super) struct Dispatcher {
    pub(super) exporter: ComponentId,
    /// The log's identity: the app id of every entry's source position.
    pub(super) identity: Arc<str>,
    /// Entries not yet delivered, in sequence order.
    pub(super) queue: VecDeque<Pending>,
    /// Index in `queue` of the next entry to consider for sending.
    pub(super) next: usize,
    pub(super) in_flight: usize,
    pub(super) in_flight_bytes: u64,
    pub(super) max_in_flight_bytes: u64,
    pub(super) answers: FuturesUnordered<BoxFuture<'static, (u64, Verdict)>>,
    /// Set after a retryable answer: when to go back and send again (once nothing is in flight).
    pub(super) retry_at: Option<Instant>,
    pub(super) backoff: Duration,
    /// `None` only while a blocking read has it (or after that read's task died: then a new one is opened).
    pub(super) reader: Option<Reader>,
    /// The log's directory, for a new reader.
    pub(super) log_dir: PathBuf,
    pub(super) cached: Arc<AtomicU64>,
    /// Undelivered entries (the queue's length), shared with the writer, which bounds it.
    pub(super) entries: Arc<AtomicU64>,
    /// Every sequence below this one is delivered.
    pub(super) delivered_through: u64,
    pub(super) truncate: watch::Sender<u64>,
}

impl Dispatcher {
    pub(super) async fn run(
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
            let (payload, meta) = match self.load(index).await {
                Load::Ready(payload, meta) => (payload, meta),
                Load::Dropped => continue,
                Load::Unreadable => return true,
            };
            // Entries before `index` in the queue are all undelivered, so the front is the log's first one.
            let first_undelivered = self.queue.front().map_or(0, |p| p.sequence);
            let entry = &mut self.queue[index];
            let (ack, receiver) = Ack::new();
            if let Some(reservation) = reservation {
                ack.hold(reservation);
            }
            let batch = Batch {
                payload,
                acks: AckSet::single(ack),
                meta: Arc::new((*meta).clone().with_source(SourcePosition {
                    app_id: Arc::clone(&self.identity),
                    sequence: entry.sequence,
                    first_undelivered: Some(first_undelivered),
                })),
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
    async fn load(&mut self, index: usize) -> Load {
        let entry = &mut self.queue[index];
        if entry.in_budget {
            // First dispatch of an entry the writer kept in memory: its share of the budget is released.
            entry.in_budget = false;
            self.cached.fetch_sub(entry.bytes, Ordering::Relaxed);
        }
        if let (Some(payload), Some(meta)) = (entry.payload.clone(), entry.meta.clone()) {
            return Load::Ready(payload, meta);
        }
        let (sequence, location) = (entry.sequence, entry.location);
        let reader = self
            .reader
            .take()
            .unwrap_or_else(|| Reader::new(self.log_dir.clone()));
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            let body = reader.read(sequence, location);
            (reader, body)
        })
        .await;
        let body = match read {
            Ok((reader, body)) => {
                self.reader = Some(reader);
                body
            }
            // The read task died (a panic, the runtime stopping): the entry is still on disk. The next read
            // opens a fresh reader.
            Err(e) => return self.unreadable(index, format!("read task failed: {e}")),
        };
        let reason = match body {
            Ok(body) => match entry::decode(&body) {
                Ok((payload, meta)) => return Load::Ready(Arc::new(payload), Arc::new(meta)),
                Err(e) => e.to_string(),
            },
            // Descriptor exhaustion, EIO, a segment out of reach for a while: keep the entry and try again.
            Err(e @ WalError::Io { .. }) => return self.unreadable(index, e.to_string()),
            // Checksum, sequence or framing mismatch: these bytes will never read back right.
            Err(e) => e.to_string(),
        };
        error!(exporter = %self.exporter, sequence, reason = %reason,
            "A write-ahead log entry is damaged on disk; dropping it.");
        metrics::counter!(WAL_DROPPED, "exporter" => self.exporter.to_string()).increment(1);
        self.queue[index].state = State::Done;
        self.pop_done();
        Load::Dropped
    }

    /// Entry `index` could not be read back for now: it stays first in line and is read again after a backoff
    /// (the same go-back as after a retryable answer, so order is kept).
    fn unreadable(&mut self, index: usize, reason: String) -> Load {
        let sequence = self.queue[index].sequence;
        self.next = self.next.min(index);
        if self.retry_at.is_none() {
            let wait = self.backoff;
            warn!(exporter = %self.exporter, sequence, reason = %reason, wait = ?wait,
                "Cannot read a write-ahead log entry back; keeping it and trying again.");
            metrics::counter!(WAL_IO_ERRORS, "exporter" => self.exporter.to_string(), "operation" => "read_back")
                .increment(1);
            self.retry_at = Some(Instant::now() + wait);
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
        Load::Unreadable
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
            self.entries.fetch_sub(popped as u64, Ordering::Relaxed);
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
