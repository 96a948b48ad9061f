//! Acknowledgements: how a client learns whether its data is durable.
//!
//! Every received request gets one [`Ack`] and the receiver keeps its [`AckReceiver`]. The `Ack` travels with
//! the data through the pipeline inside a [`Batch`](crate::Batch)'s [`AckSet`]:
//! - batching merges ack sets; splitting or fanning out clones an `Ack` (each clone is one more holder);
//! - an exporter resolves its holders after a durable write ([`Outcome::Delivered`]) or a failure;
//! - a processor that drops data on purpose (sampling) resolves `Delivered`;
//! - a holder dropped without a verdict resolves [`Outcome::Retryable`]: a bug becomes a client retry,
//!   never a false success.
//!
//! When the last holder is gone the receiver gets the worst outcome of all holders. "Worst" puts `Retryable`
//! above `Rejected`: if part of a request can succeed on a retry, telling the client to give up would lose it.
//!
//! Items refused on purpose while the rest of the request is kept (a record over a size limit) are counted
//! with [`Ack::reject_items`] and reach the client as OTLP `partial_success`. Each holder counts its own
//! refusals (a clone starts from its parent's count) and the verdict takes the largest holder count, so a
//! request fanned out to two pipelines that refuse the same record hears it once, not twice. A refusal counted
//! against a merged batch ([`AckSet::reject_items`], e.g. a destination's own partial success) is spread over
//! its requests, never more than a request's own items (see there).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::memory::Reservation;

/// What happened to the data one acknowledgement holder carried.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Durable at the destination (or deliberately dropped).
    Delivered,
    /// Not durable; the client should send it again, after `retry_after` if given.
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Will never be accepted as sent; the client must not retry.
    Rejected { reason: String },
}

impl Outcome {
    /// A retryable outcome with no retry delay hint.
    pub fn retryable(reason: impl Into<String>) -> Self {
        Outcome::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn rejected(reason: impl Into<String>) -> Self {
        Outcome::Rejected {
            reason: reason.into(),
        }
    }

    fn severity(&self) -> u8 {
        match self {
            Outcome::Delivered => 0,
            Outcome::Rejected { .. } => 1,
            Outcome::Retryable { .. } => 2,
        }
    }

    /// Keeps the worse of `self` and `other`; among retryables, the longest retry delay.
    fn merge(&mut self, other: Outcome) {
        match (&mut *self, other) {
            (
                Outcome::Retryable { retry_after, .. },
                Outcome::Retryable {
                    retry_after: other_after,
                    ..
                },
            ) => {
                *retry_after = (*retry_after).max(other_after);
            }
            (this, other) if other.severity() > this.severity() => *this = other,
            _ => {}
        }
    }
}

/// The final answer for one received request.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Items refused on purpose while the rest of the request was kept (OTLP `partial_success`).
    pub rejected_items: u64,
    /// Why they were refused (the first reason given).
    pub rejection_message: Option<String>,
}

struct State {
    outcome: Outcome,
    /// The largest count of any holder that has let go (see the module docs).
    rejected_items: u64,
    /// The request's item count, when the receiver told it ([`Ack::set_items`]).
    items: Option<u64>,
    rejection_message: Option<String>,
    reply: Option<oneshot::Sender<Verdict>>,
    /// Memory held for this request's data until its verdict.
    reservation: Option<Reservation>,
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn with_state(&self, f: impl FnOnce(&mut State)) {
        // A poisoned lock only means another holder panicked mid-update; the state is still a valid verdict.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(reply) = state.reply.take() {
            // The receiver may have gone (client disconnected): nobody to tell, nothing to do.
            let _ = reply.send(Verdict {
                outcome: state.outcome.clone(),
                rejected_items: state.rejected_items,
                rejection_message: state.rejection_message.take(),
            });
        }
    }
}

/// One holder of a request's acknowledgement. See the module docs.
pub struct Ack {
    shared: Arc<Shared>,
    resolved: bool,
    /// Items of the request this holder (and the holders it was cloned from) refused.
    rejected: AtomicU64,
}

