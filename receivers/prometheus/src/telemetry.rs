//! The receiver's own counters: items accepted and refused (`otlake_receiver_accepted_items_total`,
//! `otlake_receiver_refused_items_total` with `reason` = `retryable`, `rejected` or `memory`, as the `otlp`
//! receiver counts them) and failed scrapes (`otlake_receiver_scrape_failures_total` by `job` and `reason`:
//! `connect`, `timeout`, `status`, `body_size_limit`, `decompress`, `memory`, `parse`, `sample_limit`).

use metrics::Counter;
use otlake_core::ComponentId;
use otlake_core::telemetry::{RECEIVER_ACCEPTED, RECEIVER_REFUSED};

/// Failed scrapes, by receiver, job and reason.
pub const SCRAPE_FAILURES: &str = "otlake_receiver_scrape_failures_total";

/// Counters of one receiver (metrics only).
pub struct Counters {
    receiver: String,
    accepted: Counter,
}

impl Counters {
    pub fn new(id: &ComponentId) -> Self {
        let receiver = id.to_string();
        let accepted = metrics::counter!(RECEIVER_ACCEPTED, "receiver" => receiver.clone(), "signal" => "metrics");
        Counters { receiver, accepted }
    }

    pub fn accepted(&self, items: u64) {
        self.accepted.increment(items);
    }

    /// Refusals are rare: their counter is looked up when one happens.
    pub fn refused(&self, reason: &'static str, items: u64) {
        metrics::counter!(RECEIVER_REFUSED, "receiver" => self.receiver.clone(), "signal" => "metrics", "reason" => reason)
            .increment(items);
    }
}

/// Counts one failed scrape.
pub fn scrape_failed(receiver: &str, job: &str, reason: &'static str) {
    metrics::counter!(SCRAPE_FAILURES, "receiver" => receiver.to_owned(), "job" => job.to_owned(), "reason" => reason)
        .increment(1);
}
