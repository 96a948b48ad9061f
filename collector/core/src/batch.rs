//! The unit of work between stages, and the bounded channels that carry it.
//!
//! Channels are bounded, so a slow exporter pushes back on the pipeline and the pipeline on the receiver. A
//! receiver never waits without limit: [`Fanout::send`] waits at most its `queue_wait` for room and otherwise
//! answers retryable, so a full pipeline becomes a client retry, never a hang and never a silent drop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{AckSet, ExportRequest, Outcome, Payload, PayloadDecodeError, Signal};

/// Where a batch stands in a numbered, replayable source (a write-ahead log, a file receiver's journal). After a
/// crash the source sends the batch again under the same position, so an exporter that records each source's
/// highest sequence atomically with the data (the Delta exporter's `txn`) makes the replay exactly-once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourcePosition {
    /// The source's identity, stable across restarts and host names (a Delta `txn` app id).
    pub app_id: Arc<str>,
    /// The batch's number in the source: increasing, never given to other data.
    pub sequence: u64,
    /// The lowest sequence the source still held undelivered when it sent this batch, when it tracks that: every
    /// lower one is done with (delivered, or dropped on purpose and never sent again). The Delta exporter's gate
    /// waits for a failed batch only while its source still holds it.
    pub first_undelivered: Option<u64>,
}

/// What travels with a batch besides its data: client metadata, and its position in a replayable source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestMeta {
    /// Lower-case header names and their values (chosen by the receiver's `include_metadata`).
    pub metadata: BTreeMap<String, String>,
    /// Set only by a replayable source, never from a client: a typed field, so no header can forge it.
    source: Option<SourcePosition>,
}

impl RequestMeta {
    /// Client metadata, not numbered by any log.
    pub fn from_metadata(metadata: BTreeMap<String, String>) -> Self {
        RequestMeta {
            metadata,
            source: None,
        }
    }

    /// The batch's position in a replayable source, when one numbered it (a write-ahead log in front of the
    /// exporter, a file receiver's journal).
    pub fn source(&self) -> Option<&SourcePosition> {
        self.source.as_ref()
    }

    /// The same metadata, at `position` of a replayable source.
    pub fn with_source(mut self, position: SourcePosition) -> Self {
        self.source = Some(position);
        self
    }
}

/// OTLP data of one signal and the acknowledgements of every request it came from.
#[derive(Debug)]
pub struct Batch {
    /// Shared between fan-out branches; mutate through [`Batch::payload_mut`].
    pub payload: Arc<Payload>,
    pub acks: AckSet,
    pub meta: Arc<RequestMeta>,
}

impl Batch {
    pub fn new(payload: Payload, acks: AckSet) -> Self {
        Batch {
            payload: Arc::new(payload),
            acks,
            meta: Arc::default(),
        }
    }

    pub fn signal(&self) -> Signal {
        self.payload.signal()
    }

    pub fn item_count(&self) -> usize {
        self.payload.item_count()
    }

    /// The payload to change in place; copies it only if another fan-out branch still shares it (the Rust form
    /// of the Collector's `MutatesData`).
    pub fn payload_mut(&mut self) -> &mut Payload {
        Arc::make_mut(&mut self.payload)
    }

    /// Whether a read-only look on the payload's wire bytes says there is nothing to do: the payload is still in
    /// its wire form (not decoded by an earlier stage) and `look`, given its signal and chunks (see
    /// `Payload::wire_chunks`), answers no. Then the batch can go on without being decoded.
    pub fn nothing_to_do_on_wire(&self, look: impl FnOnce(Signal, &[Bytes]) -> bool) -> bool {
        self.payload.is_wire()
            && self
                .payload
                .wire_chunks()
                .is_some_and(|chunks| !look(self.signal(), chunks))
    }

    /// How an editing processor changes a batch: a read-only look first, and a change only when it says so, so
    /// a request nothing applies to goes on untouched (still in wire form, still shared with the other
    /// pipelines). A payload still in wire form is looked at on its bytes by `wire_look`
    /// ([`Batch::nothing_to_do_on_wire`]); when that says no, it goes on undecoded. Otherwise `needs_edit`
    /// looks at the decoded request and, when it says yes, `edit` changes it. `wire_look` must never say no
    /// where `needs_edit` says yes. The batch goes to `out`; a request that cannot be decoded (impossible for
    /// validated wire bytes) is rejected instead.
    pub fn edit_into(
        mut self,
        out: &mut Vec<Batch>,
        wire_look: impl FnOnce(Signal, &[Bytes]) -> bool,
        needs_edit: impl FnOnce(&ExportRequest) -> bool,
        edit: impl FnOnce(&mut ExportRequest),
    ) {
        if self.item_count() == 0 || self.nothing_to_do_on_wire(wire_look) {
            out.push(self);
            return;
        }
        let result: Result<(), PayloadDecodeError> = (|| {
            if needs_edit(self.payload.request()?) {
                edit(self.payload_mut().request_mut()?);
            }
            Ok(())
        })();
        match result {
            Ok(()) => out.push(self),
            Err(e) => self.acks.resolve(Outcome::rejected(e.to_string())),
        }
    }

