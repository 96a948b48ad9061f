//! Consistent sampling across processes: two independent otlake sidecars given the same traces keep exactly the
//! same trace ids, about the configured share of them, and every error span. Tail sampling in the real runtime:
//! decisions at the deadline on whole traces, clients answered after them, held traces decided at SIGTERM.

use std::collections::BTreeSet;

use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::trace::v1::{Span, Status, status};
use otlake_core::test_util::sample_traces;
use prost::Message;

use crate::support::{Daemon, OTLP_IN, TELEMETRY, post_protobuf, read_jsonl};

const TRACES: u64 = 2_000;

/// `TRACES` one-span traces with W3C-random-looking ids (a fixed mixing function, so both runs send the same);
/// every 50th span has status ERROR.
fn requests() -> Vec<ExportTraceServiceRequest> {
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..TRACES / 100)
        .map(|r| {
            let mut request = sample_traces(1, 100);
            let spans: &mut Vec<Span> = &mut request.resource_spans[0].scope_spans[0].spans;
            for (i, span) in spans.iter_mut().enumerate() {
                let n = r * 100 + i as u64;
                let mut id = mix(n).to_be_bytes().to_vec();
                id.extend_from_slice(&mix(n + TRACES).to_be_bytes());
                span.trace_id = id;
                if n.is_multiple_of(50) {
                    span.status = Some(Status {
                        code: status::StatusCode::Error as i32,
                        ..Default::default()
                    });
                }
            }
            request
        })
        .collect()
}

fn kept_by_one_sidecar() -> (BTreeSet<String>, usize) {
    let mut d = Daemon::start(&format!(
        "{OTLP_IN}processors:\n  sampling:\n    sampling_percentage: 25\n    rules:\n      - name: errors\n        status_code: error\nexporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [sampling], exporters: [file]}}\n{TELEMETRY}"
    ));
    for request in requests() {
        let r = post_protobuf(d.ports.http, "/v1/traces", &request.encode_to_vec());
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(d.terminate());
    let mut kept = BTreeSet::new();
    let mut errors = 0;
    for line in read_jsonl(&d.dir.path().join("out.jsonl")) {
        for s in line["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .into_iter()
            .flatten()
        {
            kept.insert(s["traceId"].as_str().expect("id").to_owned());
            if s["status"]["code"] == 2 {
                errors += 1;
            }
        }
    }
    (kept, errors)
}

#[test]
fn two_independent_sidecars_keep_the_same_traces() {
    let (first, first_errors) = kept_by_one_sidecar();
    let (second, _) = kept_by_one_sidecar();
    assert_eq!(first, second, "the same trace ids in both processes");
    assert_eq!(first_errors as u64, TRACES / 50, "every error span is kept");
    // 25% of the 1,960 non-error traces plus the 40 errors; binomial sd ≈ 19: 5 sd either side.
    let expected = 0.25 * (TRACES - TRACES / 50) as f64 + (TRACES / 50) as f64;
    let kept = first.len() as f64;
    assert!(
        (kept - expected).abs() < 5.0 * 19.2,
        "kept {kept}, expected about {expected}"
    );
}

/// One span of trace `trace` (span id `span`), status ERROR when `error`.
fn one_span(trace: u8, span: u8, error: bool) -> Vec<u8> {
    let mut request = sample_traces(1, 1);
    let s = &mut request.resource_spans[0].scope_spans[0].spans[0];
    s.trace_id = vec![trace; 16];
    s.span_id = vec![span; 8];
    s.parent_span_id = Vec::new();
    if error {
        s.status = Some(Status {
            code: status::StatusCode::Error as i32,
            ..Default::default()
        });
    }
    request.encode_to_vec()
}

/// Posts `body` from a thread; the thread returns the status code and how long the answer took.
fn post_in_background(
    port: u16,
    body: Vec<u8>,
) -> std::thread::JoinHandle<(u16, std::time::Duration)> {
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let status = post_protobuf(port, "/v1/traces", &body).status;
        (status, started.elapsed())
    })
}

/// A daemon keeping only error traces (0% otherwise), deciding on whole traces after `decision_wait`.
fn tail_sidecar(decision_wait: &str) -> Daemon {
    Daemon::start(&format!(
        "{OTLP_IN}processors:\n  sampling:\n    sampling_percentage: 0\n    rules:\n      - name: errors\n        status_code: error\n    tail:\n      enabled: true\n      decision_wait: {decision_wait}\nexporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [sampling], exporters: [file]}}\n{TELEMETRY}"
    ))
}

/// Span ids (hex) in the file exporter's output, with how often each landed.
fn landed_span_ids(d: &Daemon) -> std::collections::BTreeMap<String, usize> {
    let mut ids = std::collections::BTreeMap::new();
    for line in read_jsonl(&d.dir.path().join("out.jsonl")) {
        for rs in line["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    *ids.entry(s["spanId"].as_str().unwrap_or_default().to_owned())
                        .or_insert(0) += 1;
                }
            }
        }
    }
    ids
}

/// Tail sampling in the real runtime: the pipeline's timer decides a trace `decision_wait` after its first
/// span, on every span that arrived meanwhile (a late error keeps the whole trace), and the clients hear
/// their answer only then.
#[test]
fn tail_sampling_keeps_a_trace_whose_late_span_is_an_error_and_answers_after_the_decision() {
    let mut d = tail_sidecar("2s");
    let port = d.ports.http;
    let first = post_in_background(port, one_span(0xa1, 0x01, false));
    let other = post_in_background(port, one_span(0xb2, 0x03, false));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let late_error = post_in_background(port, one_span(0xa1, 0x02, true));
    let (status, waited) = first.join().expect("client");
    assert_eq!(status, 200);
    assert!(
        waited >= std::time::Duration::from_millis(1900),
        "answered after {waited:?}, before the 2 s decision"
    );
    assert_eq!(late_error.join().expect("client").0, 200);
    // A dropped trace is a deliberate drop: its client hears success too.
    assert_eq!(other.join().expect("client").0, 200);
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());
    let landed = landed_span_ids(&d);
    let kept: Vec<(&str, usize)> = landed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        kept,
        [("0101010101010101", 1), ("0202020202020202", 1)],
        "trace a1 whole, once; trace b2 dropped"
    );
}

/// SIGTERM decides every held trace at once (long before `decision_wait`), keeps what the rules keep, answers
/// every waiting client and exits cleanly.
#[test]
fn tail_sampling_flushes_held_traces_on_sigterm() {
    let mut d = tail_sidecar("60s");
    let port = d.ports.http;
    let error = post_in_background(port, one_span(0xc3, 0x04, true));
    let plain = post_in_background(port, one_span(0xd4, 0x05, false));
    // Both requests are in (held) well before this; shutdown decides them.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());
    assert_eq!(error.join().expect("client").0, 200);
    assert_eq!(plain.join().expect("client").0, 200);
    let landed = landed_span_ids(&d);
    assert_eq!(
        landed.into_iter().collect::<Vec<_>>(),
        [("0404040404040404".to_owned(), 1)],
        "the held error trace is written at shutdown, the other dropped"
    );
}
