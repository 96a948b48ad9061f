//! The in-memory sending queue, bounded in batches, items and bytes at once.
//!
//! Each bound is a semaphore whose permits a request holds from `push` until its lease is settled (or
//! dropped), so the bounds cover waiting and in-flight requests alike. A request larger than a whole bound
//! takes all of it: it waits until everything before it is gone, then travels alone (never stuck forever).
//! Only the exporter's input loop pushes, so the semaphores are always taken in the same order by one task and
//! cannot deadlock.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use otlake_core::{AckSet, Verdict};

use super::{Lease, LeaseHold, Request, SendingQueue};
use crate::config::QueueLimits;

/// One bound: a semaphore and how many permits it started with.
struct Bound {
    semaphore: Arc<Semaphore>,
    capacity: usize,
}

impl Bound {
    /// `None` when the limit is effectively unbounded.
    fn new(limit: u64) -> Option<Bound> {
        if limit == u64::MAX {
            return None;
        }
        let capacity = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        Some(Bound {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
        })
    }

    async fn take(&self, amount: usize) -> Option<OwnedSemaphorePermit> {
        let amount = amount.clamp(1, self.capacity);
        let amount = u32::try_from(amount).unwrap_or(u32::MAX);
        // Only fails if the semaphore is closed, which this queue never does.
        Arc::clone(&self.semaphore)
            .acquire_many_owned(amount)
            .await
            .ok()
    }

    fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

/// The budget a request holds until it is settled.
struct MemoryHold {
    _permits: Vec<OwnedSemaphorePermit>,
    /// Requests held (waiting or in flight); one less when this hold goes.
    depth: metrics::Gauge,
}

impl Drop for MemoryHold {
    fn drop(&mut self) {
        self.depth.decrement(1.0);
    }
}

impl LeaseHold for MemoryHold {
    fn settle(self: Box<Self>, acks: AckSet, verdict: &Verdict) {
        if verdict.rejected_items > 0 {
            let message = verdict.rejection_message.as_deref().unwrap_or_default();
            acks.reject_items(verdict.rejected_items, message);
        }
        acks.resolve(verdict.outcome.clone());
        // The permits go back when `self` drops here, after the acknowledgements are resolved.
    }
}

type Entry = (Request, MemoryHold);

/// See the module docs.
pub struct MemoryQueue {
    batches: Option<Bound>,
    items: Option<Bound>,
    bytes: Option<Bound>,
    // std Mutex: held only to clone or drop the sender, never across an await.
    tx: Mutex<Option<mpsc::UnboundedSender<Entry>>>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Entry>>,
    depth: metrics::Gauge,
}

impl MemoryQueue {
    /// `stage` labels the queue-depth gauge (`otlake_queue_depth_batches{stage="exporter/otlp/sending_queue"}`).
    pub fn new(limits: QueueLimits, stage: &str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        MemoryQueue {
            depth: metrics::gauge!(otlake_core::telemetry::QUEUE_DEPTH, "stage" => stage.to_owned()),
            batches: Bound::new(limits.max_batches),
            items: Bound::new(limits.max_items),
            bytes: Bound::new(limits.max_bytes),
            tx: Mutex::new(Some(tx)),
            rx: tokio::sync::Mutex::new(rx),
        }
    }

    fn sender(&self) -> Option<mpsc::UnboundedSender<Entry>> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Bytes that can still be taken without waiting (for tests and gauges).
    pub fn free_bytes(&self) -> Option<usize> {
        self.bytes.as_ref().map(Bound::available)
    }
}

#[async_trait]
impl SendingQueue for MemoryQueue {
    async fn push(&self, request: Request) -> Result<(), Request> {
        let Some(tx) = self.sender() else {
            return Err(request);
        };
        let mut permits = Vec::with_capacity(3);
        for (bound, amount) in [
            (&self.batches, 1),
            (&self.items, request.items),
            (&self.bytes, request.bytes),
        ] {
            if let Some(bound) = bound {
                match bound.take(amount).await {
                    Some(permit) => permits.push(permit),
                    None => return Err(request),
                }
            }
        }
        self.depth.increment(1.0);
        let hold = MemoryHold {
            _permits: permits,
            depth: self.depth.clone(),
        };
        tx.send((request, hold))
            .map_err(|mpsc::error::SendError((request, _))| request)
    }

    async fn pop(&self) -> Option<Lease> {
        let (request, hold) = self.rx.lock().await.recv().await?;
        Some(Lease::new(request, Box::new(hold)))
    }

    fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use otlake_core::Outcome;
    use otlake_core::test_util::{batch_with_ack, sample_logs};

    use super::*;

    fn limits(max_batches: u64, max_bytes: u64) -> QueueLimits {
        QueueLimits {
            max_batches,
            max_items: u64::MAX,
            max_bytes,
            consumers: 1,
        }
    }

    fn request() -> (Request, otlake_core::AckReceiver) {
        let (batch, rx) = batch_with_ack(sample_logs(1, 10));
        (Request::new(batch.payload, batch.acks), rx)
    }

    #[tokio::test]
    async fn a_full_queue_makes_push_wait_until_a_lease_is_settled() {
        let queue = MemoryQueue::new(limits(1, u64::MAX), "test");
        let (first, first_ack) = request();
        queue.push(first).await.expect("room for one");
        let (second, _) = request();
        let blocked = tokio::time::timeout(Duration::from_millis(100), queue.push(second)).await;
        assert!(blocked.is_err(), "the second push must wait");

        let lease = queue.pop().await.expect("one queued");
        let (third, _) = request();
        // Still held: popped is not settled.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), queue.push(third))
                .await
                .is_err()
        );
        lease.settle(Verdict {
            outcome: Outcome::Delivered,
            rejected_items: 2,
            rejection_message: Some("too old".into()),
        });
        let verdict = first_ack.wait().await;
        assert_eq!(verdict.outcome, Outcome::Delivered);
        assert_eq!(verdict.rejected_items, 2);
        let (fourth, _) = request();
        tokio::time::timeout(Duration::from_secs(5), queue.push(fourth))
            .await
            .expect("room again")
            .expect("open");
    }

    #[tokio::test]
    async fn an_oversized_request_travels_alone_and_bytes_are_returned() {
        let (big, _) = request();
        let cap = big.bytes / 2;
        let queue = MemoryQueue::new(limits(u64::MAX, cap as u64), "test");
        queue.push(big).await.expect("takes the whole budget");
        assert_eq!(queue.free_bytes(), Some(0));
        let lease = queue.pop().await.expect("queued");
        drop(lease); // a dropped lease gives its budget back (and its acks resolve retryable)
        assert_eq!(queue.free_bytes(), Some(cap));
    }

    #[tokio::test]
    async fn close_drains_then_ends() {
        let queue = MemoryQueue::new(limits(10, u64::MAX), "test");
        let (a, _) = request();
        queue.push(a).await.expect("open");
        queue.close();
        let (b, _) = request();
        assert!(queue.push(b).await.is_err(), "closed");
        let lease = queue
            .pop()
            .await
            .expect("what was queued is still handed out");
        assert_eq!(lease.payload.signal(), otlake_core::Signal::Logs);
        assert!(queue.pop().await.is_none());
    }
}