    /// A second batch with the same data and one more holder of each acknowledgement (for fan-out).
    pub fn share(&self) -> Batch {
        Batch {
            payload: Arc::clone(&self.payload),
            acks: self.acks.clone(),
            meta: Arc::clone(&self.meta),
        }
    }

    /// Takes the payload out, copying only if it is shared.
    pub fn into_parts(self) -> (Payload, AckSet, Arc<RequestMeta>) {
        let payload = Arc::try_unwrap(self.payload).unwrap_or_else(|shared| (*shared).clone());
        (payload, self.acks, self.meta)
    }
}

/// Sending half of a bounded stage channel; keeps the stage's queue-depth gauge current.
#[derive(Clone)]
pub struct BatchSender {
    tx: mpsc::Sender<Batch>,
    depth: metrics::Gauge,
    name: Arc<str>,
}

/// Receiving half of a bounded stage channel.
pub struct BatchReceiver {
    rx: mpsc::Receiver<Batch>,
    depth: metrics::Gauge,
}

/// A bounded channel into the stage `name` (the name labels its queue-depth gauge).
pub fn channel(name: &str, capacity: usize) -> (BatchSender, BatchReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let depth = metrics::gauge!(crate::telemetry::QUEUE_DEPTH, "stage" => name.to_owned());
    (
        BatchSender {
            tx,
            depth: depth.clone(),
            name: name.into(),
        },
        BatchReceiver { rx, depth },
    )
}

impl BatchSender {
    /// Sends, waiting for room as long as it takes (stage to stage: backpressure).
    pub async fn send(&self, batch: Batch) -> Result<(), Batch> {
        match self.tx.send(batch).await {
            Ok(()) => {
                self.depth.increment(1.0);
                Ok(())
            }
            Err(mpsc::error::SendError(batch)) => Err(batch),
        }
    }

    /// Sends if room frees up within `wait`; gives the batch back otherwise.
    pub async fn send_within(&self, batch: Batch, wait: Duration) -> Result<(), Batch> {
        match tokio::time::timeout(wait, self.tx.reserve()).await {
            Ok(Ok(permit)) => {
                permit.send(batch);
                self.depth.increment(1.0);
                Ok(())
            }
            _ => Err(batch),
        }
    }

    /// The name of the stage this channel feeds.
    pub fn stage(&self) -> &str {
        &self.name
    }

    /// Whether the stage has stopped taking batches (it ended or failed).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl BatchReceiver {
    /// The next batch, or `None` once every sender is gone and the queue is empty (the shutdown cascade).
    pub async fn recv(&mut self) -> Option<Batch> {
        let batch = self.rx.recv().await?;
        self.depth.decrement(1.0);
        Some(batch)
    }

    /// Whether no batch is waiting right now.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Like `recv` but never waits.
    pub fn try_recv(&mut self) -> Option<Batch> {
        let batch = self.rx.try_recv().ok()?;
        self.depth.decrement(1.0);
        Some(batch)
    }
}

