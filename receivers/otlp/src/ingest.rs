//! The protocol-neutral middle of every request: a decoded [`Payload`] goes into the signal's pipelines with a
//! fresh acknowledgement, and the acknowledgement's verdict becomes an [`Answer`] that the gRPC and HTTP front
//! ends turn into their status codes.
//!
//! Guarantees: a request is answered from its verdict only, so success means every exporter of every pipeline
//! made the data durable; a full pipeline answers retryable after `queue_wait` (never a hang); a signal that no
//! pipeline takes from this receiver is answered "not found" rather than accepted and dropped. Every item is
//! counted once, as accepted or refused (with a reason), in the metrics named in `otlake_core::telemetry`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use otlake_core::{
    Ack, AckSet, Batch, ComponentId, Fanout, MemoryBudget, Outcome, Payload, RequestMeta,
    Reservation, Signal,
};

use crate::admission::Admission;
pub use crate::answer::Answer;
use crate::counters::ReceiverCounters;

/// Hands requests to the pipelines and waits for their verdicts. Shared by both front ends.
pub struct Ingest {
    id: ComponentId,
    outputs: HashMap<Signal, Fanout>,
    counters: ReceiverCounters,
    admission: Admission,
}

impl Ingest {
    /// `queue_wait` replaces the wait the service gave the fan-outs (the receiver's own setting wins).
    pub fn new(id: ComponentId, outputs: HashMap<Signal, Fanout>, queue_wait: Duration) -> Self {
        let counters = ReceiverCounters::new(&id);
        let outputs = outputs
            .into_iter()
            .map(|(signal, fanout)| (signal, fanout.with_queue_wait(queue_wait)))
            .collect();
        let admission = Admission::new(&id, Arc::clone(MemoryBudget::global()));
        Ingest {
            id,
            outputs,
            counters,
            admission,
        }
    }

