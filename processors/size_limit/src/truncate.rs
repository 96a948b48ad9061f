//! Shortening a record until it fits: its longest strings are cut to a common length (water-filling), so a
//! single huge attribute loses the most and short values are kept whole. Cuts fall on UTF-8 boundaries.
//!
//! Guarantee: a record this module reports as fitted is at most the limit in encoded bytes and carries
//! `otlake.truncated` with its original size; one it cannot fit (its bulk is not in strings) is left for the
//! caller to reject.

use crate::record::{Record, mark_truncated};

/// Cuts `s` to at most `max` bytes, at a character boundary.
pub(crate) fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let boundary = s.floor_char_boundary(max);
        s.truncate(boundary);
    }
}

/// The largest length `level` such that cutting every string longer than `level` down to it removes at least
/// `excess` bytes; `None` when even emptying every string would not.
fn water_level(lengths: &[usize], excess: usize) -> Option<usize> {
    let removed_at =
        |level: usize| -> usize { lengths.iter().map(|&l| l.saturating_sub(level)).sum() };
    if removed_at(0) < excess {
        return None;
    }
    // removed_at is non-increasing in level; find the largest level with removed_at(level) >= excess.
    let (mut low, mut high) = (0usize, lengths.iter().copied().max().unwrap_or(0));
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if removed_at(mid) >= excess {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    Some(low)
}

/// Shortens `record`'s longest strings until its encoded size is at most `limit`, and marks it with its
/// `original_size`. Returns `false` when it cannot be made to fit (the caller rejects it).
pub(crate) fn truncate_to_fit<R: Record>(
    record: &mut R,
    limit: usize,
    original_size: usize,
) -> bool {
    mark_truncated(record.attributes_mut(), original_size);
    // Cutting a string by n bytes shrinks the encoding by at least n, so one round normally suffices; a few
    // more cover length prefixes and character boundaries.
    for _ in 0..4 {
        let size = record.encoded_len();
        if size <= limit {
            return true;
        }
        let mut strings = Vec::new();
        record.strings_mut(&mut strings);
        let lengths: Vec<usize> = strings.iter().map(|s| s.len()).collect();
        let Some(level) = water_level(&lengths, size - limit) else {
            return false;
        };
        for s in strings {
            cut(s, level);
        }
    }
    record.encoded_len() <= limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::proto::trace::v1::Span;
    use otlake_core::test_util::kv;
    use prost::Message;

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let mut s = "aé".repeat(4); // 12 bytes, 'é' is 2
        cut(&mut s, 5);
        assert_eq!(s, "aéa");
        let mut short = "abc".to_owned();
        cut(&mut short, 10);
        assert_eq!(short, "abc");
    }

    #[test]
    fn water_level_takes_from_the_longest_first() {
        assert_eq!(water_level(&[100, 10, 5], 50), Some(50));
        assert_eq!(water_level(&[100, 90, 5], 30), Some(80));
        assert_eq!(water_level(&[10, 10], 21), None);
    }

    #[test]
    fn a_span_with_one_huge_attribute_keeps_its_small_ones() {
        let mut span = Span {
            name: "generate".into(),
            attributes: vec![kv("gen_ai.prompt", &"x".repeat(50_000)), kv("model", "m-1")],
            ..Default::default()
        };
        let original = span.encoded_len();
        assert!(truncate_to_fit(&mut span, 10_000, original));
        assert!(span.encoded_len() <= 10_000);
        assert_eq!(span.attributes[1], kv("model", "m-1"));
        assert_eq!(span.name, "generate");
        let marker = span.attributes.last().expect("marker");
        assert_eq!(marker.key, "otlake.truncated");
    }

    #[test]
    fn a_record_whose_bulk_is_not_strings_cannot_be_fitted() {
        let mut span = Span {
            span_id: vec![0; 8],
            attributes: (0..2_000).map(|i| kv(&format!("key-{i}"), "")).collect(),
            ..Default::default()
        };
        let original = span.encoded_len();
        assert!(!truncate_to_fit(&mut span, 1_000, original));
    }
}
