//! Component tests of the `sampling` processor: statistics of the kept share, agreement between instances,
//! rules, logs following their traces, incoming thresholds, tail mode, and acknowledgements.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use otlake_core::batch::channel;
use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use otlake_core::test_util::build_processor;
use otlake_core::test_util::{
    CollectingExporter, ProcessorHarness, batch_with_ack, kv, sample_metrics, sample_traces,
};
use otlake_core::{
    Batch, ComponentId, DynFactory, DynProcessorFactory, Exporter, ExporterContext, Outcome, Signal,
};
use serde_json::{Value, json};

use crate::{ProbabilisticSamplerFactory, SamplingProcessorFactory};

fn harness(config: Value, signal: Signal) -> ProcessorHarness {
    let processor =
        build_processor(&SamplingProcessorFactory, &config, signal).expect("valid config");
    ProcessorHarness::new(processor)
}

/// SplitMix64: reproducible pseudo-random trace ids without a dependency.
struct Ids(u64);

impl Ids {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn trace_id(&mut self) -> Vec<u8> {
        let mut id = self.next_u64().to_be_bytes().to_vec();
        id.extend(self.next_u64().to_be_bytes());
        id
    }
}

/// A trace id whose randomness (last 7 bytes) starts with `hex` (e.g. "a0" → 0xa0000000000000).
fn id_with_randomness(hex: &str) -> Vec<u8> {
    let value = u64::from_str_radix(&format!("{hex:0<14}"), 16).expect("hex");
    let mut id = vec![0x11; 9];
    id.extend(&value.to_be_bytes()[1..]);
    id
}

fn span(trace_id: Vec<u8>, n: u64) -> Span {
    Span {
        trace_id,
        span_id: n.to_be_bytes().to_vec(),
        parent_span_id: vec![9; 8],
        name: format!("span-{n}"),
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 2_000,
        ..Default::default()
    }
}

