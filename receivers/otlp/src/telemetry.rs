//! The receiver's item counters (`otlake_core::telemetry::RECEIVER_ACCEPTED` / `RECEIVER_REFUSED`), registered
//! once per receiver and signal so that the request path builds no label strings.
//!
//! Refusal reasons: `retryable` (not durable, the client retries), `rejected` (refused for good, including the
//! items of a partial success), `no_pipeline` (no pipeline takes the signal from this receiver). Requests that
//! fail before decoding have no item count and are only logged.

use metrics::Counter;
use otlake_core::telemetry::{RECEIVER_ACCEPTED, RECEIVER_REFUSED};
use otlake_core::{ComponentId, Signal};

use crate::ingest::Answer;

struct SignalCounters {
    accepted: Counter,
    retryable: Counter,
    rejected: Counter,
    no_pipeline: Counter,
}

/// Counters of one receiver, indexed by signal.
pub struct ReceiverCounters {
    per_signal: [SignalCounters; 3],
}

fn index(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Logs => 1,
        Signal::Metrics => 2,
    }
}

impl ReceiverCounters {
    pub fn new(id: &ComponentId) -> Self {
        let receiver = id.to_string();
        let make = |signal: Signal| {
            let refused = |reason: &'static str| {
                metrics::counter!(RECEIVER_REFUSED, "receiver" => receiver.clone(),
                    "signal" => signal.as_str(), "reason" => reason)
            };
            SignalCounters {
                accepted: metrics::counter!(RECEIVER_ACCEPTED, "receiver" => receiver.clone(),
                    "signal" => signal.as_str()),
                retryable: refused("retryable"),
                rejected: refused("rejected"),
                no_pipeline: refused("no_pipeline"),
            }
        };
        ReceiverCounters {
            per_signal: Signal::ALL.map(make),
        }
    }

    /// Counts the `items` of one answered request.
    pub fn record(&self, signal: Signal, items: u64, answer: &Answer) {
        let counters = &self.per_signal[index(signal)];
        match answer {
            Answer::Accepted { rejected_items, .. } => {
                let rejected = (*rejected_items).min(items);
                counters.accepted.increment(items - rejected);
                counters.rejected.increment(rejected);
            }
            Answer::Retry { .. } => counters.retryable.increment(items),
            Answer::Rejected { .. } => counters.rejected.increment(items),
            Answer::NoPipeline { .. } => counters.no_pipeline.increment(items),
        }
    }

    pub fn no_pipeline(&self, signal: Signal, items: u64) {
        self.per_signal[index(signal)].no_pipeline.increment(items);
    }
}
