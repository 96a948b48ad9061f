//! Consistent sampling across processes: two independent otlake sidecars given the same traces keep exactly the
//! same trace ids, about the configured share of them, and every error span.

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