fn error(mut span: Span) -> Span {
    span.status = Some(Status {
        code: status::StatusCode::Error as i32,
        ..Default::default()
    });
    span
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn spans_of(batches: &[Batch]) -> Vec<Span> {
    batches
        .iter()
        .flat_map(|b| match b.payload.request().expect("decodes") {
            otlake_core::ExportRequest::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| ss.spans.clone())
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect()
}

fn resolve_all(batches: Vec<Batch>, outcome: &Outcome) {
    for b in batches {
        b.acks.resolve(outcome.clone());
    }
}

/// Feeds `count` one-span traces in requests of 1,000 and returns the kept trace ids.
fn kept_trace_ids(h: &mut ProcessorHarness, seed: u64, count: usize) -> BTreeSet<Vec<u8>> {
    let mut ids = Ids(seed);
    let mut kept = BTreeSet::new();
    for chunk in 0..count / 1000 {
        let spans = (0..1000)
            .map(|i| span(ids.trace_id(), (chunk * 1000 + i) as u64))
            .collect();
        let (batch, _rx) = batch_with_ack(traces(spans));
        h.process(batch);
        let out = h.take();
        kept.extend(spans_of(&out).into_iter().map(|s| s.trace_id));
        resolve_all(out, &Outcome::Delivered);
    }
    kept
}

#[test]
fn factories_validate_and_reject_unknown_keys() {
    for factory in [
        &SamplingProcessorFactory as &dyn DynProcessorFactory,
        &ProbabilisticSamplerFactory,
    ] {
        assert!(factory.validate(&Value::Null).is_ok());
        let errors = factory
            .validate(&json!({"sampling_percentag": 5}))
            .expect_err("typo");
        assert!(
            errors[0].message.contains("sampling_percentag"),
            "{errors:?}"
        );
        let errors = factory
            .validate(&json!({"hash_seed": 22}))
            .expect_err("not supported");
        assert_eq!(errors[0].path, "hash_seed");
    }
    assert_eq!(SamplingProcessorFactory.type_name(), "sampling");
    assert_eq!(
        ProbabilisticSamplerFactory.type_name(),
        "probabilistic_sampler"
    );
}

#[test]
fn the_collector_alias_defaults_to_proportional_mode() {
    // Upstream kept the span at 50% (th:8); its randomness 0xa0… passes 50% but not 25%.
    let mut upstream = span(id_with_randomness("a0"), 1);
    upstream.trace_state = "ot=th:8".into();
    let config = json!({"sampling_percentage": 50});
    let kept = |factory: &dyn DynProcessorFactory| {
        let processor = build_processor(factory, &config, Signal::Traces).expect("valid");
        let mut h = ProcessorHarness::new(processor);
        let (batch, _rx) = batch_with_ack(traces(vec![upstream.clone()]));
        h.process(batch);
        spans_of(&h.take())
    };
    let equalizing = kept(&SamplingProcessorFactory);
    assert_eq!(equalizing.len(), 1);
    assert_eq!(equalizing[0].trace_state, "ot=th:8");
    assert!(kept(&ProbabilisticSamplerFactory).is_empty(), "50% of 50%");
}

#[tokio::test]
async fn lifecycle_built_dropped_and_metrics_pass_untouched() {
    drop(
        build_processor(&SamplingProcessorFactory, &Value::Null, Signal::Metrics)
            .expect("defaults"),
    );
    let mut h = harness(json!({"sampling_percentage": 1}), Signal::Metrics);
    assert_eq!(h.next_deadline(), None);
    h.flush();
    assert!(h.take().is_empty());
    let (batch, rx) = batch_with_ack(sample_metrics(3));
    let shared = Arc::clone(&batch.payload);
    h.process(batch);
    let out = h.take();
    assert!(Arc::ptr_eq(&out[0].payload, &shared));
    resolve_all(out, &Outcome::Delivered);
    assert_eq!(rx.wait().await.outcome, Outcome::Delivered);

    // Tail mode dropped while holding spans (a crash path): the client retries, never hears success.
    let mut h = harness(json!({"tail": {"enabled": true}}), Signal::Traces);
    let (batch, rx) = batch_with_ack(sample_traces(1, 3));
    h.process(batch);
    assert!(h.take().is_empty());
    drop(h);
    assert!(matches!(rx.wait().await.outcome, Outcome::Retryable { .. }));
}

#[test]
fn kept_share_is_within_five_sigma_of_the_ratio() {
    let mut h = harness(json!({"sampling_percentage": 10}), Signal::Traces);
    let n = 100_000f64;
    let kept = kept_trace_ids(&mut h, 7, 100_000).len() as f64;
    // The threshold at precision 4 (th:e666) keeps 0x1999.../2^56 ≈ 10.0006 %.
    let p = 0.1;
    let sigma = (n * p * (1.0 - p)).sqrt();
    assert!(
        (kept - n * p).abs() < 5.0 * sigma,
        "kept {kept} of {n}, expected {} ± {}",
        n * p,
        5.0 * sigma
    );
}

#[test]
fn independent_instances_keep_exactly_the_same_traces() {
    let config = json!({"sampling_percentage": 25, "rules": [{"status_code": "error"}]});
    let mut first = harness(config.clone(), Signal::Traces);
    let mut second = harness(config, Signal::Traces);
    let a = kept_trace_ids(&mut first, 42, 20_000);
    let b = kept_trace_ids(&mut second, 42, 20_000);
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[tokio::test]
async fn every_error_span_is_kept_with_th_zero_and_the_rest_sampled() {
    let mut h = harness(
        json!({"sampling_percentage": 1, "rules": [{"name": "errors", "status_code": "error"}]}),
        Signal::Traces,
    );
    let mut ids = Ids(3);
    let spans: Vec<Span> = (0..5_000)
        .map(|i| {
            let s = span(ids.trace_id(), i);
            if i.is_multiple_of(7) { error(s) } else { s }
        })
        .collect();
    let errors = spans.iter().filter(|s| s.status.is_some()).count();
    let (batch, rx) = batch_with_ack(traces(spans));
    h.process(batch);
    let out = h.take();
    let kept = spans_of(&out);
    let kept_errors: Vec<_> = kept.iter().filter(|s| s.status.is_some()).collect();
    assert_eq!(kept_errors.len(), errors);
    assert!(kept_errors.iter().all(|s| s.trace_state == "ot=th:0"));
    let others = kept.len() - errors;
    assert!(
        others < 150,
        "about 1% of {} non-error spans, kept {others}",
        5_000 - errors
    );
    assert!(
        kept.iter()
            .filter(|s| s.status.is_none())
            .all(|s| s.trace_state == "ot=th:fd70a")
    );
    resolve_all(out, &Outcome::Delivered);
    let verdict = rx.wait().await;
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 0, "sampled out is not refused");
}

#[test]
fn every_log_of_a_kept_trace_is_kept() {
    let config = json!({"sampling_percentage": 20});
    let mut trace_sampler = harness(config.clone(), Signal::Traces);
    let mut log_sampler = harness(config, Signal::Logs);
    let mut ids = Ids(11);
    let trace_ids: Vec<Vec<u8>> = (0..2_000).map(|_| ids.trace_id()).collect();

    let (batch, _rx) = batch_with_ack(traces(
        trace_ids
            .iter()
            .enumerate()
            .map(|(i, id)| span(id.clone(), i as u64))
            .collect(),
    ));
    trace_sampler.process(batch);
    let kept_traces: BTreeSet<Vec<u8>> = spans_of(&trace_sampler.take())
        .into_iter()
        .map(|s| s.trace_id)
        .collect();

    // Three INFO records per trace, plus one ERROR record of a trace that was sampled out.
    let mut records: Vec<LogRecord> = trace_ids
        .iter()
        .flat_map(|id| {
            (0..3).map(|n| LogRecord {
                trace_id: id.clone(),
                severity_number: 9,
                time_unix_nano: n,
                ..Default::default()
            })
        })
        .collect();
    let dropped_trace = trace_ids
        .iter()
        .find(|id| !kept_traces.contains(*id))
        .expect("some trace sampled out")
        .clone();
    records.push(LogRecord {
        trace_id: dropped_trace.clone(),
        severity_number: 17,
        ..Default::default()
    });
    let (batch, _rx) = batch_with_ack(logs(records));
    log_sampler.process(batch);
    let out = log_sampler.take();
    let Ok(otlake_core::ExportRequest::Logs(kept)) = out[0].payload.request() else {
        panic!("logs");
    };
    let kept_records: Vec<&LogRecord> = kept
        .resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .collect();
    let info_trace_ids: BTreeSet<Vec<u8>> = kept_records
        .iter()
        .filter(|r| r.severity_number == 9)
        .map(|r| r.trace_id.clone())
        .collect();
    assert_eq!(info_trace_ids, kept_traces);
    assert_eq!(
        kept_records
            .iter()
            .filter(|r| r.severity_number == 9)
            .count(),
        3 * kept_traces.len()
    );
    assert!(
        kept_records
            .iter()
            .any(|r| r.severity_number == 17 && r.trace_id == dropped_trace),
        "ERROR is at or above the default min_severity WARN"
    );
}

#[test]
fn an_incoming_stricter_th_is_honored_and_a_looser_one_tightened() {
    let mut h = harness(json!({"sampling_percentage": 50}), Signal::Traces);
    let with_state = |hex: &str, state: &str, n| {
        let mut s = span(id_with_randomness(hex), n);
        s.trace_state = state.into();
        s
    };
    let (batch, _rx) = batch_with_ack(traces(vec![
        // Upstream sampled at 10% (th:e666): kept only with randomness >= e666, th unchanged.
        with_state("f0", "ot=th:e666,vendor=x", 1),
        with_state("a0", "ot=th:e666", 2),
        // Upstream at 100%: tightened to ours (th:8).
        with_state("a0", "vendor=x,ot=th:0;rv:a0000000000000", 3),
        with_state("70", "ot=th:0", 4),
        // No upstream th.
        with_state("90", "", 5),
    ]));
    h.process(batch);
    let kept: Vec<(String, String)> = spans_of(&h.take())
        .into_iter()
        .map(|s| (s.name, s.trace_state))
        .collect();
    assert_eq!(
        kept,
        [
            ("span-1".into(), "ot=th:e666,vendor=x".into()),
            ("span-3".into(), "ot=th:8;rv:a0000000000000,vendor=x".into()),
            ("span-5".into(), "ot=th:8".into()),
        ]
    );
}

#[tokio::test]
async fn a_partly_kept_request_resolves_only_with_its_kept_part() {
    let mut h = harness(json!({"sampling_percentage": 50}), Signal::Traces);
    let (partly, rx_partly) = batch_with_ack(traces(vec![
        span(id_with_randomness("f0"), 1),
        span(id_with_randomness("10"), 2),
    ]));
    // An upstream stage refused one item of this request: the count must survive sampling.
    partly.acks.reject_items(1, "span over max_record_bytes");
    let (none_kept, rx_none) = batch_with_ack(traces(vec![span(id_with_randomness("10"), 3)]));
    h.process(partly);
    h.process(none_kept);
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].item_count(), 1);

    // Fully sampled out: answered at once, as delivered.
    assert_eq!(rx_none.wait().await.outcome, Outcome::Delivered);

    let (exporter, collected) = CollectingExporter::new(Outcome::retryable("exporter down"));
    let (tx, input) = channel("exporter", 4);
    let run = tokio::spawn(Box::new(exporter).run(
        input,
        ExporterContext {
            id: ComponentId::new("collecting"),
        },
    ));
    for batch in out {
        assert!(tx.send(batch).await.is_ok());
    }
    drop(tx);
    run.await.expect("joined").expect("ran");
    assert_eq!(collected.item_count(), 1);
    let verdict = rx_partly.wait().await;
    assert!(matches!(verdict.outcome, Outcome::Retryable { .. }));
    assert_eq!(verdict.rejected_items, 1);
    assert_eq!(
        verdict.rejection_message.as_deref(),
        Some("span over max_record_bytes")
    );
}

