//! Unique ids, cheaply: a per-run random nonce plus a counter, mixed by SplitMix64's finalizer.
//!
//! The finalizer is a bijection on `u64`, so distinct counter values give distinct ids within a run; the random
//! nonce makes collisions between runs as unlikely as for random ids. A request reserves all the ids it needs
//! with one atomic add. Ids are never zero (zero means "no id" in OTLP).

use std::sync::atomic::{AtomicU64, Ordering};

/// Hands out blocks of unique 64-bit ids; shared by every sender of a run.
#[derive(Debug)]
pub struct IdSource {
    nonce: u64,
    trace_high: u64,
    next: AtomicU64,
}

impl IdSource {
    /// A source whose ids are unique within the run and random-looking across runs (`nonce` from a RNG).
    pub fn new(nonce: u64) -> IdSource {
        IdSource {
            nonce,
            trace_high: mix(nonce ^ 0x5bd1_e995_5bd1_e995),
            next: AtomicU64::new(0),
        }
    }

    /// Reserves `count` consecutive counter values; the block maps them to ids.
    pub fn reserve(&self, count: u64) -> IdBlock {
        let base = self.next.fetch_add(count, Ordering::Relaxed);
        IdBlock {
            base,
            nonce: self.nonce,
            trace_high: self.trace_high,
        }
    }
}

/// The ids one request may use: `id(k)` for k below the reserved count.
#[derive(Clone, Copy, Debug)]
pub struct IdBlock {
    base: u64,
    nonce: u64,
    trace_high: u64,
}

impl IdBlock {
    /// The k-th 64-bit id of the block (span ids, log uids).
    pub fn id(&self, k: u64) -> u64 {
        nonzero(mix(self.base.wrapping_add(k).wrapping_add(self.nonce)))
    }

    /// The k-th 128-bit trace id: a per-run high half and the k-th id as the low half.
    pub fn trace_id(&self, k: u64) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.trace_high.to_be_bytes());
        out[8..].copy_from_slice(&self.id(k).to_be_bytes());
        out
    }
}

/// SplitMix64's output function: a bijection with good avalanche.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn nonzero(v: u64) -> u64 {
    if v == 0 { 1 } else { v }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `v` as 16 lowercase hex digits (big-endian, as OTLP/JSON prints ids).
pub fn hex16(v: u64, out: &mut [u8; 16]) {
    for (i, byte) in v.to_be_bytes().iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_nonzero_across_blocks() {
        let source = IdSource::new(42);
        let mut seen = HashSet::new();
        for _ in 0..100 {
            let block = source.reserve(100);
            for k in 0..100 {
                let id = block.id(k);
                assert_ne!(id, 0);
                assert!(seen.insert(id), "duplicate id {id:x}");
            }
        }
        assert_eq!(seen.len(), 10_000);
    }

    #[test]
    fn different_runs_give_different_ids() {
        let a = IdSource::new(1).reserve(1).id(0);
        let b = IdSource::new(2).reserve(1).id(0);
        assert_ne!(a, b);
    }

    #[test]
    fn hex_matches_the_standard_formatting() {
        let mut out = [0u8; 16];
        hex16(0x00ab_cdef_0123_4567, &mut out);
        assert_eq!(
            &out,
            format!("{:016x}", 0x00ab_cdef_0123_4567_u64).as_bytes()
        );
    }

    #[test]
    fn trace_ids_share_the_run_prefix_and_differ_in_the_rest() {
        let block = IdSource::new(7).reserve(2);
        let (a, b) = (block.trace_id(0), block.trace_id(1));
        assert_eq!(a[..8], b[..8]);
        assert_ne!(a[8..], b[8..]);
    }
}
