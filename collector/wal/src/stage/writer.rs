//! The writer half of the stage: group commits of incoming batches, acknowledged once fsynced, and
//! truncation of what the dispatcher reports delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use otlake_core::batch::BatchReceiver;
use otlake_core::memory::EXPANSION;
use otlake_core::telemetry::{WAL_BYTES, WAL_IO_ERRORS};
use otlake_core::{Batch, ComponentId, MemoryBudget, Outcome, Payload, RequestMeta};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::entry;
use crate::error::WalError;
use crate::log::{Group, Wal};

use super::handoff::*;

/// Batches (client requests) written with one group commit at most.
const MAX_GROUP_BATCHES: usize = 512;
/// Encoded bytes written with one group commit at most.
const MAX_GROUP_BYTES: usize = 16 << 20;
/// Encoded bytes of appended entries kept in memory for the dispatcher; beyond, they are read back from disk.
/// Kept entries also hold their decoded size in the daemon's memory budget, and are read back when it is spent.
const MEMORY_BUDGET: u64 = 16 << 20;
/// How often the checkpoint is written and delivered segments deleted, at most.
const TRUNCATE_EVERY: Duration = Duration::from_secs(1);
/// What a client hears as `Retry-After` when the log cannot take its data.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Appends incoming batches and applies truncation.
pub(super) struct Writer {
    pub(super) exporter: ComponentId,
    /// `None` only while a blocking call has it.
    pub(super) wal: Option<Wal>,
    pub(super) cached: Arc<AtomicU64>,
    /// Undelivered entries, shared with the dispatcher; appends beyond `max_entries` are refused retryable.
    pub(super) entries: Arc<AtomicU64>,
    pub(super) max_entries: u64,
    /// Appends are failing (full, disk full): logged once when it starts and once when it ends.
    pub(super) failing: bool,
}

impl Writer {
    pub(super) async fn run(
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
                    // A failed truncation is tried again at the next tick, also while nothing else happens.
                    if wanted > applied && self.truncate(wanted).await? {
                        applied = wanted;
                    }
                }
            }
        }
    }

    /// Records the checkpoint and deletes delivered segments; `Ok(false)` if the log could not (logged).
    async fn truncate(&mut self, first_undelivered: u64) -> otlake_core::Result<bool> {
        let Some(wal) = self.wal.take() else {
            return Ok(false);
        };
        let (wal, result) = with_wal(wal, move |wal| wal.truncate(first_undelivered)).await?;
        let done = match result {
            Ok(removed) => {
                if removed > 0 {
                    debug!(exporter = %self.exporter, removed, first_undelivered, "Deleted delivered log segments.");
                }
                true
            }
            Err(e) => {
                warn!(exporter = %self.exporter, error = %e, "Could not truncate the write-ahead log; will try again.");
                metrics::counter!(WAL_IO_ERRORS, "exporter" => self.exporter.to_string(), "operation" => "truncate")
                    .increment(1);
                false
            }
        };
        metrics::gauge!(WAL_BYTES, "exporter" => self.exporter.to_string())
            .set(wal.used_bytes() as f64);
        self.wal = Some(wal);
        Ok(done)
    }

    async fn append(
        &mut self,
        batches: Vec<Batch>,
        appended: &mpsc::UnboundedSender<Appended>,
    ) -> otlake_core::Result<()> {
        // Nothing to keep for an empty request: it is delivered as it is.
        let (batches, empty): (Vec<Batch>, Vec<Batch>) = batches
            .into_iter()
            .partition(|b| b.payload.item_count() > 0);
        for batch in empty {
            batch.acks.resolve(Outcome::Delivered);
        }
        match self.commit(batches, appended).await? {
            Some((WalError::TooLarge { .. }, batches)) if batches.len() > 1 => {
                // One of them can never fit: commit them one at a time, so only that one is refused.
                for batch in batches {
                    if let Some((e, refused)) = self.commit(vec![batch], appended).await? {
                        self.refuse(&e, refused);
                    }
                }
            }
            Some((e, batches)) => self.refuse(&e, batches),
            None => {}
        }
        Ok(())
    }

    /// Appends `batches` as one group and acknowledges them; on failure hands them back with the error.
    async fn commit(
        &mut self,
        batches: Vec<Batch>,
        appended: &mpsc::UnboundedSender<Appended>,
    ) -> otlake_core::Result<Option<(WalError, Vec<Batch>)>> {
        let held = self.entries.load(Ordering::Relaxed);
        if held + batches.len() as u64 > self.max_entries {
            let path = self
                .wal
                .as_ref()
                .map(|w| w.dir().to_path_buf())
                .unwrap_or_default();
            return Ok(Some((
                WalError::TooManyEntries {
                    path,
                    entries: held,
                    max_entries: self.max_entries,
                },
                batches,
            )));
        }
        let Some(wal) = self.wal.take() else {
            // Only while a blocking call has the log, which never overlaps an append: their acknowledgements
            // drop unresolved, which answers retryable.
            return Ok(None);
        };
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
        let entries = match result {
            Ok(entries) => entries,
            Err(e) => return Ok(Some((e, batches))),
        };
        if self.failing {
            self.failing = false;
            info!(exporter = %self.exporter, "The write-ahead log takes data again.");
        }
        self.entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        for (entry, batch) in entries.into_iter().zip(batches) {
            let bytes = u64::from(entry.location.body_len);
            let reservation = (self.cached.load(Ordering::Relaxed) + bytes <= MEMORY_BUDGET)
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
        Ok(None)
    }

    /// Answers batches the log could not take: refused for good if they can never fit, else retryable.
    fn refuse(&mut self, e: &WalError, batches: Vec<Batch>) {
        let outcome = if e.is_retryable() {
            if !self.failing {
                self.failing = true;
                warn!(exporter = %self.exporter, error = %e,
                    "The write-ahead log cannot take data; clients are answered retryable until it can.");
            }
            Outcome::Retryable {
                reason: e.to_string(),
                retry_after: Some(RETRY_AFTER),
            }
        } else {
            warn!(exporter = %self.exporter, error = %e, "Refused a request larger than the write-ahead log.");
            Outcome::rejected(e.to_string())
        };
        for batch in batches {
            batch.acks.resolve(outcome.clone());
        }
    }
}
