//! Cost of the receivers' wire validation alone (`otlake_core::wire::validate`), not a test: validates one
//! traces request again and again and prints nanoseconds per span. For exact figures on a shared machine count
//! instructions instead: `valgrind --tool=callgrind --toggle-collect='*validate_loop*' <bench binary>`.
//!
//! `cargo bench -p otlake-core --bench validate`
//!
//! Environment: `PAYLOAD` (a file holding one `ExportTraceServiceRequest`, e.g. the peer harness's
//! `/work/shared/bench/payloads/traces.pb`; default: `test_util::sample_traces(1, 100)`), `ROUNDS` (20000).

use std::time::Instant;

use otlake_core::Signal;
use otlake_core::wire::{count, validate};
use prost::Message;

#[inline(never)]
fn validate_loop(bytes: &[u8], rounds: usize) -> usize {
    let mut valid = 0;
    for _ in 0..rounds {
        valid += usize::from(validate(Signal::Traces, std::hint::black_box(bytes)).is_ok());
    }
    valid
}

fn main() {
    let bytes = match std::env::var("PAYLOAD") {
        Ok(path) => std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}")),
        Err(_) => otlake_core::test_util::sample_traces(1, 100).encode_to_vec(),
    };
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20_000);
    let spans = count(Signal::Traces, &bytes).items;
    let started = Instant::now();
    let valid = validate_loop(&bytes, rounds);
    let elapsed = started.elapsed();
    assert_eq!(valid, rounds, "the request validates");
    let per_span = elapsed.as_nanos() as f64 / (rounds * spans) as f64;
    println!(
        "validate: {} bytes, {spans} spans per request, {rounds} rounds: {per_span:.1} ns per span",
        bytes.len()
    );
}
