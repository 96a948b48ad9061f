//! "When nothing matches, a processor does not allocate per attribute" (issue 16), counted: a counting global
//! allocator (`stats_alloc`) around one `process` call on wire-form requests of 10 and of 1 000 spans with 15
//! attributes each, none of which has anything to redact. Its own test binary, so that the allocator counts
//! this test alone.

use std::alloc::System;
use std::sync::Arc;

use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlake_core::test_util::{batch_with_ack, build_processor, kv};
use otlake_core::{Payload, Processor, Signal};
use otlake_processor_redaction::RedactionProcessorFactory;
use prost::Message;
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// `spans` GenAI-shaped spans of 15 attributes (a prompt among them), as a receiver hands them on.
fn request(spans: usize) -> Payload {
    let spans = (0..spans)
        .map(|s| {
            let mut attributes: Vec<_> = (0..13)
                .map(|a| {
                    kv(
                        &format!("app.attribute.{a}"),
                        &format!("value {s} {a} lorem ipsum"),
                    )
                })
                .collect();
            attributes.push(kv("gen_ai.request.model", "llama-3-70b"));
            attributes.push(kv(
                "gen_ai.prompt",
                "summarise the quarterly report in three bullet points",
            ));
            Span {
                trace_id: vec![7; 16],
                span_id: (s as u64 + 1).to_be_bytes().to_vec(),
                name: "chat llama-3-70b".into(),
                attributes,
                ..Default::default()
            }
        })
        .collect();
    let bytes = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(otlake_core::proto::resource::v1::Resource {
                attributes: vec![kv("service.name", "chat-api")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    Payload::from_wire(Signal::Traces, bytes.into()).expect("valid")
}

/// Allocations made by one `process` call on `payload`, and whether it came out as it went in (the same
/// payload, still undecoded).
fn allocations(processor: &mut dyn Processor, payload: Payload) -> (usize, bool) {
    let (batch, _rx) = batch_with_ack(payload);
    let shared = Arc::clone(&batch.payload);
    let mut out = Vec::with_capacity(1);
    let region = Region::new(GLOBAL);
    processor.process(batch, &mut out);
    let allocated = region.change().allocations;
    (
        allocated,
        Arc::ptr_eq(&out[0].payload, &shared) && out[0].payload.is_wire(),
    )
}

#[test]
fn nothing_to_redact_allocates_nothing_per_attribute() {
    let mut processor = build_processor(
        &RedactionProcessorFactory,
        &json!({
            "allow_all_keys": true,
            "builtin_patterns": ["email", "card_number", "phone_number", "ipv4", "ipv6", "bearer_token", "api_key"],
            "blocked_key_patterns": ["password"],
        }),
        Signal::Traces,
    )
    .expect("valid");
    // The regexes grow their lazy DFA caches the first time they meet a state (per pattern state, bounded by
    // the cache's capacity, not per attribute): one pass over the same shapes of value first.
    allocations(processor.as_mut(), request(1_000));
    let (small, small_untouched) = allocations(processor.as_mut(), request(10));
    let (large, large_untouched) = allocations(processor.as_mut(), request(1_000));
    assert_eq!(
        (small, large),
        (0, 0),
        "allocations for 10 and for 1 000 spans (150 and 15 000 attributes)"
    );
    assert!(
        small_untouched && large_untouched,
        "nothing to redact: passed on as it came, undecoded"
    );
}
