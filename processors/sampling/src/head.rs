//! Stateless (head) sampling of one traces request: the spans of each trace present in the request share one
//! decision, made from the rules (on those spans) and the trace's randomness.
//!
//! Guarantee: the same trace id gets the same ratio decision in every request, instance and restart; rule
//! decisions see only the spans in the same request (tail mode sees whole traces).

use std::collections::HashMap;

use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;

use crate::decide::{Settings, keep_span};
use crate::rules::{Rules, TraceEvidence};
use crate::threshold::Threshold;

/// A trace id as a map key; a malformed id maps to all zeros (such spans share rules evidence, harmlessly:
/// they have no randomness and are decided by `fail_closed`).
pub type TraceId = [u8; 16];

pub fn trace_key(trace_id: &[u8]) -> TraceId {
    trace_id.try_into().unwrap_or([0; 16])
}

/// Drops the spans sampled out, writes `th` into the kept ones, removes emptied groups. Returns the number of
/// spans dropped.
pub fn sample_request(
    request: &mut ExportTraceServiceRequest,
    rules: &Rules,
    settings: Settings,
) -> u64 {
    let mut thresholds: HashMap<TraceId, Threshold> = HashMap::new();
    if !rules.is_empty() {
        let mut evidence: HashMap<TraceId, TraceEvidence> = HashMap::new();
        for rs in &request.resource_spans {
            let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes);
            for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                let entry = evidence.entry(trace_key(&span.trace_id)).or_default();
                rules.observe(entry, span, resource);
            }
        }
        thresholds.extend(evidence.into_iter().map(|(id, e)| (id, rules.decide(&e))));
    }
    let default = rules.default_threshold();
    let mut dropped = 0u64;
    request.resource_spans.retain_mut(|rs| {
        let had = !rs.scope_spans.is_empty();
        rs.scope_spans.retain_mut(|ss| {
            let had = !ss.spans.is_empty();
            ss.spans.retain_mut(|span| {
                let threshold = thresholds
                    .get(&trace_key(&span.trace_id))
                    .copied()
                    .unwrap_or(default);
                let keep = keep_span(span, threshold, settings);
                if !keep {
                    dropped += 1;
                }
                keep
            });
            !(had && ss.spans.is_empty())
        });
        !(had && rs.scope_spans.is_empty())
    });
    dropped
}
