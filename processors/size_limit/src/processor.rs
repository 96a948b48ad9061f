//! The `size_limit` processor: refuses requests over `max_request_bytes` whole, and drops or truncates the
//! single records (and log lines) over their limits while the rest of the request goes on.
//!
//! Lifecycle: stateless between requests; built per pipeline, nothing to flush, nothing held when dropped.
//! Guarantees:
//! - a refused request resolves `Rejected` with a message naming the limit and the request's size;
//! - a dropped record is counted against its request (`AckSet::reject_items`), which reaches the client as
//!   OTLP `partial_success` with the limit and the record's size; the kept records go on and the request's
//!   verdict waits for them; a request with nothing left resolves `Delivered` here (all of it was refused on
//!   purpose, and the client hears how many);
//! - records within the limits are left exactly as they were;
//! - fast path: a request whose encoded size is within the record limit (and, for logs, the line limit) is
//!   passed on without looking at its records.

use otlake_core::telemetry::{PROCESSOR_DROPPED, PROCESSOR_TRUNCATED};
use otlake_core::{Batch, ComponentId, Outcome, Processor, Signal};

use crate::config::SizeLimitConfig;
use crate::limit::{Checks, Limits, Report, apply, needs_change};

/// The processor's counters, labelled once.
struct Counters {
    dropped_requests: metrics::Counter,
    dropped_records: metrics::Counter,
    dropped_lines: metrics::Counter,
    truncated_records: metrics::Counter,
    truncated_lines: metrics::Counter,
}

impl Counters {
    fn new(id: &ComponentId, signal: Signal) -> Self {
        let counter = |name: &'static str, reason: &'static str| metrics::counter!(name, "processor" => id.to_string(), "signal" => signal.as_str(), "reason" => reason);
        Counters {
            dropped_requests: counter(PROCESSOR_DROPPED, "request_too_large"),
            dropped_records: counter(PROCESSOR_DROPPED, "record_too_large"),
            dropped_lines: counter(PROCESSOR_DROPPED, "log_line_too_large"),
            truncated_records: counter(PROCESSOR_TRUNCATED, "record_too_large"),
            truncated_lines: counter(PROCESSOR_TRUNCATED, "log_line_too_large"),
        }
    }
}

pub struct SizeLimitProcessor {
    max_request: usize,
    limits: Limits,
    counters: Counters,
}

fn to_usize(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

impl SizeLimitProcessor {
    pub fn new(id: &ComponentId, config: &SizeLimitConfig, signal: Signal) -> Self {
        SizeLimitProcessor {
            max_request: to_usize(config.max_request_bytes),
            limits: Limits {
                max_record: to_usize(config.max_record_bytes),
                max_line: to_usize(config.max_log_line_bytes),
                record_action: config.record_action,
                line_action: config.log_line_action,
            },
            counters: Counters::new(id, signal),
        }
    }

    fn count(&self, report: &Report) {
        self.counters
            .dropped_records
            .increment(report.rejected_records);
        self.counters.dropped_lines.increment(report.rejected_lines);
        self.counters
            .truncated_records
            .increment(report.truncated_records);
        self.counters
            .truncated_lines
            .increment(report.truncated_lines);
    }
}

impl Processor for SizeLimitProcessor {
    fn process(&mut self, mut batch: Batch, out: &mut Vec<Batch>) {
        let size = batch.payload.encoded_len();
        if size > self.max_request {
            self.counters
                .dropped_requests
                .increment(batch.item_count() as u64);
            batch.acks.resolve(Outcome::rejected(format!(
                "request of {size} bytes exceeds max_request_bytes ({} bytes)",
                self.max_request
            )));
            return;
        }
        // No record can be larger than its request, no log line larger than its record.
        let checks = Checks {
            records: size > self.limits.max_record,
            lines: batch.signal() == Signal::Logs && size > self.limits.max_line,
        };
        if !(checks.records || checks.lines) {
            out.push(batch);
            return;
        }
        // Only a request large enough to hold an oversize record is decoded to look.
        let needed = batch
            .payload
            .request()
            .map(|request| needs_change(request, &self.limits, checks));
        match needed {
            Ok(false) => {
                out.push(batch);
                return;
            }
            Ok(true) => {}
            Err(e) => {
                batch.acks.resolve(Outcome::rejected(e.to_string()));
                return;
            }
        }
        let mut report = Report::default();
        let Ok(request) = batch.payload_mut().request_mut() else {
            // Decoded just above, so it cannot fail here; a batch is never passed on unchecked.
            batch
                .acks
                .resolve(Outcome::rejected("request does not decode"));
            return;
        };
        apply(request, &self.limits, checks, &mut report);
        self.count(&report);
        if let Some(message) = &report.record_message {
            batch.acks.reject_items(report.rejected_records, message);
        }
        if let Some(message) = &report.line_message {
            batch.acks.reject_items(report.rejected_lines, message);
        }
        if report.rejected() > 0 && batch.item_count() == 0 {
            // Every item was refused on purpose and counted: nothing is left to make durable.
            batch.acks.resolve(Outcome::Delivered);
            return;
        }
        out.push(batch);
    }
}
