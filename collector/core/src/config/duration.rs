//! Durations in configs, written as the Collector writes them: `200ms`, `5s`, `1m`, `1h30m`.
//!
//! `#[serde(with = "otlake_core::config::duration")]` on a `Duration` field, or
//! `otlake_core::config::duration::option` on an `Option<Duration>`. Every plugin reads durations this way, so
//! one spelling works everywhere.

pub use humantime_serde::{deserialize, option, serialize};

/// Parses `200ms`, `5s`, `1m`: for values that arrive as text outside serde (a CLI flag).
pub fn parse(text: &str) -> Result<std::time::Duration, String> {
    humantime_serde::re::humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration (e.g. 200ms, 5s, 1m): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn collector_spellings_parse() {
        assert_eq!(parse("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse("soon").is_err());
    }
}
