//! Consistent probability sampling (OpenTelemetry "TraceState: Probability Sampling", OTEP 235).
//!
//! Every trace carries 56 bits of randomness R: the explicit `rv` of its tracestate if present, otherwise
//! the low 56 bits (last 7 bytes) of its trace id, which W3C Trace Context level 2 makes random. A sampler
//! with rejection threshold T keeps the trace iff R >= T; the probability is (2^56 - T) / 2^56. Because R is
//! a function of the trace alone, every sampler (each sidecar, each restart) with the same T makes the same
//! decision, and a kept span's adjusted count is 2^56 / (2^56 - T), written as `th` (T in hex, 14 digits with
//! trailing zeros removed; `th:0` is 100%).

/// 2^56: one more than the largest randomness value.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;

/// Hex digits of a full threshold or randomness value.
const HEX_DIGITS: usize = 14;

/// A rejection threshold: keep iff randomness >= threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

/// 56 random bits of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Randomness(u64);

impl Threshold {
    /// Keeps everything (`th:0`).
    pub const ALWAYS: Threshold = Threshold(0);
    /// Keeps nothing (not expressible as `th`).
    pub const NEVER: Threshold = Threshold(MAX_ADJUSTED_COUNT);

    /// The threshold for keeping `percentage` % (0-100), rounded to `precision` significant hex digits (leading
    /// `f`s do not count, so small probabilities keep their precision), as the Collector does.
    pub fn from_percentage(percentage: f64, precision: u8) -> Threshold {
        let probability = percentage / 100.0;
        if probability.is_nan() || probability <= 0.0 {
            return Threshold::NEVER;
        }
        if probability >= 1.0 {
            return Threshold::ALWAYS;
        }
        let scaled = (probability * MAX_ADJUSTED_COUNT as f64).round() as u64;
        let exact = MAX_ADJUSTED_COUNT.saturating_sub(scaled);
        let leading_fs = format!("{exact:014x}")
            .bytes()
            .take_while(|&b| b == b'f')
            .count();
        let digits = (usize::from(precision.max(1)) + leading_fs).min(HEX_DIGITS);
        let step = 1u64 << (4 * (HEX_DIGITS - digits));
        let rounded = exact.saturating_add(step / 2) / step * step;
        // Rounding never reaches 2^56 (that would need a run of `f`s longer than counted), but a threshold
        // must stay expressible.
        Threshold(rounded.min(MAX_ADJUSTED_COUNT - 1))
    }

    /// Parses a `th` value: 1-14 hex digits, left-aligned (missing digits are trailing zeros).
    pub fn parse(text: &str) -> Option<Threshold> {
        if text.is_empty()
            || text.len() > HEX_DIGITS
            || !text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let value = u64::from_str_radix(text, 16).ok()?;
        Some(Threshold(value << (4 * (HEX_DIGITS - text.len()))))
    }

    /// The `th` value, or `None` for [`Threshold::NEVER`].
    pub fn encode(self) -> Option<String> {
        if self.0 >= MAX_ADJUSTED_COUNT {
            return None;
        }
        let full = format!("{:014x}", self.0);
        let trimmed = full.trim_end_matches('0');
        Some(if trimmed.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        })
    }

    pub fn keeps(self, randomness: Randomness) -> bool {
        randomness.0 >= self.0
    }

    /// The probability of keeping, 0-1.
    pub fn probability(self) -> f64 {
        (MAX_ADJUSTED_COUNT - self.0.min(MAX_ADJUSTED_COUNT)) as f64 / MAX_ADJUSTED_COUNT as f64
    }

    /// Sampling with `self` after an upstream sampled with `other`: the product of the probabilities.
    pub fn proportional(self, other: Threshold) -> Threshold {
        let keep = |t: Threshold| u128::from(MAX_ADJUSTED_COUNT - t.0.min(MAX_ADJUSTED_COUNT));
        let product = keep(self) * keep(other) / u128::from(MAX_ADJUSTED_COUNT);
        // `product` <= 2^56 by construction.
        Threshold(MAX_ADJUSTED_COUNT - u64::try_from(product).unwrap_or(MAX_ADJUSTED_COUNT))
    }
}

impl Randomness {
    /// The low 56 bits of a 16-byte trace id; `None` for a missing or malformed id.
    pub fn of_trace_id(trace_id: &[u8]) -> Option<Randomness> {
        let bytes: &[u8; 16] = trace_id.try_into().ok()?;
        if bytes.iter().all(|&b| b == 0) {
            return None; // the invalid all-zero id
        }
        let mut value = 0u64;
        for &b in &bytes[9..] {
            value = value << 8 | u64::from(b);
        }
        Some(Randomness(value))
    }

    /// Parses an explicit `rv` value: exactly 14 hex digits.
    pub fn parse(text: &str) -> Option<Randomness> {
        if text.len() != HEX_DIGITS {
            return None;
        }
        u64::from_str_radix(text, 16).ok().map(Randomness)
    }

    /// 56 bits out of an arbitrary 64-bit hash (for records without a trace id).
    pub fn from_hash(hash: u64) -> Randomness {
        Randomness(hash >> 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples_encode_as_documented() {
        // From the specification's table: 100% → 0, 50% → 8, 25% → c, 10% → e666 at precision 4, 1% → fd70a.
        let th = |pct: f64| Threshold::from_percentage(pct, 4).encode();
        assert_eq!(th(100.0).as_deref(), Some("0"));
        assert_eq!(th(50.0).as_deref(), Some("8"));
        assert_eq!(th(25.0).as_deref(), Some("c"));
        assert_eq!(th(10.0).as_deref(), Some("e666"));
        assert_eq!(th(1.0).as_deref(), Some("fd70a"));
        assert_eq!(th(0.0), None);
    }

    #[test]
    fn parse_is_left_aligned_and_round_trips() {
        assert_eq!(Threshold::parse("8"), Some(Threshold(1 << 55)));
        assert_eq!(Threshold::parse("0"), Some(Threshold::ALWAYS));
        assert_eq!(Threshold::parse("fffffffffffffff"), None, "15 digits");
        assert_eq!(Threshold::parse("xyz"), None);
        let t = Threshold::from_percentage(33.3, 6);
        assert_eq!(Threshold::parse(&t.encode().expect("expressible")), Some(t));
    }

    #[test]
    fn randomness_is_the_last_seven_bytes() {
        let mut id = [0u8; 16];
        id[8] = 0xff; // not part of the randomness
        id[9..].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 1]);
        let r = Randomness::of_trace_id(&id).expect("valid id");
        assert_eq!(r, Randomness((0x80 << 48) | 1));
        assert!(Threshold::parse("8").expect("valid").keeps(r));
        assert!(!Threshold::parse("81").expect("valid").keeps(r));
        assert_eq!(Randomness::of_trace_id(&[0; 16]), None);
        assert_eq!(Randomness::of_trace_id(&[1; 8]), None);
        assert_eq!(Randomness::parse("80000000000001"), Some(r));
    }

    #[test]
    fn proportional_multiplies_probabilities() {
        let half = Threshold::from_percentage(50.0, 4);
        let quarter = half.proportional(half);
        assert_eq!(quarter, Threshold::from_percentage(25.0, 4));
        assert_eq!(Threshold::ALWAYS.proportional(half), half);
    }
}
