//! Admission against the daemon's memory budget ([`otlake_core::MemoryBudget`]): before a request body is
//! decoded, the receiver reserves `wire bytes × EXPANSION` (the decoded request's estimated size); when the
//! budget is spent the request is answered retryable (HTTP 503 + `Retry-After`, gRPC `UNAVAILABLE` +
//! `RetryInfo`) without being decoded, so a burst costs the client a retry instead of the daemon its memory.
//!
//! Lifecycle: one [`Admission`] per receiver, made with the process-wide budget (tests may give their own). An
//! admitted request's [`Reservation`] goes to the request's acknowledgement (`Ack::hold`), which keeps it until
//! the verdict, whichever stage holds the data meanwhile.
//!
//! Counting: a refusal is counted in `otlake_receiver_refused_items_total` with `reason="memory"`. The body was
//! not decoded, so its item count is unknown: for this reason the counter counts requests, not items.

use std::sync::Arc;
use std::time::Duration;

use metrics::Counter;
use otlake_core::memory::EXPANSION;
use otlake_core::telemetry::RECEIVER_REFUSED;
use otlake_core::{ComponentId, MemoryBudget, Reservation, Signal};

use crate::answer::Answer;

/// The delay a client is told to wait after a memory refusal: in-flight requests free their share as soon as
/// their verdict comes, usually well within a second.
pub const MEMORY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Reserves each request's share of the memory budget before it is decoded.
pub struct Admission {
    budget: Arc<MemoryBudget>,
    refused: [Counter; 3],
}

fn index(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Logs => 1,
        Signal::Metrics => 2,
    }
}

impl Admission {
    /// Admission against `budget` (the daemon passes [`MemoryBudget::global`]).
    pub fn new(id: &ComponentId, budget: Arc<MemoryBudget>) -> Self {
        let receiver = id.to_string();
        let refused = Signal::ALL.map(|signal| {
            metrics::counter!(RECEIVER_REFUSED, "receiver" => receiver.clone(),
                "signal" => signal.as_str(), "reason" => "memory")
        });
        Admission { budget, refused }
    }

    /// The bytes a request of `wire_bytes` on the wire is expected to take once decoded.
    pub fn estimate(wire_bytes: u64) -> u64 {
        wire_bytes.saturating_mul(EXPANSION)
    }

    /// Reserves the decoded size of a `signal` request of `wire_bytes`, or answers retryable (and counts it).
    pub fn admit(&self, signal: Signal, wire_bytes: u64) -> Result<Reservation, Answer> {
        let bytes = Self::estimate(wire_bytes);
        self.budget
            .try_reserve(bytes)
            .ok_or_else(|| self.refuse(signal))
    }

    /// Grows an admitted request's reservation to the decoded size of `wire_bytes` once more of it is known
    /// (a chunked body as it arrives, a compressed body as it inflates), or answers retryable (and counts it).
    pub fn grow(
        &self,
        signal: Signal,
        reservation: &mut Reservation,
        wire_bytes: u64,
    ) -> Result<(), Answer> {
        if reservation.try_grow_to(Self::estimate(wire_bytes)) {
            Ok(())
        } else {
            Err(self.refuse(signal))
        }
    }

    fn refuse(&self, signal: Signal) -> Answer {
        self.refused[index(signal)].increment(1);
        Answer::Retry {
            message: format!(
                "the collector's memory budget is spent ({} of {} bytes in flight); retry later",
                self.budget.used(),
                self.budget.limit()
            ),
            retry_after: Some(MEMORY_RETRY_AFTER),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_until_the_budget_is_spent_and_again_after_release() {
        let budget = MemoryBudget::new(10 * EXPANSION);
        let admission = Admission::new(&ComponentId::new("otlp"), Arc::clone(&budget));
        let first = admission.admit(Signal::Traces, 6).expect("fits");
        assert_eq!(budget.used(), 6 * EXPANSION);
        let refused = admission
            .admit(Signal::Traces, 6)
            .expect_err("6 + 6 > 10 wire bytes");
        assert!(
            matches!(refused, Answer::Retry { retry_after: Some(d), ref message } if d == MEMORY_RETRY_AFTER && message.contains("memory budget")),
            "{refused:?}"
        );
        drop(first);
        assert_eq!(budget.used(), 0);
        admission.admit(Signal::Traces, 6).expect("fits again");
    }
}
