//! The receiver's item counters (`otlake_core::telemetry::RECEIVER_ACCEPTED` / `RECEIVER_REFUSED`), registered
//! once per receiver and signal so that the request path builds no label strings.
//!
//! Refusal reasons: `retryable` (not durable, the client retries), `rejected` (refused for good, including the
//! items of a partial success), `no_pipeline` (no pipeline takes the signal from this receiver). Requests that
//! fail before decoding have no item count and are only logged.

use metrics::Counter;
use otlake_core::telemetry::{RECEIVER_ACCEPTED, RECEIVER_REFUSED};
use otlake_core::{ComponentId, Signal};

use crate::answer::Answer;

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use metrics::{Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    /// Keeps one atomic per counter key, printed as `name{label=value,...}`.
    #[derive(Default)]
    pub(crate) struct Counters(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

    impl Counters {
        pub(crate) fn get(&self, key: &str) -> u64 {
            let map = self.0.lock().expect("lock");
            map.get(key).map_or(0, |c| c.load(Ordering::Relaxed))
        }
    }

    impl Recorder for Counters {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            let counter = Arc::clone(self.0.lock().expect("lock").entry(name).or_default());
            Counter::from_arc(counter)
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn every_item_is_counted_once_with_its_reason() {
        let recorder = Counters::default();
        metrics::with_local_recorder(&recorder, || {
            let counters = ReceiverCounters::new(&ComponentId::new("otlp"));
            let accepted = |rejected_items| Answer::Accepted {
                rejected_items,
                message: None,
            };
            counters.record(Signal::Traces, 10, &accepted(0));
            counters.record(Signal::Traces, 10, &accepted(3));
            let retry = Answer::Retry {
                message: "full".into(),
                retry_after: None,
            };
            counters.record(Signal::Logs, 4, &retry);
            let rejected = Answer::Rejected {
                message: "bad".into(),
            };
            counters.record(Signal::Metrics, 5, &rejected);
            counters.no_pipeline(Signal::Logs, 2);
        });
        let refused = |signal: &str, reason: &str| {
            recorder.get(&format!(
                "{RECEIVER_REFUSED}{{receiver=otlp,signal={signal},reason={reason}}}"
            ))
        };
        assert_eq!(
            recorder.get(&format!(
                "{RECEIVER_ACCEPTED}{{receiver=otlp,signal=traces}}"
            )),
            17
        );
        assert_eq!(refused("traces", "rejected"), 3);
        assert_eq!(refused("logs", "retryable"), 4);
        assert_eq!(refused("metrics", "rejected"), 5);
        assert_eq!(refused("logs", "no_pipeline"), 2);
    }
}
