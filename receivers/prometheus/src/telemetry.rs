//! The receiver's own counters: items accepted and refused (`otlake_receiver_accepted_items_total`,
//! `otlake_receiver_refused_items_total` with `reason` = `retryable`, `rejected` or `memory`, as the `otlp`
//! receiver counts them) and failed scrapes (`otlake_receiver_scrape_failures_total` by `job` and `reason`:
//! `connect`, `timeout`, `status`, `body_size_limit`, `decompress`, `memory`, `parse`, `sample_limit`,
//! `internal`).
//! The item counters are registered once per receiver, so the scrape path builds no label strings.

use metrics::Counter;
use otlake_core::ComponentId;
use otlake_core::telemetry::{RECEIVER_ACCEPTED, RECEIVER_REFUSED};

/// Failed scrapes, by receiver, job and reason.
pub const SCRAPE_FAILURES: &str = "otlake_receiver_scrape_failures_total";

/// Why a scrape's items were not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The pipeline answered retryable (full, or an exporter failed).
    Retryable,
    /// The pipeline rejected the data for good.
    Rejected,
    /// The memory budget had no room for the scrape's request.
    Memory,
}

/// Item counters of one receiver (metrics only).
pub struct Counters {
    accepted: Counter,
    retryable: Counter,
    rejected: Counter,
    memory: Counter,
}

impl Counters {
    pub fn new(id: &ComponentId) -> Self {
        let receiver = id.to_string();
        let refused = |reason: &'static str| metrics::counter!(RECEIVER_REFUSED, "receiver" => receiver.clone(), "signal" => "metrics", "reason" => reason);
        Counters {
            accepted: metrics::counter!(RECEIVER_ACCEPTED, "receiver" => receiver.clone(), "signal" => "metrics"),
            retryable: refused("retryable"),
            rejected: refused("rejected"),
            memory: refused("memory"),
        }
    }

    pub fn accepted(&self, items: u64) {
        self.accepted.increment(items);
    }

    pub fn refused(&self, why: Refusal, items: u64) {
        match why {
            Refusal::Retryable => self.retryable.increment(items),
            Refusal::Rejected => self.rejected.increment(items),
            Refusal::Memory => self.memory.increment(items),
        }
    }
}

/// Counts one failed scrape. Failures are rare next to scrapes: the counter is looked up when one happens.
pub fn scrape_failed(receiver: &str, job: &str, reason: &'static str) {
    metrics::counter!(SCRAPE_FAILURES, "receiver" => receiver.to_owned(), "job" => job.to_owned(), "reason" => reason)
        .increment(1);
}
