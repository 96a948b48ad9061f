//! The encoding rules of the OTel tables (docs/otel-tables.md, "Encoding rules"), in one place.
//!
//! - ids: lowercase hex; an empty id is NULL (so `parent_span_id IS NULL` finds root spans);
//! - enums: the proto enum names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`, ...); a value the proto does not
//!   know is written as its number, so nothing is lost;
//! - AnyValue to text: a string as is; int, double and bool as their canonical text; arrays and kvlists as
//!   JSON; bytes as base64 (inside JSON: a base64 string).
//!
//! Everything writes into a caller-owned `String` (or a stack buffer) so that converting a batch allocates no
//! string per value, and nothing goes through `core::fmt` on the hot path: integers with `itoa`, doubles with
//! `ryu` (the same shortest round-trip digits as `Display`, which is kept for the rare exponent case), ids
//! through a byte → two hex digits table.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use otlake_core::proto::logs::v1::SeverityNumber;
use otlake_core::proto::metrics::v1::AggregationTemporality;
use otlake_core::proto::trace::v1::{span::SpanKind, status::StatusCode};

use crate::config::SeverityNumberFormat;

/// Every byte's two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
        i += 1;
    }
    table
};

/// The longest id [`hex_str`] formats on the stack (trace ids are 16 bytes, span ids 8).
pub const MAX_STACK_ID: usize = 32;

/// `id` as lowercase hex in `buf`, or `None` when it is empty or longer than [`MAX_STACK_ID`] bytes.
pub fn hex_str<'a>(id: &[u8], buf: &'a mut [u8; 2 * MAX_STACK_ID]) -> Option<&'a str> {
    if id.is_empty() || id.len() > MAX_STACK_ID {
        return None;
    }
    for (pair, byte) in buf.chunks_exact_mut(2).zip(id) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
    // Hex digits are ASCII: this cannot fail.
    std::str::from_utf8(&buf[..2 * id.len()]).ok()
}

/// Writes `id` as lowercase hex into `out` (cleared first). Returns `false` for an empty id (written as NULL).
pub fn hex_id(id: &[u8], out: &mut String) -> bool {
    out.clear();
    if id.is_empty() {
        return false;
    }
    let mut buf = [0u8; 2 * MAX_STACK_ID];
    for chunk in id.chunks(MAX_STACK_ID) {
        if let Some(hex) = hex_str(chunk, &mut buf) {
            out.push_str(hex);
        }
    }
    true
}

/// `SPAN_KIND_SERVER` etc.
pub fn span_kind(kind: i32, out: &mut String) -> &str {
    match SpanKind::try_from(kind) {
        Ok(known) => known.as_str_name(),
        Err(_) => number(kind, out),
    }
}

/// `STATUS_CODE_ERROR` etc.
pub fn status_code(code: i32, out: &mut String) -> &str {
    match StatusCode::try_from(code) {
        Ok(known) => known.as_str_name(),
        Err(_) => number(code, out),
    }
}

/// `AGGREGATION_TEMPORALITY_DELTA` / `AGGREGATION_TEMPORALITY_CUMULATIVE` (unverified against the managed
/// tables, kept here so a change is one line).
pub fn aggregation_temporality(value: i32, out: &mut String) -> &str {
    match AggregationTemporality::try_from(value) {
        Ok(known) => known.as_str_name(),
        Err(_) => number(value, out),
    }
}

/// `metric_type` values (unverified against the managed tables).
pub mod metric_type {
    pub const GAUGE: &str = "GAUGE";
    pub const SUM: &str = "SUM";
    pub const HISTOGRAM: &str = "HISTOGRAM";
    pub const EXPONENTIAL_HISTOGRAM: &str = "EXPONENTIAL_HISTOGRAM";
    pub const SUMMARY: &str = "SUMMARY";
}

/// `severity_number` as configured: `"9"` or `"SEVERITY_NUMBER_INFO"`.
pub fn severity_number(value: i32, format: SeverityNumberFormat, out: &mut String) -> &str {
    match format {
        SeverityNumberFormat::Number => number(value, out),
        SeverityNumberFormat::Name => match SeverityNumber::try_from(value) {
            Ok(known) => known.as_str_name(),
            Err(_) => number(value, out),
        },
    }
}

fn number(value: i32, out: &mut String) -> &str {
    out.clear();
    out.push_str(itoa::Buffer::new().format(value));
    out.as_str()
}

