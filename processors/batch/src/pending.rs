//! One pending batch: the merged payload of the requests collected so far and, for each request, its
//! acknowledgements and where its items sit in the merged payload.
//!
//! Lifecycle: created when the first request of a key arrives, drained when a trigger fires (size, bytes,
//! timeout, flush). Guarantees:
//! - merging moves the requests' resource groups; nothing is re-encoded or copied (unless a fan-out branch
//!   still shares the incoming payload);
//! - every acknowledgement leaves with the data: a drained part carries the acknowledgements of exactly the
//!   requests whose items it holds (an acknowledgement whose request spans two parts is cloned into both), so
//!   an export failure reaches every client whose data was in the failed part, and no client hears success for
//!   data that was in another part;
//! - no acknowledgement is resolved here, except for data that cannot be split because it does not decode
//!   (refused, as every later stage would refuse it).

use otlake_core::{AckSet, Outcome, Payload};
use tokio::time::Instant;

/// When a pending batch is sent and how large a sent batch may be.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Send once this many items are pending.
    pub send_batch_size: usize,
    /// Split sent batches above this many items (`usize::MAX`: never).
    pub max_items: usize,
    /// Send once this many encoded bytes are pending, and split above it (`usize::MAX`: never).
    pub max_bytes: usize,
}

impl Limits {
    fn triggers(&self, items: usize, bytes: usize) -> bool {
        items >= self.send_batch_size || bytes >= self.max_bytes
    }

    fn needs_split(&self, items: usize, bytes: usize) -> bool {
        items > self.max_items || bytes > self.max_bytes
    }

    /// Whether encoded sizes matter at all (computing them walks the whole request).
    pub fn counts_bytes(&self) -> bool {
        self.max_bytes != usize::MAX
    }
}

/// The data of one request inside a pending batch: its acknowledgements and its entries' positions.
///
/// Positions count entries (spans, log records, `Metric`s), not items: every entry goes to exactly one part
/// when splitting, even a metric without data points, so a position range pins a request's data exactly.
struct Contribution {
    acks: AckSet,
    start: usize,
    end: usize,
}

/// A drained part, ready to leave the processor.
pub(crate) struct Drained {
    pub payload: Payload,
    pub acks: AckSet,
}

pub(crate) struct Pending {
    payload: Option<Payload>,
    contributions: Vec<Contribution>,
    entries: usize,
    items: usize,
    bytes: usize,
    /// When this batch must be sent at the latest (first arrival + timeout).
    pub deadline: Instant,
}

