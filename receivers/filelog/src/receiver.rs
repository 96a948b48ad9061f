//! [`FilelogReceiver`]: the loop that polls the files, sends batches, and moves checkpoints on verdicts.
//!
//! Lifecycle: `run` opens the checkpoint store and the intent journal (I/O starts here, not in `build`), takes
//! up the batches written down before a restart (to be sent again under their numbers), then loops: apply the
//! verdicts that came back, save the checkpoints if they moved, send what is due, poll the files (on a blocking
//! thread) for as many batches as there are free slots. On shutdown it stops reading, lets go of its pipelines
//! (so they drain), waits a bounded time for the batches in flight, and saves the checkpoints a last time:
//! what was delivered is recorded, what was not is sent again at the next start.
//!
//! **Numbered batches, sent in order.** Each batch has a number (its sequence); with `storage`, its intent is
//! appended to the journal and `fsync`ed before it is sent, and it carries `SourcePosition { app_id: the
//! receiver's identity, sequence }`. A batch not delivered is rebuilt from its files and sent again under its
//! own number, never re-read into new batches. No batch goes out while a lower one waits to be sent again, so a
//! destination sees each source's numbers in order (the Delta exporter refuses later numbers after a failed
//! commit until the failed one comes again, and skips numbers it has committed).
//!
//! Back-pressure, never drops: at most [`MAX_IN_FLIGHT`] batches and [`MAX_IN_FLIGHT_BYTES`] of them are out at
//! once, each holds its share of the daemon's memory budget until its verdict, and a full pipeline or a spent
//! budget pauses reading. The files keep the data meanwhile.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use otlake_core::telemetry::{RECEIVER_ACCEPTED, RECEIVER_REFUSED};
use otlake_core::{
    Ack, AckSet, Batch, ComponentError, Fanout, MemoryBudget, Outcome, Receiver, ReceiverContext,
    RequestMeta, Signal, SourcePosition,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::checkpoint::{CheckpointStore, Saved};
use crate::config::{FilelogConfig, Storage};
use crate::error::FilelogError;
use crate::journal::{self, Journal};
use crate::tracker::{Limits, Prepared, Settings, Tracker};

/// Batches sent and not yet acknowledged, at most.
pub const MAX_IN_FLIGHT: usize = 8;
/// Encoded bytes of the batches sent and not yet acknowledged, at most (about: a poll makes batches while this
/// is not reached). What bounds the receiver's memory when lines are long; a batch is held as its protobuf.
pub const MAX_IN_FLIGHT_BYTES: usize = 16 << 20;
/// Entries in one batch, at most.
pub const MAX_BATCH_RECORDS: usize = 8192;
/// Encoded bytes of one batch, at most (about: a batch ends at the first entry past it). Below the OTLP
/// exporters' default `max_request_bytes` (4 MiB less 128 KiB) and the batch processor's default
/// `send_batch_max_bytes` (8 MiB), so neither has to decode a batch to cut it apart (measured: at 4 MiB every
/// batch was decoded and encoded again by the exporter's split).
pub const MAX_BATCH_BYTES: usize = 3 << 20;
/// How long a batch waits for room in a full pipeline before it counts as not delivered (and is sent again).
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Pause before sending a batch again after it was not delivered, when the verdict gives no delay.
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

/// A verdict on attempt `attempt` of batch `id`.
struct Settled {
    id: u64,
    attempt: u32,
    outcome: Outcome,
}

/// Where a numbered batch is, from its making to its verdict.
enum Slot {
    /// Made (or rebuilt), waiting to be sent: for room in the memory budget, or for a lower batch to go first.
    Ready {
        prepared: Prepared,
        /// Whether its intent is in the journal already (a rebuilt batch's is).
        written: bool,
        attempt: u32,
    },
    /// Sent; its verdict is awaited.
    InFlight {
        attempt: u32,
        records: usize,
        /// Its encoded size.
        bytes: usize,
    },
    /// Not delivered: rebuilt from its files and sent again at `at`.
    Again { at: Instant, attempt: u32 },
}

/// The state of a running receiver.
struct Running {
    id: String,
    /// Locked by the blocking poll and, between polls, by the loop (never across an await).
    tracker: Arc<Mutex<Tracker>>,
    store: Option<CheckpointStore>,
    journal: Option<Journal>,
    /// The receiver's identity, with `storage`: its batches' source app id.
    app_id: Option<Arc<str>>,
    budget: Arc<MemoryBudget>,
    /// Every batch not yet settled, by number.
    slots: BTreeMap<u64, Slot>,
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
        let (store, journal, app_id, saved) = match &storage {
            Storage::None => (None, None, None, Saved::default()),
            Storage::Directory(dir) => {
                let mut store = CheckpointStore::open(dir, &id).map_err(startup)?;
                let saved = store.load().map_err(startup)?;
                let journal = Journal::open(dir, &id, saved.settled_below).map_err(startup)?;
                let app_id = journal::identity(dir, &id).map_err(startup)?;
                info!(receiver = %id, files = saved.files.len(), path = %store.path().display(),
                    "Checkpoints loaded.");
                (Some(store), Some(journal), Some(app_id), saved)
            }
        };
        let next = journal.as_ref().map_or(0, Journal::next_sequence);
        let intents = journal.as_ref().map(Journal::pending).unwrap_or_default();
        let tracker = Arc::new(Mutex::new(Tracker::new(settings, saved.files, next)));
        let (verdicts, mut settled) = mpsc::unbounded_channel();
        let mut running = Running {
            tracker,
            store,
            journal,
            app_id,
            budget,
            slots: BTreeMap::new(),
            verdicts,
            accepted: metrics::counter!(RECEIVER_ACCEPTED, "receiver" => id.clone(), "signal" => "logs"),
            retried: metrics::counter!(RECEIVER_REFUSED, "receiver" => id.clone(), "signal" => "logs",
                "reason" => "retryable"),
            id,
        };
        if !intents.is_empty() {
            running.restore(intents).await;
        }
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
            running.send(&fanout, &cx.shutdown).await;
            if Instant::now() >= next_poll && running.all_sent() && running.room() > 0 {
                let limits = Limits {
                    batches: running.room(),
                    records: MAX_BATCH_RECORDS,
                    bytes: MAX_BATCH_BYTES,
                };
                let prepared = running.poll(limits).await;
                // Every slot filled: there is more to read, so poll again as soon as one frees up.
                let busy = prepared.len() >= limits.batches;
                for prepared in prepared {
                    running.slots.insert(
                        prepared.id,
                        Slot::Ready {
                            prepared,
                            written: false,
                            attempt: 0,
                        },
                    );
                }
                running.send(&fanout, &cx.shutdown).await;
                next_poll = if busy {
                    Instant::now()
                } else {
                    Instant::now() + poll_interval
                };
            }
            let wake = if running.all_sent() && running.room() > 0 {
                next_poll
            } else {
                // Waiting on a verdict (it frees a slot or memory) or on a batch's time to go again; poll the
                // budget now and then too.
                running
                    .next_again()
                    .map_or(Instant::now() + poll_interval, |at| {
                        at.min(Instant::now() + poll_interval)
                    })
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
        // Stop: what was never sent stays pending in its files (and, if written down, in the journal); the
        // pipelines may drain once we let go of them.
        drop(fanout);
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while running.in_flight() > 0 {
            match tokio::time::timeout_at(deadline, settled.recv()).await {
                Ok(Some(verdict)) => running.settle(verdict),
                _ => break,
            }
        }
        if running.in_flight() > 0 {
            warn!(receiver = %running.id, batches = running.in_flight(),
                "Shutting down with batches unacknowledged; they will be sent again at the next start.");
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

    /// Batches sent and awaiting their verdict.
    fn in_flight(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s, Slot::InFlight { .. }))
            .count()
    }

    /// How many batches a poll may make now: free slots, within what [`MAX_IN_FLIGHT_BYTES`] leaves.
    fn room(&self) -> usize {
        let held: usize = self
            .slots
            .values()
            .map(|s| match s {
                Slot::InFlight { bytes, .. } => *bytes,
                Slot::Ready { prepared, .. } => prepared.bytes,
                Slot::Again { .. } => MAX_BATCH_BYTES,
            })
            .sum();
        let by_bytes = MAX_IN_FLIGHT_BYTES
            .saturating_sub(held)
            .div_ceil(MAX_BATCH_BYTES);
        MAX_IN_FLIGHT.saturating_sub(self.slots.len()).min(by_bytes)
    }

    /// Whether every batch made has been sent (new batches are made only then, so numbers go out in order).
    fn all_sent(&self) -> bool {
        self.slots
            .values()
            .all(|s| matches!(s, Slot::InFlight { .. }))
    }

    /// When the next batch to be sent again is due.
    fn next_again(&self) -> Option<Instant> {
        self.slots
            .values()
            .filter_map(|s| match s {
                Slot::Again { at, .. } => Some(*at),
                _ => None,
            })
            .min()
    }

    /// Takes up the intents of the last run: their batches are sent again first, in order.
    async fn restore(&mut self, intents: Vec<journal::Intent>) {
        let now = Instant::now();
        let tracker = Arc::clone(&self.tracker);
        let count = intents.len();
        let restored = tokio::task::spawn_blocking(move || {
            let mut tracker = tracker.lock().unwrap_or_else(|e| e.into_inner());
            tracker.restore(now.into_std(), intents)
        })
        .await
        .unwrap_or_else(|e| {
            warn!(receiver = %self.id, error = %e, "Taking up the batches of the last run failed.");
            Vec::new()
        });
        info!(receiver = %self.id, batches = count,
            "Sending again the batches not known to be delivered before the restart, under their numbers.");
        for id in restored {
            self.slots.insert(
                id,
                Slot::Again {
                    at: now,
                    attempt: 0,
                },
            );
        }
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

    /// Sends, lowest number first, every batch that may go: stops at the first that must wait (its time to go
    /// again has not come, the memory budget is spent, the journal cannot be written, a pipeline is full), so
    /// no higher number overtakes it.
    async fn send(&mut self, fanout: &Fanout, shutdown: &tokio_util::sync::CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let Some((&id, slot)) = self
                .slots
                .iter()
                .find(|(_, s)| !matches!(s, Slot::InFlight { .. }))
            else {
                return;
            };
            let (prepared, written, attempt) = match slot {
                Slot::Again { at, .. } if Instant::now() < *at => return,
                Slot::Again { attempt, .. } => {
                    let attempt = *attempt;
                    let Some(prepared) = self.rebuild(id).await else {
                        // Settled meanwhile (cannot happen: only a verdict settles): nothing to send.
                        self.slots.remove(&id);
                        continue;
                    };
                    (prepared, true, attempt)
                }
                Slot::Ready { .. } => match self.slots.remove(&id) {
                    Some(Slot::Ready {
                        prepared,
                        written,
                        attempt,
                    }) => (prepared, written, attempt),
                    _ => return,
                },
                Slot::InFlight { .. } => return,
            };
            // The request is held in its wire form, its encoded size. Its intent is written down before it goes
            // (once).
            let reservation = match self.budget.try_reserve(prepared.bytes as u64) {
                None => {
                    debug!(receiver = %self.id, "Memory budget spent; reading pauses.");
                    None
                }
                Some(reservation) if written => Some(reservation),
                Some(reservation) => match self.write_down(&prepared).await {
                    Ok(()) => Some(reservation),
                    Err(e) => {
                        warn!(receiver = %self.id, error = %e, "Writing a batch's intent failed; will try again.");
                        None
                    }
                },
            };
            let Some(reservation) = reservation else {
                self.slots.insert(
                    id,
                    Slot::Ready {
                        prepared,
                        written,
                        attempt,
                    },
                );
                return;
            };
            let Prepared {
                payload,
                records,
                bytes,
                ..
            } = prepared;
            let (ack, verdict) = Ack::new();
            ack.hold(reservation);
            let mut batch = Batch::new(payload, AckSet::single(ack));
            if let Some(app_id) = &self.app_id {
                batch.meta = Arc::new(RequestMeta::default().with_source(SourcePosition {
                    app_id: Arc::clone(app_id),
                    sequence: id,
                    first_undelivered: Some(
                        self.slots.keys().next().map_or(id, |&low| low.min(id)),
                    ),
                }));
            }
            let attempt = attempt + 1;
            let sent = tokio::select! {
                // A refused send resolves the acknowledgement retryable itself; the verdict says so.
                sent = fanout.send(batch) => sent,
                // Dropping the send drops the batch, and its acknowledgement resolves retryable.
                () = shutdown.cancelled() => false,
            };
            self.slots.insert(
                id,
                Slot::InFlight {
                    attempt,
                    records,
                    bytes,
                },
            );
            let verdicts = self.verdicts.clone();
            tokio::spawn(async move {
                let outcome = verdict.wait().await.outcome;
                // The receiver may have stopped waiting (shutdown timed out): nobody to tell.
                let _ = verdicts.send(Settled {
                    id,
                    attempt,
                    outcome,
                });
            });
            if !sent {
                // A pipeline did not take it: it goes again before anything after it.
                self.retried.increment(records as u64);
                self.slots.insert(
                    id,
                    Slot::Again {
                        at: Instant::now() + RETRY_AFTER,
                        attempt,
                    },
                );
                return;
            }
        }
    }

    /// Rebuilds batch `id` from its files (on a blocking thread).
    async fn rebuild(&mut self, id: u64) -> Option<Prepared> {
        let tracker = Arc::clone(&self.tracker);
        tokio::task::spawn_blocking(move || {
            let mut tracker = tracker.lock().unwrap_or_else(|e| e.into_inner());
            tracker.rebuild(id)
        })
        .await
        .unwrap_or_else(|e| {
            warn!(receiver = %self.id, error = %e, "Rebuilding a batch failed.");
            None
        })
    }

    /// Appends the batch's intent to the journal and `fsync`s it (on a blocking thread); without `storage`
    /// there is nothing to write.
    async fn write_down(&mut self, prepared: &Prepared) -> Result<(), FilelogError> {
        let Some(mut journal) = self.journal.take() else {
            return match self.app_id {
                // Numbered batches need their journal: without it nothing more may be sent.
                Some(_) => Err(journal_lost()),
                None => Ok(()),
            };
        };
        let intent = prepared.intent.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let result = journal.append(&intent);
            (journal, result)
        })
        .await;
        match joined {
            Ok((journal, result)) => {
                self.journal = Some(journal);
                result
            }
            Err(e) => {
                warn!(receiver = %self.id, error = %e, "The intent journal is lost; batches stop.");
                Err(journal_lost())
            }
        }
    }

    fn settle(&mut self, settled: Settled) {
        // Only the verdict of the batch's latest attempt counts (an earlier one was already acted on).
        let records = match self.slots.get(&settled.id) {
            Some(Slot::InFlight {
                attempt, records, ..
            }) if *attempt == settled.attempt => *records,
            _ => return,
        };
        let delivered = match &settled.outcome {
            Outcome::Delivered => true,
            Outcome::Retryable {
                reason,
                retry_after,
            } => {
                debug!(receiver = %self.id, reason, batch = settled.id,
                    "A batch was not delivered; it will be sent again under its number.");
                self.retried.increment(records as u64);
                self.slots.insert(
                    settled.id,
                    Slot::Again {
                        at: Instant::now() + retry_after.unwrap_or(RETRY_AFTER),
                        attempt: settled.attempt,
                    },
                );
                return;
            }
            Outcome::Rejected { reason } => {
                // Refused for good by an exporter: sending it again would be refused again, forever.
                warn!(receiver = %self.id, reason, records,
                    "An exporter refused a batch for good; its lines are skipped.");
                false
            }
        };
        if delivered {
            self.accepted.increment(records as u64);
        }
        self.slots.remove(&settled.id);
        self.tracker().settle(settled.id);
    }

    /// Saves the checkpoints if they moved, then lets the journal forget what they settle (on a blocking
    /// thread: both `fsync`).
    async fn save(&mut self) {
        let Some(mut store) = self.store.take() else {
            return;
        };
        let Some(checkpoints) = self.tracker().changed_checkpoints() else {
            self.store = Some(store);
            return;
        };
        let mut journal = self.journal.take();
        let saved = tokio::task::spawn_blocking(move || {
            let settled_below = checkpoints.settled_below;
            let result = store.save(checkpoints).and_then(|()| match &mut journal {
                Some(journal) => journal.settled_below(settled_below),
                None => Ok(()),
            });
            (store, journal, result)
        })
        .await;
        match saved {
            Ok((store, journal, result)) => {
                if let Err(e) = result {
                    warn!(receiver = %self.id, error = %e, "Saving checkpoints failed; will try again.");
                    self.tracker().unsaved();
                }
                self.store = Some(store);
                self.journal = journal;
            }
            Err(e) => {
                warn!(receiver = %self.id, error = %e, "Saving checkpoints failed; checkpoints stop.")
            }
        }
    }
}

/// The journal went with a panicked thread: nothing more can be sent exactly once.
fn journal_lost() -> FilelogError {
    FilelogError::io(
        "appending to",
        std::path::Path::new("the intent journal"),
        std::io::Error::other("lost after a panic"),
    )
}
