//! [`FilelogReceiver`]: the loop that polls the files, sends batches, and moves checkpoints on verdicts.
//!
//! Lifecycle: `run` opens the checkpoint store (I/O starts here, not in `build`), then loops: apply the
//! verdicts that came back, save the checkpoints if they moved, poll the files (on a blocking thread) for as
//! many batches as there are free in-flight slots, send them. On shutdown it stops reading, lets go of its
//! pipelines (so they drain), waits a bounded time for the batches in flight, and saves the checkpoints a last
//! time: what was delivered is recorded, what was not is read again at the next start.
//!
//! Back-pressure, never drops: at most [`MAX_IN_FLIGHT`] batches are out at once, each holds its share of the
//! daemon's memory budget until its verdict, and a full pipeline or a spent budget pauses reading. The files
//! keep the data meanwhile; a batch that comes back undelivered is read again from its files.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use otlake_core::telemetry::{RECEIVER_ACCEPTED, RECEIVER_REFUSED};
use otlake_core::{
    Ack, AckSet, Batch, ComponentError, Fanout, MemoryBudget, Outcome, Payload, Receiver,
    ReceiverContext, Signal,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::checkpoint::CheckpointStore;
use crate::config::{FilelogConfig, Storage};
use crate::error::FilelogError;
use crate::tracker::{Limits, Prepared, Settings, Tracker};

/// Batches sent and not yet acknowledged, at most.
pub const MAX_IN_FLIGHT: usize = 8;
/// Entries in one batch, at most.
pub const MAX_BATCH_RECORDS: usize = 8192;
/// Text bytes in one batch, at most (about; the encoded request is a little larger).
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// How long a batch waits for room in a full pipeline before it counts as not delivered (and is read again).
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Pause before reading a file again after its batch was not delivered, when the verdict gives no delay.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long shutdown waits for the verdicts of batches in flight.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Tails files into the logs pipelines. See the module docs.
pub struct FilelogReceiver {
    config: FilelogConfig,
    settings: Settings,
    storage: Storage,
    budget: Arc<MemoryBudget>,
}

impl FilelogReceiver {
    pub fn new(config: FilelogConfig, settings: Settings, storage: Storage) -> Self {
        FilelogReceiver {
            config,
            settings,
            storage,
            budget: Arc::clone(MemoryBudget::global()),
        }
    }

    /// Holds batches against `budget` instead of the process-wide one (tests).
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>) -> Self {
        self.budget = budget;
        self
    }
}

/// A verdict on batch `id`.
struct Settled {
    id: u64,
    records: usize,
    outcome: Outcome,
}

/// The state of a running receiver.
struct Running {
    id: String,
    /// Locked by the blocking poll and, between polls, by the loop (never across an await).
    tracker: Arc<Mutex<Tracker>>,
    store: Option<CheckpointStore>,
    budget: Arc<MemoryBudget>,
    in_flight: usize,
    /// A prepared batch waiting for room in the memory budget.
    waiting: Option<Prepared>,
    verdicts: mpsc::UnboundedSender<Settled>,
    accepted: metrics::Counter,
    retried: metrics::Counter,
}

