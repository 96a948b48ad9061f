//! [`Tally`]: the counters one sender keeps during a run, merged once at the end into the
//! [`Report`](crate::report::Report). It sits below both the runner, which counts, and the report, which
//! summarises, so neither imports the other for it.

use std::collections::BTreeMap;

use crate::histogram::Histogram;

/// Distinct error texts kept per sender (the report shows the most frequent).
const MAX_ERROR_KINDS: usize = 16;

/// Counters of one sender (merged into the report).
#[derive(Default)]
pub struct Tally {
    pub requests: u64,
    pub attempts: u64,
    pub bytes: u64,
    pub items: u64,
    pub acked_requests: u64,
    pub acked_items: u64,
    pub partial_requests: u64,
    pub refused_requests: u64,
    pub refused_items: u64,
    pub failed_requests: u64,
    pub failed_items: u64,
    pub retries: u64,
    pub latency: Histogram,
    pub errors: BTreeMap<String, u64>,
    pub ack_log_error: Option<String>,
}

impl Tally {
    pub(crate) fn error(&mut self, reason: String) {
        if let Some(n) = self.errors.get_mut(&reason) {
            *n += 1;
        } else if self.errors.len() < MAX_ERROR_KINDS {
            self.errors.insert(reason, 1);
        }
    }

    pub fn merge(&mut self, o: Tally) {
        self.requests += o.requests;
        self.attempts += o.attempts;
        self.bytes += o.bytes;
        self.items += o.items;
        self.acked_requests += o.acked_requests;
        self.acked_items += o.acked_items;
        self.partial_requests += o.partial_requests;
        self.refused_requests += o.refused_requests;
        self.refused_items += o.refused_items;
        self.failed_requests += o.failed_requests;
        self.failed_items += o.failed_items;
        self.retries += o.retries;
        self.latency.merge(&o.latency);
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        if self.ack_log_error.is_none() {
            self.ack_log_error = o.ack_log_error;
        }
    }
}