impl Pending {
    pub fn new(deadline: Instant) -> Self {
        Pending {
            payload: None,
            contributions: Vec::new(),
            entries: 0,
            items: 0,
            bytes: 0,
            deadline,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.payload.is_none() && self.contributions.is_empty()
    }

    /// Appends one request. `bytes` is its encoded length, or 0 when bytes are not counted. Gives the request
    /// back if it is of another signal (a wiring bug the caller reports).
    pub fn add(
        &mut self,
        payload: Payload,
        acks: AckSet,
        items: usize,
        bytes: usize,
    ) -> Result<(), (Payload, AckSet)> {
        let entries = payload.entry_count();
        match &mut self.payload {
            None => self.payload = Some(payload),
            Some(merged) => {
                if let Err(payload) = merged.merge(payload) {
                    return Err((payload, acks));
                }
            }
        }
        self.contributions.push(Contribution {
            acks,
            start: self.entries,
            end: self.entries + entries,
        });
        self.entries += entries;
        self.items += items;
        self.bytes += bytes;
        Ok(())
    }

    /// Whether the size or byte trigger has fired.
    pub fn is_full(&self, limits: &Limits) -> bool {
        self.items > 0 && limits.triggers(self.items, self.bytes)
    }

    /// Sends everything (timeout, flush), split by the caps.
    pub fn drain_all(self, limits: &Limits, out: &mut Vec<Drained>) {
        let _ = self.drain(limits, false, out);
    }

    /// Sends what the size or byte trigger asks for. A trailing part that would not fire a trigger on its own
    /// stays pending (as in the Collector: a 15,000-item batch with `send_batch_max_size` 10,000 and
    /// `send_batch_size` 8,192 sends 10,000 and keeps 5,000), with the original deadline.
    pub fn drain_full(&mut self, limits: &Limits, out: &mut Vec<Drained>) {
        let deadline = self.deadline;
        let this = std::mem::replace(self, Pending::new(deadline));
        if let Some(rest) = this.drain(limits, true, out) {
            *self = rest;
        }
    }

    fn drain(self, limits: &Limits, keep_tail: bool, out: &mut Vec<Drained>) -> Option<Pending> {
        let Some(payload) = self.payload else {
            // Nothing was ever added (every `add` stores a payload), so there are no acknowledgements either.
            return None;
        };
        if !limits.needs_split(self.items, self.bytes) {
            out.push(Drained {
                payload,
                acks: merge_acks(self.contributions),
            });
            return None;
        }
        let signal = payload.signal();
        let parts = match payload.split(limits.max_items, limits.max_bytes) {
            Ok(parts) => parts,
            Err(e) => {
                // Undecodable (see `PayloadDecodeError`): the same bytes would fail again, so refuse them.
                merge_acks(self.contributions).resolve(Outcome::rejected(e.to_string()));
                return None;
            }
        };
        if parts.is_empty() {
            // Resource or scope groups without any item: nothing worth sending, but the acknowledgements still
            // go downstream so that the exporter, not this processor, answers the clients.
            out.push(Drained {
                payload: Payload::empty(signal),
                acks: merge_acks(self.contributions),
            });
            return None;
        }
        let mut per_part = assign(parts.iter().map(Payload::entry_count), self.contributions);
        let mut parts: Vec<Payload> = parts;
        let mut tail = None;
        if keep_tail && parts.len() > 1 {
            let last = parts.len() - 1;
            let items = parts[last].item_count();
            let bytes = if limits.counts_bytes() {
                parts[last].encoded_len()
            } else {
                0
            };
            if !limits.triggers(items, bytes) {
                let contributions = per_part.pop().unwrap_or_default();
                let entries = parts[last].entry_count();
                tail = parts.pop().map(|payload| Pending {
                    payload: Some(payload),
                    contributions,
                    entries,
                    items,
                    bytes,
                    deadline: self.deadline,
                });
            }
        }
        for (payload, contributions) in parts.into_iter().zip(per_part) {
            out.push(Drained {
                payload,
                acks: merge_acks(contributions),
            });
        }
        tail
    }
}

fn merge_acks(contributions: Vec<Contribution>) -> AckSet {
    let mut acks = AckSet::new();
    for c in contributions {
        acks.merge(c.acks);
    }
    acks
}

/// Hands each request's acknowledgements to every part holding some of its entries (cloned where it spans
/// several), with positions rebased to the part. A request without entries goes with the part at its
/// position (or the last), so that its acknowledgements still reach an exporter.
fn assign(
    part_entries: impl Iterator<Item = usize>,
    contributions: Vec<Contribution>,
) -> Vec<Vec<Contribution>> {
    let mut bounds = Vec::new();
    let mut position = 0;
    for entries in part_entries {
        bounds.push((position, position + entries));
        position += entries;
    }
    let last_part = bounds.len().saturating_sub(1);
    let mut per_part: Vec<Vec<Contribution>> = bounds.iter().map(|_| Vec::new()).collect();
    for c in contributions {
        let first = bounds
            .partition_point(|&(_, end)| end <= c.start)
            .min(last_part);
        let last = bounds
            .partition_point(|&(start, _)| start < c.end)
            .saturating_sub(1)
            .max(first);
        let rebased = |k: usize, acks: AckSet| {
            let (start, end) = bounds[k];
            Contribution {
                acks,
                start: c.start.clamp(start, end) - start,
                end: c.end.clamp(start, end) - start,
            }
        };
        for (k, part) in per_part.iter_mut().enumerate().take(last).skip(first) {
            part.push(rebased(k, c.acks.clone()));
        }
        let moved = rebased(last, c.acks);
        per_part[last].push(moved);
    }
    per_part
}

/// Spans, log records or `Metric`s: the units a split never cuts.
#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::test_util::{batch_with_ack, sample_logs};
    use otlake_core::{AckReceiver, Outcome};