/// The text of an AnyValue in a v1 map or body, or `None` for an empty AnyValue (written as NULL). A string
/// value is returned borrowed, without copying; other kinds are written into `out`.
pub fn any_value_text<'a>(value: &'a AnyValue, out: &'a mut String) -> Option<&'a str> {
    let inner = value.value.as_ref()?;
    if let Value::StringValue(s) = inner {
        return Some(s.as_str());
    }
    out.clear();
    match inner {
        Value::StringValue(_) => {}
        Value::BoolValue(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::IntValue(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::DoubleValue(d) => push_double_text(*d, out),
        Value::BytesValue(bytes) => BASE64.encode_string(bytes, out),
        Value::ArrayValue(array) => push_json_array(&array.values, out),
        Value::KvlistValue(list) => push_json_object(&list.values, out),
        // Dictionary-encoded strings (profiles only) have no dictionary here: keep the index as text.
        Value::StringValueStrindex(index) => {
            let _ = write!(out, "{index}");
        }
    }
    Some(out.as_str())
}

/// Doubles as the OTel Collector prints them: shortest round-trip decimal, no exponent, `NaN`, `+Inf`, `-Inf`.
fn push_double_text(d: f64, out: &mut String) {
    if d.is_nan() {
        out.push_str("NaN");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        push_finite_double(d, out);
    }
}

const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];

/// The common case of attribute doubles (`0.7`, `0.95`, `1234.5`, `0.000125`): a value below 1e9 that has an
/// exact shortest form with at most 6 decimals. For each `k` from 0 to 6, `m = round(d × 10^k)` is the only
/// candidate with `k` decimals (the double spacing below 1e9 is finer than 10^-6, so two neighbours cannot
/// both read back as `d`), and `m / 10^k == d`, a correctly rounded division of exact operands, is exactly
/// "the text reads back as `d`". The first `k` that works gives the shortest text, the one `Display` writes.
/// Returns `false` (writing nothing) otherwise.
fn push_short_decimal(d: f64, out: &mut String) -> bool {
    let magnitude = d.abs();
    // Callers pass finite values only (NaN would fail every check below anyway).
    if magnitude >= 1e9 {
        return false;
    }
    for (k, &scale) in POW10.iter().enumerate() {
        // Truncating `x + 0.5` rounds (below 1e15 the sum is exact enough), without libm's `round`.
        let m = (magnitude * scale + 0.5) as u64;
        if m as f64 / scale == magnitude {
            if d.is_sign_negative() {
                out.push('-');
            }
            let mut buffer = itoa::Buffer::new();
            let digits = buffer.format(m);
            if k == 0 {
                out.push_str(digits);
            } else if digits.len() > k {
                let (int, frac) = digits.split_at(digits.len() - k);
                out.push_str(int);
                out.push('.');
                out.push_str(frac);
            } else {
                out.push_str("0.");
                for _ in digits.len()..k {
                    out.push('0');
                }
                out.push_str(digits);
            }
            return true;
        }
    }
    false
}

/// A finite double as `Display` writes it (shortest round-trip digits, never an exponent), through `ryu`,
/// which finds digits as short, but writes `2.0` for 2 and `1e20` for large and tiny values (left to
/// `Display`). The one difference left: when two shortest forms are equally close (`…087.625` as `.62` or
/// `.63`), `ryu` may pick the other one; both read back as the same double.
fn push_finite_double(d: f64, out: &mut String) {
    if push_short_decimal(d, out) {
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(d);
    if text.contains('e') {
        let _ = write!(out, "{d}");
    } else {
        out.push_str(text.strip_suffix(".0").unwrap_or(text));
    }
}

/// Writes `value` as JSON into `out` (appending).
pub fn push_json_value(value: &AnyValue, out: &mut String) {
    match &value.value {
        None => out.push_str("null"),
        Some(Value::StringValue(s)) => push_json_string(s, out),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => out.push_str(itoa::Buffer::new().format(*i)),
        Some(Value::DoubleValue(d)) => {
            if d.is_finite() {
                push_finite_double(*d, out);
            } else {
                // JSON has no NaN or infinity: keep them as strings rather than write invalid JSON.
                out.push('"');
                push_double_text(*d, out);
                out.push('"');
            }
        }
        Some(Value::BytesValue(bytes)) => {
            out.push('"');
            BASE64.encode_string(bytes, out);
            out.push('"');
        }
        Some(Value::ArrayValue(array)) => push_json_array(&array.values, out),
        Some(Value::KvlistValue(list)) => push_json_object(&list.values, out),
        Some(Value::StringValueStrindex(index)) => {
            let _ = write!(out, "{index}");
        }
    }
}

fn push_json_array(values: &[AnyValue], out: &mut String) {
    out.push('[');
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_value(value, out);
    }
    out.push(']');
}

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

/// A JSON object; a key given twice keeps its last value, as maps do.
fn push_json_object(values: &[KeyValue], out: &mut String) {
    out.push('{');
    let mut first = true;
    let repeats = key_repeats(values);
    for (i, kv) in values.iter().enumerate() {
        if superseded(values, i, &repeats) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_json_string(&kv.key, out);
        out.push(':');
        match &kv.value {
            Some(value) => push_json_value(value, out),
            None => out.push_str("null"),
        }
    }
    out.push('}');
}

/// A JSON string literal with the escapes RFC 8259 requires.
pub fn push_json_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::proto::common::v1::{ArrayValue, KeyValueList};

    fn any(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn text(value: Value) -> String {
        let mut out = String::new();
        any_value_text(&any(value), &mut out)
            .expect("not empty")
            .to_owned()
    }

    #[test]
    fn ids_are_lowercase_hex_and_empty_is_null() {
        let mut out = String::new();
        assert!(hex_id(&[0x00, 0xAB, 0x1f], &mut out));
        assert_eq!(out, "00ab1f");
        assert!(!hex_id(&[], &mut out));
    }

    #[test]
    fn enums_use_proto_names() {
        let mut out = String::new();
        assert_eq!(span_kind(2, &mut out), "SPAN_KIND_SERVER");
        assert_eq!(span_kind(0, &mut out), "SPAN_KIND_UNSPECIFIED");
        assert_eq!(span_kind(99, &mut out), "99");
        assert_eq!(status_code(2, &mut out), "STATUS_CODE_ERROR");
        assert_eq!(
            aggregation_temporality(1, &mut out),
            "AGGREGATION_TEMPORALITY_DELTA"
        );
        assert_eq!(
            severity_number(9, SeverityNumberFormat::Number, &mut out),
            "9"
        );
        assert_eq!(
            severity_number(9, SeverityNumberFormat::Name, &mut out),
            "SEVERITY_NUMBER_INFO"
        );
    }

    #[test]
    fn any_values_become_text() {
        assert_eq!(text(Value::StringValue("\"LLM\"".into())), "\"LLM\"");
        assert_eq!(text(Value::IntValue(-42)), "-42");
        assert_eq!(text(Value::DoubleValue(1.5)), "1.5");
        assert_eq!(text(Value::DoubleValue(2.0)), "2");
        assert_eq!(text(Value::BoolValue(true)), "true");
        assert_eq!(text(Value::BytesValue(vec![0, 1, 2, 255])), "AAEC/w==");
        assert_eq!(
            text(Value::ArrayValue(ArrayValue {
                values: vec![
                    any(Value::StringValue("a\"b\n".into())),
                    any(Value::IntValue(1)),
                    any(Value::DoubleValue(f64::NAN)),
                    AnyValue { value: None },
                    any(Value::BytesValue(vec![1])),
                ]
            })),
            r#"["a\"b\n",1,"NaN",null,"AQ=="]"#
        );
        let kv = |k: &str, v: Value| KeyValue {
            key: k.into(),
            value: Some(any(v)),
            ..Default::default()
        };
        assert_eq!(
            text(Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("a", Value::IntValue(1)),
                    kv("b", Value::BoolValue(false)),
                    kv("a", Value::IntValue(2)),
                ]
            })),
            r#"{"b":false,"a":2}"#
        );
        let mut out = String::new();
        assert_eq!(any_value_text(&AnyValue { value: None }, &mut out), None);
    }

    #[test]
    fn doubles_are_written_as_display_writes_them() {
        let mut specials = vec![
            0.0,
            -0.0,
            1.0,
            2.0,
            -2.5,
            0.1,
            0.95,
            1e15,
            1e16,
            1e17,
            1e20,
            1e21,
            1e22,
            1e-5,
            1e-6,
            1e-7,
            123456789.125,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::EPSILON,
        ];
        // A deterministic spread of bit patterns over every exponent, and of short decimals and their
        // neighbours (the short path's cases).
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            specials.push(f64::from_bits(x));
            let decimal = (x % 2_000_000_000) as f64 / POW10[(x >> 40) as usize % 7];
            specials.extend([
                decimal,
                f64::from_bits(decimal.to_bits() + 1),
                -decimal / 3.0,
            ]);
        }
        for d in [
            0.7,
            0.95,
            -0.25,
            1234.5,
            0.000125,
            0.001234,
            7.0,
            -0.0,
            999_999_999.5,
            0.1 + 0.2,
        ] {
            let mut out = String::new();
            push_finite_double(d, &mut out);
            assert_eq!(out, format!("{d}"));
        }
        let mut ties = 0;
        for d in specials.into_iter().filter(|d| d.is_finite()) {
            let mut out = String::new();
            push_finite_double(d, &mut out);
            let display = format!("{d}");
            let mut short = String::new();
            if push_short_decimal(d, &mut short) {
                assert_eq!(short, display, "the short path is exact");
            }
            if out != display {
                // Only a tie between two shortest forms: same length, same double.
                ties += 1;
                assert_eq!(out.len(), display.len(), "{out} vs {display}");
                assert_eq!(out.parse::<f64>().ok(), Some(d), "{out} vs {display}");
            }
        }
        assert!(ties < 100, "{ties} differences from Display");
    }

    #[test]
    fn long_ids_are_hex_too() {
        let mut out = String::new();
        let id: Vec<u8> = (0..40).collect();
        assert!(hex_id(&id, &mut out));
        let expected: String = id.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out, expected);
        let mut buf = [0u8; 2 * MAX_STACK_ID];
        assert_eq!(hex_str(&id, &mut buf), None, "too long for the stack");
        assert_eq!(hex_str(&[0xde, 0xad], &mut buf), Some("dead"));
    }

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

    #[test]
    fn json_strings_escape_control_characters() {
        let mut out = String::new();
        push_json_string("x\u{1}y\\é", &mut out);
        assert_eq!(out, "\"x\\u0001y\\\\é\"");
        let parsed: String = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(parsed, "x\u{1}y\\é");
    }
}
