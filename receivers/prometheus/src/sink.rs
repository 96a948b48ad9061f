//! Hands each scrape's metrics to the pipelines and counts how that ended.
//!
//! Each scrape becomes one batch with its own acknowledgement, holding the request's share of the memory
//! budget until the verdict. Nothing is retried: a scrape's cumulative values are sent again, newer, at the
//! next interval, so a refused batch loses only that point in time (it is counted in
//! `otlake_receiver_refused_items_total` with the reason, and logged).

use std::sync::Arc;

use otlake_core::memory::EXPANSION;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::{Ack, AckSet, Batch, ComponentId, Fanout, MemoryBudget, Outcome, Payload};
use prost::Message;
use tracing::warn;

use crate::telemetry::{Counters, Refusal};

/// Where scraped metrics go.
pub struct Sink {
    fanout: Fanout,
    budget: Arc<MemoryBudget>,
    counters: Counters,
}

impl Sink {
    pub fn new(id: &ComponentId, fanout: Fanout, budget: Arc<MemoryBudget>) -> Self {
        Sink {
            fanout,
            budget,
            counters: Counters::new(id),
        }
    }

    /// Sends one scrape's request and waits for its verdict.
    pub async fn deliver(&self, request: ExportMetricsServiceRequest, job: &str) {
        let bytes = request.encoded_len() as u64;
        let payload = Payload::from(request);
        let items = payload.item_count() as u64;
        let Some(reservation) = self.budget.try_reserve(bytes.saturating_mul(EXPANSION)) else {
            self.counters.refused(Refusal::Memory, items);
            warn!(
                job,
                items, "The collector's memory budget is spent: this scrape's metrics are dropped."
            );
            return;
        };
        let (ack, verdict) = Ack::new();
        ack.hold(reservation);
        // A refused send resolves its share of the acknowledgement retryable itself; the verdict says so.
        self.fanout
            .send(Batch::new(payload, AckSet::single(ack)))
            .await;
        match verdict.wait().await.outcome {
            Outcome::Delivered => self.counters.accepted(items),
            Outcome::Retryable { reason, .. } => {
                self.counters.refused(Refusal::Retryable, items);
                warn!(job, items, reason = %reason, "A scrape's metrics were not delivered; the next scrape carries newer values.");
            }
            Outcome::Rejected { reason } => {
                self.counters.refused(Refusal::Rejected, items);
                warn!(job, items, reason = %reason, "A scrape's metrics were rejected.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use otlake_core::batch::channel;
    use otlake_core::test_util::{CountingRecorder as Counts, sample_metrics};

    use super::*;

    fn request() -> ExportMetricsServiceRequest {
        sample_metrics(1)
    }

    #[tokio::test]
    async fn every_delivered_or_refused_item_is_counted_once_with_its_reason() {
        let counts = Counts::default();
        let (tx, mut rx) = channel("sink", 4);
        let sink = metrics::with_local_recorder(&counts, || {
            Sink::new(
                &ComponentId::new("prometheus"),
                Fanout::new(vec![tx], Duration::from_secs(1)),
                MemoryBudget::new(1 << 30),
            )
        });
        let items = Payload::from(request()).item_count() as u64;
        for outcome in [
            Outcome::Delivered,
            Outcome::retryable("disk full"),
            Outcome::rejected("bad"),
        ] {
            let resolver = async {
                let batch = rx.recv().await.expect("a batch");
                batch.acks.resolve(outcome);
            };
            tokio::join!(sink.deliver(request(), "vllm"), resolver);
        }
        // No room in the budget: counted, never sent.
        let full = MemoryBudget::new(1);
        let _held = full.try_reserve(1).expect("fits");
        let (tx, mut rx) = channel("sink", 4);
        let starved = metrics::with_local_recorder(&counts, || {
            Sink::new(
                &ComponentId::new("prometheus"),
                Fanout::new(vec![tx], Duration::from_secs(1)),
                full,
            )
        });
        starved.deliver(request(), "vllm").await;
        assert!(rx.try_recv().is_none());

        let refused = |reason: &str| {
            counts.get(&format!(
                "otlake_receiver_refused_items_total{{receiver=prometheus,signal=metrics,reason={reason}}}"
            ))
        };
        assert_eq!(
            counts.get("otlake_receiver_accepted_items_total{receiver=prometheus,signal=metrics}"),
            items
        );
        assert_eq!(refused("retryable"), items);
        assert_eq!(refused("rejected"), items);
        assert_eq!(refused("memory"), items);
    }
}
