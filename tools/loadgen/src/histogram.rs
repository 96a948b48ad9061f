//! A fixed-memory latency histogram (log-linear buckets, under 1% relative error) for request latencies.
//!
//! Each sender records into its own histogram without locks; the runner merges them at the end. Values are
//! microseconds; the bucket for `v` keeps its 7 most significant bits, so a percentile is reported as the upper
//! edge of its bucket (never below the true value, at most 1/64 above it). The maximum is exact.

const SUB_BITS: u32 = 6; // 64 sub-buckets per power of two
const SUB: u64 = 1 << SUB_BITS;
const GROUPS: usize = 64 - SUB_BITS as usize;

/// Counts of latencies in microseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; (GROUPS + 1) * SUB as usize],
            total: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let group = 63 - v.leading_zeros() - SUB_BITS + 1; // >= 1
    let sub = (v >> (group - 1)) - SUB; // 0..SUB
    (group as usize) * SUB as usize + sub as usize
}

fn upper_edge(i: usize) -> u64 {
    let (group, sub) = ((i / SUB as usize) as u32, (i % SUB as usize) as u64);
    if group == 0 {
        return sub;
    }
    let edge = (u128::from(SUB + sub + 1) << (group - 1)) - 1;
    u64::try_from(edge).unwrap_or(u64::MAX)
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The latency at quantile `q` (0..=1), in microseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_edge(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent_above_the_truth() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, truth) in [(0.5, 50_000u64), (0.9, 90_000), (0.99, 99_000)] {
            let got = h.quantile(q);
            assert!(
                got >= truth && got <= truth + truth / 50,
                "q{q}: {got} vs {truth}"
            );
        }
        assert_eq!(h.max(), 100_000);
        assert_eq!(h.quantile(1.0), 100_000);
    }

    #[test]
    fn small_values_are_exact_and_merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(3);
        b.record(7);
        b.record(7);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile(0.1), 3);
        assert_eq!(a.quantile(0.9), 7);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn every_value_falls_in_a_bucket_whose_edge_covers_it() {
        for v in [
            0,
            1,
            63,
            64,
            65,
            127,
            128,
            1_000,
            123_456,
            u64::MAX / 2,
            u64::MAX,
        ] {
            let i = index(v);
            assert!(upper_edge(i) >= v, "{v}");
        }
    }
}