#[tokio::test]
async fn tail_mode_keeps_a_whole_trace_when_a_late_span_is_an_error() {
    let mut h = harness(
        json!({"sampling_percentage": 1, "rules": [{"status_code": "error"}],
               "tail": {"enabled": true, "decision_wait": "1s"}}),
        Signal::Traces,
    );
    let id = id_with_randomness("01"); // the ratio alone would drop it
    let (first, rx_first) = batch_with_ack(traces(vec![span(id.clone(), 1), span(id.clone(), 2)]));
    let (second, rx_second) = batch_with_ack(traces(vec![error(span(id.clone(), 3))]));
    let (other, rx_other) = batch_with_ack(traces(vec![span(id_with_randomness("02"), 4)]));
    h.process(first);
    h.process(second);
    h.process(other);
    assert!(h.take().is_empty(), "held until the decision");
    let deadline = h.next_deadline().expect("held traces have a deadline");
    h.tick_at(deadline - Duration::from_millis(1));
    assert!(h.take().is_empty());
    h.tick_at(deadline + Duration::from_millis(1));
    let out = h.take();
    let kept: Vec<String> = spans_of(&out).into_iter().map(|s| s.name).collect();
    assert_eq!(kept, ["span-1", "span-2", "span-3"]);
    assert_eq!(h.next_deadline(), None);
    // The sampled-out trace's client hears success; the kept trace's clients wait for the exporter.
    assert_eq!(rx_other.wait().await.outcome, Outcome::Delivered);
    resolve_all(out, &Outcome::retryable("exporter down"));
    assert!(matches!(
        rx_first.wait().await.outcome,
        Outcome::Retryable { .. }
    ));
    assert!(matches!(
        rx_second.wait().await.outcome,
        Outcome::Retryable { .. }
    ));
}