impl Ack {
    /// A new acknowledgement for one received request, and the receiver half that awaits its verdict.
    pub fn new() -> (Ack, AckReceiver) {
        let (reply, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                outcome: Outcome::Delivered,
                rejected_items: 0,
                items: None,
                rejection_message: None,
                reply: Some(reply),
                reservation: None,
            }),
        });
        (
            Ack {
                shared,
                resolved: false,
                rejected: AtomicU64::new(0),
            },
            AckReceiver { rx },
        )
    }

    /// Gives this holder's verdict and lets go of it.
    pub fn resolve(mut self, outcome: Outcome) {
        self.resolved = true;
        let rejected = self.rejected.load(Ordering::Relaxed);
        self.shared.with_state(|s| {
            s.outcome.merge(outcome);
            s.rejected_items = s.rejected_items.max(rejected);
        });
    }

    /// Records how many items the request holds: no count of refused items will exceed it.
    pub fn set_items(&self, items: u64) {
        self.shared.with_state(|s| s.items = Some(items));
    }

    /// Items of the request this holder has not counted as refused (`None`: the request's size is unknown).
    fn items_left(&self) -> Option<u64> {
        let mut items = None;
        self.shared.with_state(|s| items = s.items);
        items.map(|n| n.saturating_sub(self.rejected.load(Ordering::Relaxed)))
    }

    /// Keeps `reservation` (the request's share of the memory budget) until the request's verdict.
    pub fn hold(&self, reservation: Reservation) {
        self.shared
            .with_state(|s| s.reservation = Some(reservation));
    }

    /// Counts `count` items of this request as refused on purpose (partial success); the rest goes on.
    /// The count is this holder's (see the module docs) and never exceeds the request's items.
    pub fn reject_items(&self, count: u64, message: &str) {
        let count = self.items_left().map_or(count, |left| count.min(left));
        if count == 0 {
            return;
        }
        self.rejected.fetch_add(count, Ordering::Relaxed);
        self.shared.with_state(|s| {
            if s.rejection_message.is_none() {
                s.rejection_message = Some(message.to_owned());
            }
        });
    }
}

impl Clone for Ack {
    /// One more holder of the same request: the verdict waits for this one too.
    fn clone(&self) -> Self {
        Ack {
            shared: Arc::clone(&self.shared),
            resolved: false,
            rejected: AtomicU64::new(self.rejected.load(Ordering::Relaxed)),
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if !self.resolved {
            let rejected = self.rejected.load(Ordering::Relaxed);
            self.shared.with_state(|s| {
                s.outcome
                    .merge(Outcome::retryable("dropped before it was delivered"));
                s.rejected_items = s.rejected_items.max(rejected);
            });
        }
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack")
            .field("resolved", &self.resolved)
            .finish()
    }
}

/// The receiver's half: resolves once every holder of the request's [`Ack`] is gone.
pub struct AckReceiver {
    rx: oneshot::Receiver<Verdict>,
}

impl AckReceiver {
    /// Waits for the verdict.
    pub async fn wait(self) -> Verdict {
        match self.rx.await {
            Ok(verdict) => verdict,
            // Unreachable in practice (Shared always replies on drop), but never report success for it.
            Err(_) => Verdict {
                outcome: Outcome::retryable("acknowledgement lost"),
                rejected_items: 0,
                rejection_message: None,
            },
        }
    }
}

/// The acknowledgements of every request whose data a batch carries.
#[derive(Clone, Debug, Default)]
pub struct AckSet {
    acks: Vec<Ack>,
}

impl AckSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(ack: Ack) -> Self {
        AckSet { acks: vec![ack] }
    }

    pub fn len(&self) -> usize {
        self.acks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }

    /// Takes over every holder of `other` (batching).
    pub fn merge(&mut self, other: AckSet) {
        self.acks.extend(other.acks);
    }

    /// Resolves every holder with the same outcome.
    pub fn resolve(self, outcome: Outcome) {
        let mut acks = self.acks.into_iter().peekable();
        while let Some(ack) = acks.next() {
            if acks.peek().is_none() {
                ack.resolve(outcome);
                return;
            }
            ack.resolve(outcome.clone());
        }
    }