#[async_trait]
impl Receiver for FilelogReceiver {
    async fn run(self: Box<Self>, cx: ReceiverContext) -> otlake_core::Result<()> {
        let FilelogReceiver {
            config,
            settings,
            storage,
            budget,
        } = *self;
        let id = cx.id.to_string();
        let Some(fanout) = cx.outputs.get(&Signal::Logs).cloned() else {
            // Wired only into pipelines of other signals (the service should not allow it): nothing to do.
            warn!(receiver = %id, "The filelog receiver is in no logs pipeline; it reads nothing.");
            cx.shutdown.cancelled().await;
            return Ok(());
        };
        drop(cx.outputs);
        let fanout = fanout.with_queue_wait(QUEUE_WAIT);
        let startup = |e: FilelogError| ComponentError::startup(format!("receiver {id}"), e);
        let (store, saved) = match &storage {
            Storage::None => (None, Vec::new()),
            Storage::Directory(dir) => {
                let mut store = CheckpointStore::open(dir, &id).map_err(startup)?;
                let saved = store.load().map_err(startup)?;
                info!(receiver = %id, files = saved.len(), path = %store.path().display(), "Checkpoints loaded.");
                (Some(store), saved)
            }
        };
        let (verdicts, mut settled) = mpsc::unbounded_channel();
        let mut running = Running {
            tracker: Arc::new(Mutex::new(Tracker::new(settings, saved))),
            store,
            budget,
            in_flight: 0,
            waiting: None,
            verdicts,
            accepted: metrics::counter!(RECEIVER_ACCEPTED, "receiver" => id.clone(), "signal" => "logs"),
            retried: metrics::counter!(RECEIVER_REFUSED, "receiver" => id.clone(), "signal" => "logs",
                "reason" => "retryable"),
            id,
        };
        let poll_interval = config.poll_interval;
        let mut next_poll = Instant::now();
        loop {
            while let Ok(verdict) = settled.try_recv() {
                running.settle(verdict);
            }
            running.save().await;
            if cx.shutdown.is_cancelled() {
                break;
            }
            if running.waiting.is_some() {
                running.send_waiting(&fanout, &cx.shutdown).await;
            }
            if Instant::now() >= next_poll
                && running.waiting.is_none()
                && running.in_flight < MAX_IN_FLIGHT
            {
                let limits = Limits {
                    batches: MAX_IN_FLIGHT - running.in_flight,
                    records: MAX_BATCH_RECORDS,
                    bytes: MAX_BATCH_BYTES,
                };
                let prepared = running.poll(limits).await;
                // Every slot filled: there is more to read, so poll again as soon as one frees up.
                let busy = prepared.len() >= limits.batches;
                for batch in prepared {
                    if running.waiting.is_some() {
                        // The budget is spent: the rest goes back to its files.
                        running.give_back(batch);
                        continue;
                    }
                    running.waiting = Some(batch);
                    running.send_waiting(&fanout, &cx.shutdown).await;
                }
                next_poll = if busy {
                    Instant::now()
                } else {
                    Instant::now() + poll_interval
                };
            }
            let wake = if running.waiting.is_some() || running.in_flight >= MAX_IN_FLIGHT {
                // Waiting on a verdict (it frees a slot or memory); poll the budget now and then too.
                Instant::now() + poll_interval
            } else {
                next_poll
            };
            tokio::select! {
                () = cx.shutdown.cancelled() => {}
                verdict = settled.recv() => {
                    if let Some(verdict) = verdict {
                        running.settle(verdict);
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
            }
        }
        // Stop: what was never sent goes back to its files; the pipelines may drain once we let go of them.
        if let Some(batch) = running.waiting.take() {
            running.give_back(batch);
        }
        drop(fanout);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while running.in_flight > 0 {
            match tokio::time::timeout_at(deadline, settled.recv()).await {
                Ok(Some(verdict)) => running.settle(verdict),
                _ => break,
            }
        }
        if running.in_flight > 0 {
            warn!(receiver = %running.id, batches = running.in_flight,
                "Shutting down with batches unacknowledged; they will be read again at the next start.");
        }
        running.save().await;
        Ok(())
    }
}

impl Running {
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        // A panic while reading poisons the lock; the tracker's offsets are still consistent (each update is
        // a single assignment), so go on with them.
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the files on a blocking thread.
    async fn poll(&mut self, limits: Limits) -> Vec<Prepared> {
        let observed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let now = Instant::now().into_std();
        let tracker = Arc::clone(&self.tracker);
        let joined = tokio::task::spawn_blocking(move || {
            let mut tracker = tracker.lock().unwrap_or_else(|e| e.into_inner());
            tracker.poll(now, observed, limits)
        })
        .await;
        joined.unwrap_or_else(|e| {
            warn!(receiver = %self.id, error = %e, "Reading the files failed; will try again.");
            Vec::new()
        })
    }

    /// Sends the waiting batch if the memory budget has room for it.
    async fn send_waiting(
        &mut self,
        fanout: &Fanout,
        shutdown: &tokio_util::sync::CancellationToken,
    ) {
        let Some(prepared) = self.waiting.take() else {
            return;
        };
        // The request is held decoded: about twice its text in prost structs and strings.
        let Some(reservation) = self.budget.try_reserve(prepared.bytes as u64 * 2) else {
            debug!(receiver = %self.id, "Memory budget spent; reading pauses.");
            self.waiting = Some(prepared);
            return;
        };
        let Prepared {
            id,
            request,
            records,
            ..
        } = prepared;
        let (ack, verdict) = Ack::new();
        ack.hold(reservation);
        let batch = Batch::new(Payload::from(request), AckSet::single(ack));
        tokio::select! {
            // A refused send resolves the acknowledgement retryable itself; the verdict says so.
            _ = fanout.send(batch) => {}
            // Dropping the send drops the batch, and its acknowledgement resolves retryable.
            () = shutdown.cancelled() => {}
        }
        self.in_flight += 1;
        let verdicts = self.verdicts.clone();
        tokio::spawn(async move {
            let outcome = verdict.wait().await.outcome;
            // The receiver may have stopped waiting (shutdown timed out): nobody to tell.
            let _ = verdicts.send(Settled {
                id,
                records,
                outcome,
            });
        });
    }

    /// A prepared batch that will not be sent: its files read it again.
    fn give_back(&mut self, prepared: Prepared) {
        let now = Instant::now().into_std();
        self.tracker()
            .settle(prepared.id, false, now, Duration::ZERO);
    }

    fn settle(&mut self, settled: Settled) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let now = Instant::now().into_std();
        let (delivered, retry_after) = match &settled.outcome {
            Outcome::Delivered => (true, Duration::ZERO),
            Outcome::Retryable {
                reason,
                retry_after,
            } => {
                debug!(receiver = %self.id, reason, "A batch was not delivered; its lines will be read again.");
                (false, retry_after.unwrap_or(RETRY_AFTER))
            }
            Outcome::Rejected { reason } => {
                // Refused for good by an exporter: reading it again would be refused again, forever.
                warn!(receiver = %self.id, reason, records = settled.records,
                    "An exporter refused a batch for good; its lines are skipped.");
                (true, Duration::ZERO)
            }
        };
        if delivered {
            self.accepted.increment(settled.records as u64);
        } else {
            self.retried.increment(settled.records as u64);
        }
        self.tracker()
            .settle(settled.id, delivered, now, retry_after);
    }

    /// Saves the checkpoints if they moved (on a blocking thread: it `fsync`s).
    async fn save(&mut self) {
        let Some(mut store) = self.store.take() else {
            return;
        };
        let Some(checkpoints) = self.tracker().changed_checkpoints() else {
            self.store = Some(store);
            return;
        };
        let saved = tokio::task::spawn_blocking(move || {
            let result = store.save(checkpoints);
            (store, result)
        })
        .await;
        match saved {
            Ok((store, result)) => {
                if let Err(e) = result {
                    warn!(receiver = %self.id, error = %e, "Saving checkpoints failed; will try again.");
                    self.tracker().unsaved();
                }
                self.store = Some(store);
            }
            Err(e) => {
                warn!(receiver = %self.id, error = %e, "Saving checkpoints failed; checkpoints stop.")
            }
        }
    }
}
