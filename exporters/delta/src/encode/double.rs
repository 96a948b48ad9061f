//! Doubles as text, as the OTel Collector prints them and as `Display` writes them (shortest round-trip
//! digits, never an exponent), without `core::fmt` on the common path: short decimals exactly by hand, the
//! rest through `ryu`, `Display` only for the rare exponent case.

use std::fmt::Write as _;

/// Doubles as the OTel Collector prints them: shortest round-trip decimal, no exponent, `NaN`, `+Inf`, `-Inf`.
pub(super) fn push_double_text(d: f64, out: &mut String) {
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
pub(super) fn push_finite_double(d: f64, out: &mut String) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
