//! How much memory a decoded OTLP request really takes, against what the receivers reserve for it from the
//! memory budget (`wire bytes × otlake_core::memory::EXPANSION`). The budget only bounds the daemon's memory if
//! the reservation covers the decoded request, so this checks it on the requests the project's own load uses:
//! the e2e burst's (200 sample spans with a 230-byte padding attribute), `otlake loadgen`'s GenAI traces, logs
//! and metrics, and core's sample logs.
//!
//! Measured as the daemon's allocator sees it: this test binary uses mimalloc (as the daemon does), decodes
//! enough copies of each request to take several MiB, keeps them all alive (so no measurement reuses memory
//! freed by another) and reads the growth of its anonymous RSS. The tests measure one at a time (a lock), and
//! nothing else in this binary allocates meanwhile. Run with `--nocapture --include-ignored` for every figure.

use std::sync::Mutex;

use otlake_core::Payload;
use otlake_core::memory::EXPANSION;
use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::test_util::{sample_logs, sample_traces};
use otlake_loadgen::genai;
use otlake_loadgen::ids::IdSource;
use otlake_loadgen::template::{Template, TemplateBuilder};
use prost::Message;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Wire bytes decoded per request kind: large against page and allocator granularity.
const WIRE_PER_KIND: usize = 8 << 20;

fn rss_anon() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map(|kb| kb * 1024)
        .expect("RssAnon in /proc/self/status")
}

fn traces(bytes: &[u8]) -> Payload {
    Payload::from(ExportTraceServiceRequest::decode(bytes).expect("decodes"))
}
fn logs(bytes: &[u8]) -> Payload {
    Payload::from(ExportLogsServiceRequest::decode(bytes).expect("decodes"))
}
fn metrics(bytes: &[u8]) -> Payload {
    Payload::from(ExportMetricsServiceRequest::decode(bytes).expect("decodes"))
}

/// The e2e burst's request (tests/e2e/burst.rs): 200 sample spans, each with a 230-byte padding attribute.
fn burst_request() -> Vec<u8> {
    let mut request = sample_traces(1, 200);
    for (i, span) in request.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .enumerate()
    {
        span.name = format!("b0-1-{i}");
        span.attributes.push(KeyValue {
            key: "padding".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("x".repeat(230))),
            }),
            ..Default::default()
        });
    }
    request.encode_to_vec()
}

fn rendered(template: &Template) -> Vec<u8> {
    let ids = IdSource::new(7).reserve(template.id_count());
    template
        .render(&ids, 1_700_000_000_000_000_000, &mut Vec::new())
        .to_vec()
}

/// Decodes copies of `wire` until `WIRE_PER_KIND` bytes were decoded, keeps them in `kept`, and returns the
/// anonymous RSS they added per wire byte.
fn decoded_per_wire_byte(
    wire: &[u8],
    decode: fn(&[u8]) -> Payload,
    kept: &mut Vec<Payload>,
) -> f64 {
    let copies = WIRE_PER_KIND.div_ceil(wire.len());
    kept.reserve(copies);
    let before = rss_anon();
    for _ in 0..copies {
        kept.push(decode(wire));
    }
    let grown = rss_anon().saturating_sub(before);
    grown as f64 / (copies * wire.len()) as f64
}

/// `(name, wire bytes, decoder)` of every request kind measured.
type Kind = (&'static str, Vec<u8>, fn(&[u8]) -> Payload);

fn e2e_burst() -> Kind {
    ("e2e burst traces", burst_request(), traces)
}

fn every_kind() -> Vec<Kind> {
    vec![
        e2e_burst(),
        (
            "core sample logs",
            sample_logs(2, 100).encode_to_vec(),
            logs,
        ),
        (
            "loadgen traces",
            rendered(&genai::traces(TemplateBuilder::new(1), 200, 0.0).expect("template")),
            traces,
        ),
        (
            "loadgen logs",
            rendered(&genai::logs(TemplateBuilder::new(2), 200, 0.0).expect("template")),
            logs,
        ),
        (
            "loadgen metrics",
            rendered(&genai::metrics(TemplateBuilder::new(3), 200).expect("template")),
            metrics,
        ),
    ]
}

/// Decodes each kind, prints its ratio, and returns the kinds whose decoded size exceeds the reservation.
fn over_the_reservation(kinds: Vec<Kind>) -> Vec<String> {
    static MEASURING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    // Everything decoded stays alive until the end, so every figure is fresh memory.
    let mut kept = Vec::new();
    let mut over = Vec::new();
    for (name, wire, decode) in &kinds {
        let ratio = decoded_per_wire_byte(wire, *decode, &mut kept);
        eprintln!(
            "{name}: {} wire bytes per request, decoded {ratio:.2}× (EXPANSION = {EXPANSION})",
            wire.len()
        );
        if ratio > EXPANSION as f64 {
            over.push(format!("{name}: {ratio:.2}×"));
        }
    }
    over
}

/// tests/e2e/burst.rs states its RSS margin on top of a budget that covers its requests: this is that premise.
#[test]
fn the_reservation_covers_the_e2e_burst_request() {
    let over = over_the_reservation(vec![e2e_burst()]);
    assert!(
        over.is_empty(),
        "decoded requests exceed the {EXPANSION}× reservation: {over:?}"
    );
}

/// Measured 2026-11-22 (three runs; the order the kinds run in moves a figure by up to ±0.3×): e2e burst traces
/// 2.0-2.6×, core sample logs 4.8-6.6× (36 wire bytes per record: the fixed per-record structs dominate),
/// loadgen GenAI traces 3.40×, logs 2.60×, metrics 2.47×. A reservation by wire bytes alone cannot cover small
/// items: the receivers would need a per-item term (or EXPANSION 4 and a top-up after decoding).
#[test]
#[ignore = "known gap: EXPANSION = 3 undercounts GenAI traces (3.4×) and small log records (6.6×)"]
fn the_reservation_covers_every_request_kind() {
    let over = over_the_reservation(every_kind());
    assert!(
        over.is_empty(),
        "decoded requests exceed the {EXPANSION}× reservation: {over:?}"
    );
}
