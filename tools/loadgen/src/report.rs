//! The run's summary: what was sent, acknowledged, refused, retried and given up on, and the latency of
//! accepted requests; as text for people or one JSON object for scripts.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::args::{LoadgenArgs, Protocol, Signal};
use crate::tally::Tally;

/// Latency percentiles of accepted requests (per attempt), in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub protocol: Protocol,
    pub endpoint: String,
    pub signals: Vec<Signal>,
    pub batch: usize,
    pub concurrency: usize,
    /// Offered items per second (0: as fast as possible).
    pub rate: u64,
    /// Encoded size of one request per signal (bytes, before compression).
    pub request_bytes: Vec<(Signal, usize)>,
    pub elapsed_s: f64,
    pub requests: u64,
    pub items: u64,
    pub bytes: u64,
    pub attempts: u64,
    pub acked_requests: u64,
    pub acked_items: u64,
    pub acked_items_per_s: f64,
    /// Requests accepted with a partial rejection.
    pub partial_requests: u64,
    /// Requests refused for good (not retried).
    pub refused_requests: u64,
    /// Items refused, wholly or by partial rejection.
    pub refused_items: u64,
    /// Requests that stayed retryable through every retry.
    pub failed_requests: u64,
    pub failed_items: u64,
    /// Retries made (attempts beyond the first).
    pub retries: u64,
    pub latency: Latency,
    /// The most frequent error texts with their counts.
    pub errors: Vec<(String, u64)>,
    pub ack_log: Option<String>,
    pub ack_log_error: Option<String>,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl Report {
    pub fn new(
        args: &LoadgenArgs,
        elapsed: Duration,
        t: Tally,
        request_bytes: &[(Signal, usize)],
    ) -> Report {
        let mut errors: Vec<(String, u64)> = t.errors.into_iter().collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.1));
        errors.truncate(5);
        let secs = elapsed.as_secs_f64().max(1e-9);
        Report {
            protocol: args.protocol,
            endpoint: args.endpoint_url(),
            signals: args.signal.clone(),
            batch: args.batch,
            concurrency: args.concurrency,
            rate: args.rate,
            request_bytes: request_bytes.to_vec(),
            elapsed_s: secs,
            requests: t.requests,
            items: t.items,
            bytes: t.bytes,
            attempts: t.attempts,
            acked_requests: t.acked_requests,
            acked_items: t.acked_items,
            acked_items_per_s: t.acked_items as f64 / secs,
            partial_requests: t.partial_requests,
            refused_requests: t.refused_requests,
            refused_items: t.refused_items,
            failed_requests: t.failed_requests,
            failed_items: t.failed_items,
            retries: t.retries,
            latency: Latency {
                p50_ms: ms(t.latency.quantile(0.5)),
                p90_ms: ms(t.latency.quantile(0.9)),
                p99_ms: ms(t.latency.quantile(0.99)),
                max_ms: ms(t.latency.max()),
            },
            errors,
            ack_log: args.ack_log.as_ref().map(|p| p.display().to_string()),
            ack_log_error: t.ack_log_error,
        }
    }

    /// Whether every item sent was acknowledged (and recorded, with an ack log).
    pub fn all_acknowledged(&self) -> bool {
        self.acked_items == self.items && self.partial_requests == 0 && self.ack_log_error.is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signals: Vec<&str> = self.signals.iter().map(|s| s.as_str()).collect();
        let rate = if self.rate == 0 {
            "as fast as possible".to_owned()
        } else {
            format!("{} items/s offered", self.rate)
        };
        writeln!(
            f,
            "otlake loadgen: {:?} {} {} x{} items, concurrency {}, {rate}",
            self.protocol,
            self.endpoint,
            signals.join(","),
            self.batch,
            self.concurrency
        )?;
        writeln!(f, "  elapsed        {:.2} s", self.elapsed_s)?;
        writeln!(
            f,
            "  sent           {} requests, {} items, {:.1} MB",
            self.requests,
            self.items,
            self.bytes as f64 / 1e6
        )?;
        writeln!(
            f,
            "  acknowledged   {} items in {} requests, {:.0} items/s",
            self.acked_items, self.acked_requests, self.acked_items_per_s
        )?;
        writeln!(
            f,
            "  refused        {} items ({} requests refused, {} partially)",
            self.refused_items, self.refused_requests, self.partial_requests
        )?;
        writeln!(
            f,
            "  failed         {} items in {} requests (still retryable after the last retry)",
            self.failed_items, self.failed_requests
        )?;
        writeln!(f, "  retried        {} attempts", self.retries)?;
        writeln!(
            f,
            "  latency        p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms (accepted requests)",
            self.latency.p50_ms, self.latency.p90_ms, self.latency.p99_ms, self.latency.max_ms
        )?;
        if let Some(path) = &self.ack_log {
            writeln!(
                f,
                "  ack log        {path} ({} ids of fully acknowledged requests)",
                self.acked_ids_hint()
            )?;
        }
        if let Some(e) = &self.ack_log_error {
            writeln!(f, "  ack log ERROR  {e}")?;
        }
        for (text, n) in &self.errors {
            writeln!(f, "  error x{n}: {text}")?;
        }
        Ok(())
    }
}

impl Report {
    fn acked_ids_hint(&self) -> &'static str {
        if self.signals.iter().all(|s| *s == Signal::Metrics) {
            "no"
        } else {
            "span/log"
        }
    }
}