    /// Admits requests against `budget` instead of the process-wide one (tests).
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>) -> Self {
        self.admission = Admission::new(&self.id, budget);
        self
    }

    /// Reserves a `signal` request's share of the memory budget before it is decoded (see [`Admission`]).
    pub fn admit(&self, signal: Signal, wire_bytes: u64) -> Result<Reservation, Answer> {
        self.admission.admit(signal, wire_bytes)
    }

    /// Grows an admitted request's reservation once more of its size is known (see [`Admission::grow`]).
    pub fn grow(
        &self,
        signal: Signal,
        reservation: &mut Reservation,
        wire_bytes: u64,
    ) -> Result<(), Answer> {
        self.admission.grow(signal, reservation, wire_bytes)
    }

    pub fn id(&self) -> &ComponentId {
        &self.id
    }

    /// Sends one decoded request into `signal`'s pipelines and waits for its verdict.
    pub async fn export(&self, payload: Payload, meta: Option<RequestMeta>) -> Answer {
        self.export_held(payload, meta, None).await
    }

    /// [`Ingest::export`] for a request admitted with `reservation`: its acknowledgement holds the reservation
    /// until the verdict.
    pub async fn export_held(
        &self,
        payload: Payload,
        meta: Option<RequestMeta>,
        reservation: Option<Reservation>,
    ) -> Answer {
        let signal = payload.signal();
        let items = payload.item_count() as u64;
        // A reload can take a signal's last pipeline away from a running receiver (its fan-out then has no target).
        let Some(fanout) = self.outputs.get(&signal).filter(|f| !f.is_empty()) else {
            self.counters.no_pipeline(signal, items);
            return Answer::NoPipeline {
                message: format!("receiver {} has no {signal} pipeline", self.id),
            };
        };
        if items == 0 {
            // Nothing to make durable; the Collector answers an empty request with success too.
            return Answer::Accepted {
                rejected_items: 0,
                message: None,
            };
        }
        let (ack, verdict) = Ack::new();
        ack.set_items(items);
        if let Some(reservation) = reservation {
            ack.hold(reservation);
        }
        let mut batch = Batch::new(payload, AckSet::single(ack));
        if let Some(meta) = meta {
            batch.meta = Arc::new(meta);
        }
        // A refused send resolves its share of the acknowledgement retryable itself; the verdict says so.
        fanout.send(batch).await;
        let verdict = verdict.wait().await;
        let answer = match verdict.outcome {
            Outcome::Delivered => Answer::Accepted {
                rejected_items: verdict.rejected_items,
                message: verdict.rejection_message,
            },
            Outcome::Retryable {
                reason,
                retry_after,
            } => Answer::Retry {
                message: reason,
                retry_after,
            },
            Outcome::Rejected { reason } => Answer::Rejected { message: reason },
        };
        self.counters.record(signal, items, &answer);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::batch::channel;
    use otlake_core::test_util::sample_traces;

    fn ingest_with(capacity: usize) -> (Ingest, otlake_core::BatchReceiver) {
        let (tx, rx) = channel("test", capacity);
        let outputs = HashMap::from([(
            Signal::Traces,
            Fanout::new(vec![tx], Duration::from_secs(3600)),
        )]);
        (
            Ingest::new(ComponentId::new("otlp"), outputs, Duration::from_millis(20)),
            rx,
        )
    }

    #[tokio::test]
    async fn the_answer_follows_the_verdict() {
        let (ingest, mut rx) = ingest_with(4);
        let resolver = tokio::spawn(async move {
            let outcomes = [
                Outcome::Delivered,
                Outcome::rejected("bad data"),
                Outcome::Retryable {
                    reason: "disk full".into(),
                    retry_after: Some(Duration::from_secs(5)),
                },
            ];
            for outcome in outcomes {
                let batch = rx.recv().await.expect("a batch");
                if outcome == Outcome::Delivered {
                    batch.acks.reject_items(1, "too big");
                }
                batch.acks.resolve(outcome);
            }
        });
        let payload = || Payload::from(sample_traces(1, 3));
        assert_eq!(
            ingest.export(payload(), None).await,
            Answer::Accepted {
                rejected_items: 1,
                message: Some("too big".into())
            }
        );
        assert_eq!(
            ingest.export(payload(), None).await,
            Answer::Rejected {
                message: "bad data".into()
            }
        );
        assert_eq!(
            ingest.export(payload(), None).await,
            Answer::Retry {
                message: "disk full".into(),
                retry_after: Some(Duration::from_secs(5))
            }
        );
        resolver.await.expect("resolver");
    }

    #[tokio::test]
    async fn a_signal_a_reload_takes_away_answers_no_pipeline_and_one_it_adds_is_taken() {
        let (ingest, _rx) = ingest_with(4);
        let traces = ingest.outputs[&Signal::Traces].targets();
        traces.replace(Vec::new());
        let answer = ingest
            .export(Payload::from(sample_traces(1, 1)), None)
            .await;
        assert!(matches!(answer, Answer::NoPipeline { .. }), "{answer:?}");

        let (tx, mut rx) = channel("added", 4);
        traces.replace(vec![tx]);
        let export = ingest.export(Payload::from(sample_traces(1, 2)), None);
        let deliver = async {
            let batch = rx.recv().await.expect("the added pipeline gets it");
            assert_eq!(batch.item_count(), 2);
            batch.acks.resolve(Outcome::Delivered);
        };
        let (answer, ()) = tokio::join!(export, deliver);
        assert!(matches!(answer, Answer::Accepted { .. }), "{answer:?}");
    }

    #[tokio::test]
    async fn a_full_pipeline_answers_retry_after_the_receivers_queue_wait() {
        // The fan-out was built with an hour's wait; the receiver's 20ms replaces it, so this returns.
        let (ingest, _rx) = ingest_with(1);
        let first = ingest.export(Payload::from(sample_traces(1, 1)), None);
        let second = ingest.export(Payload::from(sample_traces(1, 1)), None);
        // One of the two takes the only slot and waits for a verdict that never comes; the other finds no room.
        let answer = tokio::select! {
            answer = first => answer,
            answer = second => answer,
        };
        assert!(
            matches!(
                answer,
                Answer::Retry {
                    retry_after: Some(_),
                    ..
                }
            ),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn a_signal_without_pipeline_and_an_empty_request() {
        let (ingest, _rx) = ingest_with(1);
        let answer = ingest.export(Payload::empty(Signal::Logs), None).await;
        assert!(
            matches!(answer, Answer::NoPipeline { ref message } if message.contains("no logs pipeline"))
        );
        let answer = ingest.export(Payload::empty(Signal::Traces), None).await;
        assert!(matches!(
            answer,
            Answer::Accepted {
                rejected_items: 0,
                ..
            }
        ));
    }
}
