//! The built-in value patterns a user switches on by name, and the Luhn check that keeps card-number masking
//! to digit runs that are card numbers. All are `regex` crate patterns: matching is linear in the value.

use regex::Regex;

/// Names accepted in `builtin_patterns`, each with its regex.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "email",
        r"(?i-u)\b[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}\b",
    ),
    // 13-19 digits, optionally grouped by spaces or dashes; only Luhn-valid runs are masked.
    ("card_number", r"(?-u)\b\d(?:[ \-]?\d){12,18}\b"),
    (
        "phone_number",
        r"(?-u)(?:\+\d{1,3}[ .\-]?)?(?:\(\d{3}\)|\b\d{3})[ .\-]\d{3}[ .\-]\d{4}\b|\+\d{8,15}\b",
    ),
    (
        "ipv4",
        r"(?-u)\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
    ),
    (
        "ipv6",
        r"(?i-u)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,5})?\b|::1\b",
    ),
    // A token of at least 8 characters, so prose ("bearer of news") is left alone.
    ("bearer_token", r"(?i-u)\bbearer\s+[a-z0-9\-._~+/]{8,}=*"),
    (
        "api_key",
        r"(?-u)\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}|\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]+",
    ),
];

/// The names, for error messages.
pub fn builtin_names() -> String {
    BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value pattern: a regex, and whether a match must pass the Luhn check.
#[derive(Clone, Debug)]
pub struct ValuePattern {
    pub regex: Regex,
    pub luhn: bool,
}

impl ValuePattern {
    /// The byte ranges of `text` this pattern masks.
    pub fn ranges<'t>(&'t self, text: &'t str) -> impl Iterator<Item = (usize, usize)> + 't {
        self.regex
            .find_iter(text)
            .filter(|m| !self.luhn || luhn_valid(m.as_str()))
            .map(|m| (m.start(), m.end()))
    }

    pub fn finds_in(&self, text: &str) -> bool {
        if self.luhn {
            self.ranges(text).next().is_some()
        } else {
            self.regex.is_match(text)
        }
    }
}

/// The Luhn checksum over the digits of `text` (separators ignored), for 13-19 digits.
pub fn luhn_valid(text: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0;
    for (i, d) in text
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .enumerate()
    {
        count += 1;
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 { x - 9 } else { x }
        } else {
            d
        };
    }
    (13..=19).contains(&count) && sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(name: &str) -> ValuePattern {
        let (_, re) = BUILTIN.iter().find(|(n, _)| *n == name).expect("known");
        ValuePattern {
            regex: Regex::new(re).expect("compiles"),
            luhn: name == "card_number",
        }
    }

    #[test]
    fn every_builtin_finds_its_shape_and_leaves_ordinary_text() {
        for (name, hits, misses) in [
            (
                "email",
                "mail ana.lopez+ml@example.co.uk now",
                "ana at example dot com",
            ),
            (
                "card_number",
                "card 4111 1111 1111 1111 ok",
                "order 4111 1111 1111 1112",
            ),
            ("card_number", "5500-0000-0000-0004", "1234567890123"),
            ("phone_number", "call +1 415-555-0132", "version 1.2.3"),
            ("ipv4", "from 192.168.10.4:443", "v10.4.3 released"),
            ("ipv6", "peer 2001:db8::8a2e:370:7334", "at 12:30 today"),
            (
                "bearer_token",
                "Authorization: Bearer abc.def-ghi",
                "bearer of news",
            ),
            ("api_key", "key sk-proj-AbCdEfGhIjKlMnOpQrSt", "sk-short"),
            ("api_key", "AKIAIOSFODNN7EXAMPLE", "AKIA-not"),
            (
                "api_key",
                "ghp_0123456789abcdefghijABCDEFGHIJ012345",
                "ghp_short",
            ),
            (
                "api_key",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "eyJ alone",
            ),
        ] {
            let p = pattern(name);
            assert!(p.finds_in(hits), "{name} finds {hits:?}");
            assert!(!p.finds_in(misses), "{name} leaves {misses:?}");
        }
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("4111-1111-1111-1111"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("0000"), "too short");
    }
}