#[test]
fn tail_mode_keeps_traces_with_a_slow_root_and_decides_early_at_its_bound() {
    let mut h = harness(
        json!({"sampling_percentage": 0, "rules": [{"min_root_duration": "2s"}],
               "tail": {"enabled": true, "decision_wait": "30s", "max_traces": 2}}),
        Signal::Traces,
    );
    let slow = id_with_randomness("33");
    let mut root = span(slow.clone(), 1);
    root.parent_span_id = Vec::new();
    root.end_time_unix_nano = root.start_time_unix_nano + 3_000_000_000;
    for (n, s) in [
        span(slow.clone(), 2),
        span(id_with_randomness("44"), 3),
        root,
    ]
    .into_iter()
    .enumerate()
    {
        let (batch, _rx) = batch_with_ack(traces(vec![s]));
        h.process(batch);
        assert!(h.take().is_empty(), "request {n}: within max_traces");
    }
    // A third trace exceeds max_traces: the oldest (the slow trace) is decided now, not dropped unseen.
    let (batch, _rx) = batch_with_ack(traces(vec![span(id_with_randomness("55"), 4)]));
    h.process(batch);
    let kept: Vec<String> = spans_of(&h.take()).into_iter().map(|s| s.name).collect();
    assert_eq!(kept, ["span-2", "span-1"]);
    // A late span of the decided slow trace follows its decision at once.
    let (batch, _rx) = batch_with_ack(traces(vec![span(slow, 5)]));
    h.process(batch);
    let kept: Vec<String> = spans_of(&h.take()).into_iter().map(|s| s.name).collect();
    assert_eq!(kept, ["span-5"]);
    h.flush();
    assert!(
        spans_of(&h.take()).is_empty(),
        "0% and no rule: the rest is dropped"
    );
    assert_eq!(h.next_deadline(), None);
}

#[test]
fn tail_mode_decides_early_when_held_bytes_exceed_the_bound() {
    let mut h = harness(
        json!({"tail": {"enabled": true, "decision_wait": "30s", "max_bytes": 2000}}),
        Signal::Traces,
    );
    let mut ids = Ids(5);
    let mut emitted = 0;
    for n in 0..20 {
        let mut s = span(ids.trace_id(), n);
        s.attributes.push(kv("payload", &"x".repeat(300)));
        let (batch, _rx) = batch_with_ack(traces(vec![s]));
        h.process(batch);
        emitted += spans_of(&h.take()).len();
    }
    assert!(
        emitted >= 14,
        "at most ~5 traces of ~330 bytes fit in 2000 bytes; {emitted} emitted early"
    );
    h.flush();
    assert_eq!(emitted + spans_of(&h.take()).len(), 20);
}
