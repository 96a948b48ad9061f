//! Which keys of an attribute list are given again later in it: a map keeps only a key's last value, and
//! finding the repeats must stay cheap for the usual short list and linear for a pathological long one.

use otlake_core::proto::common::v1::KeyValue;

/// Which keys of an attribute list are given again later in it (a map keeps only a key's last value).
pub enum KeyRepeats {
    /// No key is given twice (certain).
    None,
    /// A key may be given twice: compare each key with the later ones (lists of at most [`PAIRWISE_MAX`]).
    Maybe,
    /// For longer lists, whether each key is given again later, found once with a hash set: a request with
    /// one span of a million attributes then costs a million lookups, not 10^12 comparisons.
    Marked(Vec<bool>),
}

/// The longest list whose keys are compared pair by pair when a repeat is possible.
const PAIRWISE_MAX: usize = 64;

impl KeyRepeats {
    /// Looks at the keys of one list. First sets one bit per key in a 1024-bit set, at a hash of its length
    /// and last 8 bytes: when no two keys share a bit (nine lists of 15 keys in ten), no key can repeat, for a
    /// few instructions per key.
    pub fn of<'k, I>(keys: I) -> Self
    where
        I: ExactSizeIterator<Item = &'k [u8]> + DoubleEndedIterator + Clone,
    {
        let len = keys.len();
        if len < 2 {
            return KeyRepeats::None;
        }
        let mut seen = [0u64; 16];
        let mut collision = false;
        for key in keys.clone() {
            let bit = key_hash(key);
            let (word, mask) = (bit >> 6, 1u64 << (bit & 63));
            if seen[word] & mask != 0 {
                collision = true;
                break;
            }
            seen[word] |= mask;
        }
        if !collision {
            KeyRepeats::None
        } else if len <= PAIRWISE_MAX {
            KeyRepeats::Maybe
        } else {
            let mut later = std::collections::HashSet::with_capacity(len);
            let mut marks = vec![false; len];
            for (i, key) in keys.enumerate().rev() {
                marks[i] = !later.insert(key);
            }
            KeyRepeats::Marked(marks)
        }
    }

    /// Whether the key at `i` is given again later; `compare_later` compares it with the later keys (called
    /// only for a short list that may repeat).
    #[inline]
    pub fn superseded(&self, i: usize, compare_later: impl FnOnce() -> bool) -> bool {
        match self {
            KeyRepeats::None => false,
            KeyRepeats::Maybe => compare_later(),
            KeyRepeats::Marked(marks) => marks.get(i).copied().unwrap_or(false),
        }
    }
}

/// [`KeyRepeats`] of a decoded attribute list.
pub fn key_repeats(values: &[KeyValue]) -> KeyRepeats {
    KeyRepeats::of(values.iter().map(|kv| kv.key.as_bytes()))
}

/// 10 bits of a key's length and last 8 bytes.
#[inline]
fn key_hash(key: &[u8]) -> usize {
    let n = key.len();
    let tail = match key
        .get(n.saturating_sub(8)..)
        .and_then(|t| <[u8; 8]>::try_from(t).ok())
    {
        Some(word) => u64::from_le_bytes(word),
        None => key.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)),
    };
    ((tail ^ (n as u64) << 56).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize
}

/// Whether the key at `i` is given again later in `values` (only its last value is kept). `repeats` is
/// [`key_repeats`] of `values`.
#[inline]
pub fn superseded(values: &[KeyValue], i: usize, repeats: &KeyRepeats) -> bool {
    repeats.superseded(i, || {
        values[i + 1..]
            .iter()
            .any(|later| later.key == values[i].key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_never_missed() {
        let kv = |k: &str| KeyValue {
            key: k.into(),
            ..Default::default()
        };
        let distinct: Vec<KeyValue> = ["a", "b", "gen_ai.request.model", "gen_ai.response.model"]
            .into_iter()
            .map(kv)
            .collect();
        assert!(matches!(key_repeats(&distinct), KeyRepeats::None));
        for (i, key) in ["a", "b", "gen_ai.request.model", "gen_ai.response.model"]
            .into_iter()
            .enumerate()
        {
            let mut with_repeat = distinct.clone();
            with_repeat.push(kv(key));
            let repeats = key_repeats(&with_repeat);
            assert!(matches!(repeats, KeyRepeats::Maybe), "{key}");
            assert!(superseded(&with_repeat, i, &repeats));
            assert!(!superseded(&with_repeat, 4, &repeats), "the last one stays");
        }
        // More keys than bits: a false alarm, which the exact check clears; in linear time for a long list.
        let mut many: Vec<KeyValue> = (0..2000).map(|i| kv(&format!("k{i}"))).collect();
        let repeats = key_repeats(&many);
        assert!(matches!(repeats, KeyRepeats::Marked(_)));
        assert!((0..many.len()).all(|i| !superseded(&many, i, &repeats)));
        many.push(kv("k7"));
        many.push(kv("k1999"));
        let repeats = key_repeats(&many);
        let superseded_at: Vec<usize> = (0..many.len())
            .filter(|&i| superseded(&many, i, &repeats))
            .collect();
        assert_eq!(superseded_at, [7, 1999], "only earlier copies give way");
    }
}