    fn limits(send_batch_size: usize, max_items: usize) -> Limits {
        Limits {
            send_batch_size,
            max_items,
            max_bytes: usize::MAX,
        }
    }

    fn add_logs(pending: &mut Pending, records: usize) -> AckReceiver {
        let (batch, rx) = batch_with_ack(sample_logs(1, records));
        let items = batch.item_count();
        let (payload, acks, _) = batch.into_parts();
        assert!(pending.add(payload, acks, items, 0).is_ok());
        rx
    }

    #[tokio::test]
    async fn a_split_part_carries_only_the_acks_of_its_requests() {
        let mut pending = Pending::new(Instant::now());
        let first = add_logs(&mut pending, 4);
        let second = add_logs(&mut pending, 4);
        let third = add_logs(&mut pending, 4);
        let mut out = Vec::new();
        pending.drain_all(&limits(6, 6), &mut out);
        // Parts: [first 4 + second 2], [second 2 + third 4].
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].acks.len(), 2);
        assert_eq!(out[1].acks.len(), 2);
        let mut parts = out.into_iter();
        let (a, b) = (parts.next().expect("part"), parts.next().expect("part"));
        a.acks.resolve(Outcome::retryable("part one failed"));
        b.acks.resolve(Outcome::Delivered);
        assert!(matches!(
            first.wait().await.outcome,
            Outcome::Retryable { .. }
        ));
        assert!(matches!(
            second.wait().await.outcome,
            Outcome::Retryable { .. }
        ));
        assert_eq!(third.wait().await.outcome, Outcome::Delivered);
    }

    #[tokio::test]
    async fn a_tail_below_the_trigger_stays_pending_with_its_acks() {
        let mut pending = Pending::new(Instant::now());
        let _first = add_logs(&mut pending, 10);
        let second = add_logs(&mut pending, 5);
        let mut out = Vec::new();
        let limits = limits(8, 10);
        assert!(pending.is_full(&limits));
        pending.drain_full(&limits, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload.item_count(), 10);
        assert_eq!(out[0].acks.len(), 1);
        assert!(!pending.is_empty());
        assert!(!pending.is_full(&limits));
        let mut rest = Vec::new();
        pending.drain_all(&limits, &mut rest);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].payload.item_count(), 5);
        let part = rest.pop().expect("part");
        part.acks.resolve(Outcome::Delivered);
        assert_eq!(second.wait().await.outcome, Outcome::Delivered);
    }

    #[test]
    fn requests_without_entries_go_with_a_neighbour() {
        let contributions = vec![
            Contribution {
                acks: AckSet::new(),
                start: 0,
                end: 3,
            },
            Contribution {
                acks: AckSet::new(),
                start: 3,
                end: 3,
            },
            Contribution {
                acks: AckSet::new(),
                start: 3,
                end: 6,
            },
            Contribution {
                acks: AckSet::new(),
                start: 6,
                end: 6,
            },
        ];
        let per_part = assign([3usize, 3].into_iter(), contributions);
        let ranges: Vec<Vec<(usize, usize)>> = per_part
            .iter()
            .map(|p| p.iter().map(|c| (c.start, c.end)).collect())
            .collect();
        assert_eq!(ranges, vec![vec![(0, 3)], vec![(0, 0), (0, 3), (3, 3)]]);
    }
}
