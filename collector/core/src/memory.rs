//! The daemon's memory budget: bytes of requests in flight, for the whole process.
//!
//! A receiver reserves a request's estimated in-memory size before it decodes the body, and hands the
//! [`Reservation`] to the request's [`Ack`](crate::Ack), which keeps it until the request's verdict, whichever
//! stage holds the data meanwhile (a batch buffer, an exporter's queue, a Delta writer). When the budget is
//! spent, the receiver answers retryable instead of allocating, so a burst costs the client a retry rather
//! than the model server beside us its memory.
//!
//! One process-wide budget (like the metrics recorder): the service sets its size at start-up
//! (`service.memory_limit`); unset, it is [`DEFAULT_LIMIT`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The budget when the configuration sets none: sized for a sidecar.
pub const DEFAULT_LIMIT: u64 = 256 << 20;
/// Decoded OTLP (prost structs, `String`s, `Vec`s) takes about this many times its protobuf size; a receiver
/// reserves `wire bytes × EXPANSION` (measured on the benchmark's GenAI spans: 2.3–2.8×).
pub const EXPANSION: u64 = 3;

/// A byte budget shared by every receiver.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: AtomicU64,
    used: AtomicU64,
}

/// Bytes held against a budget; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit: AtomicU64::new(limit),
            used: AtomicU64::new(0),
        })
    }

    /// The process-wide budget.
    pub fn global() -> &'static Arc<MemoryBudget> {
        static GLOBAL: OnceLock<Arc<MemoryBudget>> = OnceLock::new();
        GLOBAL.get_or_init(|| MemoryBudget::new(DEFAULT_LIMIT))
    }

    /// Sets the size of the budget (the service does, from its configuration).
    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::SeqCst);
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::SeqCst)
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Reserves `bytes`, or returns `None` if that would exceed the limit. A single request larger than the
    /// whole budget is still admitted when nothing else is in flight, so a limit below the request size limit
    /// slows the daemon down instead of refusing such requests forever.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        let limit = self.limit();
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(bytes);
            if next > limit && used > 0 {
                return None;
            }
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Reservation {
                        budget: Arc::clone(self),
                        bytes,
                    });
                }
                Err(actual) => used = actual,
            }
        }
    }
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Grows the reservation to `bytes` in all (nothing to do if it holds that much already), or returns
    /// `false` when the budget cannot take the difference. As in [`MemoryBudget::try_reserve`], a reservation
    /// alone in the budget may grow past the limit.
    pub fn try_grow_to(&mut self, bytes: u64) -> bool {
        let Some(more) = bytes.checked_sub(self.bytes).filter(|&more| more > 0) else {
            return true;
        };
        let limit = self.budget.limit();
        let mut used = self.budget.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(more);
            if next > limit && used > self.bytes {
                return false;
            }
            match self.budget.used.compare_exchange_weak(
                used,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.bytes += more;
                    return true;
                }
                Err(actual) => used = actual,
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ack, Outcome};

    #[test]
    fn reservations_stop_at_the_limit_and_free_on_drop() {
        let budget = MemoryBudget::new(100);
        let a = budget.try_reserve(60).expect("fits");
        assert!(budget.try_reserve(50).is_none(), "60 + 50 > 100");
        let b = budget.try_reserve(40).expect("fits exactly");
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_reservation_grows_while_the_budget_has_room() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.try_reserve(10).expect("fits");
        let _b = budget.try_reserve(20).expect("fits");
        assert!(a.try_grow_to(80), "10 + 20 + 70 = 100");
        assert!(
            !a.try_grow_to(81),
            "over the limit with another reservation"
        );
        assert!(a.try_grow_to(50), "already holds more");
        assert_eq!((a.bytes(), budget.used()), (80, 100));
        drop(a);
        assert_eq!(budget.used(), 20);
    }

    #[test]
    fn a_request_larger_than_the_budget_passes_alone() {
        let budget = MemoryBudget::new(10);
        let big = budget.try_reserve(50).expect("alone");
        assert!(budget.try_reserve(1).is_none());
        drop(big);
    }

    #[tokio::test]
    async fn an_ack_holds_its_reservation_until_the_verdict() {
        let budget = MemoryBudget::new(1_000);
        let (ack, rx) = Ack::new();
        ack.hold(budget.try_reserve(700).expect("fits"));
        let copy = ack.clone();
        ack.resolve(Outcome::Delivered);
        assert_eq!(budget.used(), 700, "another holder still has the data");
        copy.resolve(Outcome::Delivered);
        assert_eq!(rx.wait().await.outcome, Outcome::Delivered);
        assert_eq!(budget.used(), 0);
    }
}
