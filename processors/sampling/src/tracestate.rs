//! Reading and writing the OpenTelemetry entry of a W3C `tracestate` (`ot=th:…;rv:…`).
//!
//! Only the `ot` member is touched. When it is rewritten it moves to the front of the list, as W3C Trace
//! Context asks of an updated member; its other sub-keys and every other vendor's member are kept as they were.

use crate::threshold::{Randomness, Threshold};

/// What the `ot` member says about sampling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OtState {
    /// The threshold an upstream sampler applied (`th`), if valid.
    pub threshold: Option<Threshold>,
    /// Explicit randomness (`rv`), if valid; it overrides the trace id's bits.
    pub randomness: Option<Randomness>,
}

fn ot_value(tracestate: &str) -> Option<&str> {
    tracestate
        .split(',')
        .map(str::trim)
        .find_map(|member| member.strip_prefix("ot="))
}

/// Parses the `ot` member; an absent or malformed field reads as absent (a sampler then writes its own `th`).
pub fn parse(tracestate: &str) -> OtState {
    let mut state = OtState::default();
    let Some(value) = ot_value(tracestate) else {
        return state;
    };
    for field in value.split(';') {
        match field.split_once(':') {
            Some(("th", th)) => state.threshold = Threshold::parse(th),
            Some(("rv", rv)) => state.randomness = Randomness::parse(rv),
            _ => {}
        }
    }
    state
}

/// `tracestate` with `th` set to `threshold` (the `ot` member first).
pub fn with_threshold(tracestate: &str, threshold: Threshold) -> String {
    let Some(th) = threshold.encode() else {
        return tracestate.to_owned();
    };
    let mut out = String::with_capacity(tracestate.len() + th.len() + 8);
    out.push_str("ot=th:");
    out.push_str(&th);
    if let Some(value) = ot_value(tracestate) {
        for field in value
            .split(';')
            .filter(|f| !f.is_empty() && !f.starts_with("th:"))
        {
            out.push(';');
            out.push_str(field);
        }
    }
    for member in tracestate.split(',').map(str::trim) {
        if member.is_empty() || member.starts_with("ot=") {
            continue;
        }
        out.push(',');
        out.push_str(member);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_th_and_rv_among_other_vendors() {
        let state = parse("vendor=abc, ot=rv:80000000000001;th:c;x:y ,other=1");
        assert_eq!(state.threshold, Threshold::parse("c"));
        assert_eq!(state.randomness, Randomness::parse("80000000000001"));
        assert_eq!(parse(""), OtState::default());
        assert_eq!(parse("ot=th:zz").threshold, None);
    }

    #[test]
    fn writes_th_first_and_keeps_everything_else() {
        let t = Threshold::parse("e666").expect("valid");
        assert_eq!(with_threshold("", t), "ot=th:e666");
        assert_eq!(
            with_threshold("vendor=abc,ot=th:8;rv:80000000000001", t),
            "ot=th:e666;rv:80000000000001,vendor=abc"
        );
        assert_eq!(
            with_threshold("a=1, b=2", Threshold::ALWAYS),
            "ot=th:0,a=1,b=2"
        );
    }
}