/// How long a client should wait before retrying when a pipeline is full.
pub const FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The one fan-out: hands a batch to several stages, sharing the payload (the last target takes it, the others
/// an `Arc` copy). A receiver's fan-out into its pipelines waits at most `queue_wait` for room; a pipeline's
/// fan-out into its exporters waits as long as it takes (backpressure).
///
/// Its targets can be re-pointed while it runs ([`Fanout::targets`]): a reload that adds or removes a pipeline
/// fed by a receiver hands the running receiver its new targets instead of restarting it, so its listeners and
/// connections stay. Clones share the targets.
#[derive(Clone)]
pub struct Fanout {
    targets: FanoutTargets,
    /// `None`: wait for room without limit.
    queue_wait: Option<Duration>,
}

/// Where a [`Fanout`] (and every clone of it) sends: the service keeps this handle and swaps the whole list at
/// once on a reload. A send reads the list once (one atomic load) and finishes against what it read, so a
/// batch in flight during a swap goes to the old targets; one of those that has stopped answers retryable.
#[derive(Clone, Default)]
pub struct FanoutTargets(Arc<ArcSwap<Vec<BatchSender>>>);

impl FanoutTargets {
    /// Sends from now on go to `targets` (none: a receiver answers "no pipeline", see [`Fanout::is_empty`]).
    pub fn replace(&self, targets: Vec<BatchSender>) {
        self.0.store(Arc::new(targets));
    }
}

impl Fanout {
    /// A receiver's fan-out: a target that stays full for `queue_wait` is answered retryable.
    pub fn new(targets: Vec<BatchSender>, queue_wait: Duration) -> Self {
        Fanout {
            targets: FanoutTargets(Arc::new(ArcSwap::from_pointee(targets))),
            queue_wait: Some(queue_wait),
        }
    }

    /// A stage-to-stage fan-out: waits for room as long as it takes, so a slow stage slows the one before.
    pub fn blocking(targets: Vec<BatchSender>) -> Self {
        Fanout {
            queue_wait: None,
            ..Fanout::new(targets, Duration::ZERO)
        }
    }

    /// The same targets with another wait for room (a receiver's own `queue_wait` setting).
    pub fn with_queue_wait(mut self, queue_wait: Duration) -> Self {
        self.queue_wait = Some(queue_wait);
        self
    }

    /// The handle that re-points this fan-out and its clones.
    pub fn targets(&self) -> FanoutTargets {
        self.targets.clone()
    }

    /// Whether it has no target right now: no pipeline takes this signal from the receiver.
    pub fn is_empty(&self) -> bool {
        self.targets.0.load().is_empty()
    }

    /// Hands the batch to every target. A target that has stopped, or stays full for `queue_wait`, gets no copy
    /// and its share of the acknowledgements resolves retryable; returns `false` then. With no target at all
    /// the batch is refused retryable too (its signal lost its last pipeline since the caller looked).
    pub async fn send(&self, batch: Batch) -> bool {
        let targets = self.targets.0.load_full();
        if targets.is_empty() {
            batch
                .acks
                .resolve(Outcome::retryable("no pipeline takes this signal now"));
            return false;
        }
        let mut delivered_to_all = true;
        let mut remaining = Some(batch);
        for (i, target) in targets.iter().enumerate() {
            let Some(current) = remaining.take() else {
                break;
            };
            let this = if i + 1 < targets.len() {
                let copy = current.share();
                remaining = Some(current);
                copy
            } else {
                current
            };
            let sent = match self.queue_wait {
                Some(wait) => target.send_within(this, wait).await,
                None => target.send(this).await,
            };
            if let Err(refused) = sent {
                delivered_to_all = false;
                let outcome = if target.is_closed() {
                    Outcome::retryable(format!("{} has stopped", target.stage()))
                } else {
                    Outcome::Retryable {
                        reason: format!("pipeline {} is full", target.stage()),
                        retry_after: Some(FULL_RETRY_AFTER),
                    }
                };
                refused.acks.resolve(outcome);
            }
        }
        delivered_to_all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_position_round_trips_and_client_metadata_has_none() {
        let mut meta = RequestMeta::default();
        meta.metadata.insert("x-tenant".into(), "a".into());
        assert_eq!(meta.source(), None);
        let position = SourcePosition {
            app_id: "otlake-wal-1".into(),
            sequence: 1_763_840_000_000_042,
            first_undelivered: Some(1_763_840_000_000_040),
        };
        let numbered = meta.clone().with_source(position.clone());
        assert_eq!(numbered.source(), Some(&position));
        assert_eq!(numbered.metadata["x-tenant"], "a");
    }

    #[tokio::test]
    async fn a_re_pointed_fanout_sends_to_its_new_targets_and_a_removed_one_answers_retryable() {
        use crate::test_util::{batch_with_ack, sample_traces};
        let (first, mut first_rx) = channel("first", 4);
        let (second, mut second_rx) = channel("second", 4);
        let fanout = Fanout::new(vec![first], Duration::from_secs(1));
        // The receiver holds a clone; the service keeps the handle.
        let held = fanout.clone();
        let targets = fanout.targets();

        targets.replace(vec![second]);
        let (batch, verdict) = batch_with_ack(sample_traces(1, 2));
        assert!(held.send(batch).await);
        assert_eq!(second_rx.recv().await.expect("sent").item_count(), 2);
        assert!(first_rx.try_recv().is_none(), "the old target got nothing");
        drop(verdict);

        // No target left: the signal has no pipeline; a send that raced with that answers retryable.
        targets.replace(Vec::new());
        assert!(held.is_empty());
        let (batch, verdict) = batch_with_ack(sample_traces(1, 1));
        assert!(!held.send(batch).await);
        assert!(matches!(
            verdict.wait().await.outcome,
            Outcome::Retryable { .. }
        ));
    }

    #[test]
    fn no_client_header_numbers_a_batch() {
        // The sequence used to travel under a metadata key; whatever a client sends as metadata, it is not one.
        for key in [
            ":otlake.wal_sequence",
            "otlake.wal_sequence",
            "wal_sequence",
        ] {
            let meta = RequestMeta::from_metadata([(key.to_owned(), "7".to_owned())].into());
            assert_eq!(meta.source(), None, "{key}");
        }
    }
}