    /// Counts `count` refused items against the requests in the set. Processors that refuse single items run
    /// before batching, where a set holds exactly one request, so the count reaches the request it belongs to.
    /// For a merged set (a destination's partial success for a whole batch, which does not say whose items it
    /// refused) the count is spread over the requests in order, each taking at most its own items not yet
    /// counted: the clients together hear the destination's count, and none hears more than it sent.
    pub fn reject_items(&self, count: u64, message: &str) {
        let mut left = count;
        for (i, ack) in self.acks.iter().enumerate() {
            if left == 0 {
                break;
            }
            let last = i + 1 == self.acks.len();
            let share = match ack.items_left() {
                Some(items) if !last => left.min(items),
                _ => left,
            };
            ack.reject_items(share, message);
            left -= share;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivered_only_when_every_holder_delivered() {
        let (ack, rx) = Ack::new();
        let second = ack.clone();
        ack.resolve(Outcome::Delivered);
        second.resolve(Outcome::Delivered);
        assert_eq!(rx.wait().await.outcome, Outcome::Delivered);
    }

    #[tokio::test]
    async fn a_dropped_holder_makes_the_request_retryable() {
        let (ack, rx) = Ack::new();
        let second = ack.clone();
        ack.resolve(Outcome::Delivered);
        drop(second);
        assert!(matches!(rx.wait().await.outcome, Outcome::Retryable { .. }));
    }

    #[tokio::test]
    async fn retryable_beats_rejected_beats_delivered() {
        let (ack, rx) = Ack::new();
        let (b, c) = (ack.clone(), ack.clone());
        ack.resolve(Outcome::rejected("bad"));
        b.resolve(Outcome::Delivered);
        c.resolve(Outcome::Retryable {
            reason: "busy".into(),
            retry_after: Some(Duration::from_secs(2)),
        });
        let verdict = rx.wait().await;
        assert_eq!(
            verdict.outcome,
            Outcome::Retryable {
                reason: "busy".into(),
                retry_after: Some(Duration::from_secs(2))
            }
        );

        let (ack, rx) = Ack::new();
        let b = ack.clone();
        ack.resolve(Outcome::rejected("bad"));
        b.resolve(Outcome::Delivered);
        assert_eq!(rx.wait().await.outcome, Outcome::rejected("bad"));
    }

    #[tokio::test]
    async fn partial_rejections_add_up_and_keep_the_first_reason() {
        let (ack, rx) = Ack::new();
        ack.reject_items(2, "record too large");
        ack.reject_items(1, "other");
        ack.resolve(Outcome::Delivered);
        let verdict = rx.wait().await;
        assert_eq!(verdict.outcome, Outcome::Delivered);
        assert_eq!(verdict.rejected_items, 3);
        assert_eq!(
            verdict.rejection_message.as_deref(),
            Some("record too large")
        );
    }

    #[tokio::test]
    async fn two_branches_refusing_the_same_item_count_it_once() {
        let (ack, rx) = Ack::new();
        ack.set_items(3);
        let other_pipeline = ack.clone();
        ack.reject_items(1, "too large");
        other_pipeline.reject_items(1, "too large");
        ack.resolve(Outcome::Delivered);
        other_pipeline.resolve(Outcome::Delivered);
        assert_eq!(rx.wait().await.rejected_items, 1);
    }

    #[tokio::test]
    async fn a_merged_set_spreads_a_count_over_its_requests_within_their_items() {
        let (a, rx_a) = Ack::new();
        let (b, rx_b) = Ack::new();
        a.set_items(2);
        b.set_items(5);
        let mut set = AckSet::single(a);
        set.merge(AckSet::single(b));
        set.reject_items(4, "refused downstream");
        set.resolve(Outcome::Delivered);
        assert_eq!(
            rx_a.wait().await.rejected_items,
            2,
            "no more than its 2 items"
        );
        assert_eq!(rx_b.wait().await.rejected_items, 2, "the rest, once");
    }

    #[tokio::test]
    async fn merged_sets_answer_every_request() {
        let (a, rx_a) = Ack::new();
        let (b, rx_b) = Ack::new();
        let mut set = AckSet::single(a);
        set.merge(AckSet::single(b));
        let copy = set.clone();
        set.resolve(Outcome::Delivered);
        copy.resolve(Outcome::retryable("export failed"));
        assert!(matches!(
            rx_a.wait().await.outcome,
            Outcome::Retryable { .. }
        ));
        assert!(matches!(
            rx_b.wait().await.outcome,
            Outcome::Retryable { .. }
        ));
    }
}
