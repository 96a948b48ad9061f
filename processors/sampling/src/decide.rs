//! The decision for one span, given the threshold its trace was assigned: honour an incoming `th` (tightened,
//! never loosened), compare with the span's randomness, and write the resulting `th` into a kept span.

use otlake_core::proto::trace::v1::Span;

use crate::config::Mode;
use crate::threshold::{Randomness, Threshold};
use crate::tracestate;

/// How spans are decided, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub mode: Mode,
    pub fail_closed: bool,
}

/// Keeps or drops `span` under `trace_threshold`; a kept span's tracestate carries the threshold that
/// applied to it. Returns whether it is kept.
pub fn keep_span(span: &mut Span, trace_threshold: Threshold, settings: Settings) -> bool {
    let state = if span.trace_state.is_empty() {
        tracestate::OtState::default()
    } else {
        tracestate::parse(&span.trace_state)
    };
    let threshold = match (state.threshold, settings.mode) {
        (None, _) => trace_threshold,
        // `HashSeed` never passes validation; equalizing is the safe reading.
        (Some(incoming), Mode::Equalizing | Mode::HashSeed) => incoming.max(trace_threshold),
        (Some(incoming), Mode::Proportional) => trace_threshold.proportional(incoming),
    };
    let randomness = state
        .randomness
        .or_else(|| Randomness::of_trace_id(&span.trace_id));
    let Some(randomness) = randomness else {
        // No randomness: nothing consistent to decide on. Keep only what is kept at 100%, or everything when
        // failing open; no `th` is written (its adjusted count would be a guess).
        return threshold == Threshold::ALWAYS || !settings.fail_closed;
    };
    if !threshold.keeps(randomness) {
        return false;
    }
    if state.threshold != Some(threshold) {
        span.trace_state = tracestate::with_threshold(&span.trace_state, threshold);
    }
    true
}
