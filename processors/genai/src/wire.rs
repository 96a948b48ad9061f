//! The read-only look on a request still in its wire form: whether normalising would change anything, decided
//! on the validated protobuf bytes without decoding. Each span's or log record's attributes are read in place
//! ([`WireAttributes`]) by the same `Normaliser::needs` as the decoded look, so nothing is allocated per item
//! or attribute, and a request that is already normal goes on as the bytes it came in.
//!
//! Guarantee: when this says no, the decoded look says no. Attributes are read as prost decodes them (every
//! occurrence in order, an attribute's last `key`, its value's occurrences merged). Bytes it cannot read
//! (impossible after validation) count as "would change", which sends the request to the decoded path, where
//! the decode refuses it.

use otlake_core::Signal;
use otlake_core::wire::look::any_resource_group;
use otlake_core::wire::{FieldCursor, Misread, WireAttributes, WireError};

use crate::normalise::Normaliser;

/// Whether normalising the request in `chunks` (wire chunks of one `signal`, see `Payload::wire_chunks`) would
/// change anything.
pub fn needs<'c>(
    normaliser: &Normaliser,
    signal: Signal,
    chunks: impl IntoIterator<Item = &'c [u8]>,
) -> bool {
    // Span attributes (field 9) get a cost; log record attributes (field 6) do not; metrics are left alone.
    let (attributes, with_cost) = match signal {
        Signal::Traces => (9, true),
        Signal::Logs => (6, false),
        Signal::Metrics => return false,
    };
    chunks.into_iter().any(|chunk| {
        let misread = Misread::default();
        let look = any_resource_group(FieldCursor::new(chunk), |group| {
            group.any_scope_group(|scopes| {
                scopes.any_item(|item| {
                    Ok::<_, WireError>(
                        normaliser
                            .needs(WireAttributes::new(item, attributes, &misread), with_cost),
                    )
                })
            })
        });
        look.unwrap_or(true) || misread.happened()
    })
}

#[cfg(test)]
mod tests {
    use otlake_core::test_util::fuzz::{Rng, requests};
    use otlake_core::{Payload, parse_config};
    use serde_json::json;

    use super::*;
    use crate::GenaiConfig;
    use crate::processor::GenaiProcessor;

    /// Keys and values the normaliser acts on (deprecated keys, MLflow's, models, token counts), and others.
    const WORDS: &[&str] = &[
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.input_tokens",
        "gen_ai.request.model",
        "gpt-4o",
        "llama",
        "mlflow.spanType",
        "mlflow.traceRequestId",
        "\"RETRIEVER\"",
        "12",
        "gen_ai.usage.cost",
        "note",
        "",
    ];

    /// Random requests with repeated and merged fields at every level: the wire look answers exactly as the
    /// decoded look.
    #[test]
    fn the_wire_look_answers_as_the_decoded_look() {
        const REQUESTS: usize = 500;
        let mut rng = Rng(0x9e7a1);
        for config in [
            json!({"prices": {"gpt-4o": {"input_per_million": 2.5, "output_per_million": 10.0}}}),
            json!({"default_renames": false, "decode_mlflow_json": true}),
        ] {
            let config: GenaiConfig = parse_config(&config).expect("parses");
            let p = GenaiProcessor::new(Normaliser::new(&config));
            for signal in [Signal::Traces, Signal::Logs] {
                let mut yes = 0;
                for i in 0..REQUESTS {
                    let bytes = requests::request(&mut rng, signal, WORDS);
                    let payload = Payload::from_wire(signal, bytes.clone().into()).expect("valid");
                    let decoded = p.needs(payload.request().expect("decodes"));
                    let on_wire = needs(&p.normaliser, signal, [bytes.as_slice()]);
                    assert_eq!(on_wire, decoded, "{signal}, request {i}: {bytes:?}");
                    yes += usize::from(on_wire);
                }
                assert!(yes > 0 && yes < REQUESTS, "{signal}: {yes} of {REQUESTS}");
            }
        }
    }
}
