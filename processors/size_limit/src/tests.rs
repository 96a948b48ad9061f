//! Component tests of the `size_limit` processor: the limits of the managed tables against an 11 MB span
//! attribute, a 2 MB log line and a 31 MB request, per configuration, with neighbours checked untouched.

use std::sync::Arc;

use otlake_core::batch::channel;
use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::proto::logs::v1::LogRecord;
use otlake_core::proto::metrics::v1::metric;
use otlake_core::proto::trace::v1::Span;
use otlake_core::test_util::build_processor;
use otlake_core::test_util::{
    CollectingExporter, ProcessorHarness, batch_with_ack, kv, sample_logs, sample_metrics,
    sample_traces,
};
use otlake_core::{
    Batch, ComponentId, DynFactory, Exporter, ExporterContext, Outcome, Payload, Signal, Verdict,
};
use serde_json::{Value, json};

use crate::{SizeLimitProcessorFactory, TRUNCATED_ATTRIBUTE};

const MB: usize = 1_000_000;

fn harness(config: Value, signal: Signal) -> ProcessorHarness {
    let processor =
        build_processor(&SizeLimitProcessorFactory, &config, signal).expect("valid config");
    ProcessorHarness::new(processor)
}

/// Three spans; the middle one carries a `gen_ai.prompt` attribute of `attribute_bytes`.
fn traces_with_big_middle(attribute_bytes: usize) -> ExportTraceServiceRequest {
    let mut request = sample_traces(1, 3);
    request.resource_spans[0].scope_spans[0].spans[1]
        .attributes
        .push(kv("gen_ai.prompt", &"p".repeat(attribute_bytes)));
    request
}

/// Three log records; the middle one's body is `line_bytes` long, of two-byte characters.
fn logs_with_big_middle(line_bytes: usize) -> ExportLogsServiceRequest {
    let mut request = sample_logs(1, 3);
    request.resource_logs[0].scope_logs[0].log_records[1].body = Some(AnyValue {
        value: Some(any_value::Value::StringValue("é".repeat(line_bytes / 2))),
    });
    request
}

fn spans(payload: &Payload) -> Vec<Span> {
    match payload.request().expect("decodes") {
        otlake_core::ExportRequest::Traces(r) => r
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect(),
        _ => panic!("not traces"),
    }
}

fn logs(payload: &Payload) -> Vec<LogRecord> {
    match payload.request().expect("decodes") {
        otlake_core::ExportRequest::Logs(r) => r
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| sl.log_records.clone())
            .collect(),
        _ => panic!("not logs"),
    }
}

fn marker(attributes: &[KeyValue]) -> Option<i64> {
    attributes
        .iter()
        .find(|kv| kv.key == TRUNCATED_ATTRIBUTE)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::IntValue(i) => Some(*i),
            _ => None,
        })
}

/// Runs the processor on one request and resolves what it emits with `outcome`, as an exporter would.
async fn run_one(
    config: Value,
    payload: impl Into<Payload>,
    outcome: Outcome,
) -> (Vec<Arc<Payload>>, Verdict) {
    let payload = payload.into();
    let mut h = harness(config, payload.signal());
    let (batch, rx) = batch_with_ack(payload);
    h.process(batch);
    let emitted = h.take();
    let payloads = emitted.iter().map(|b| Arc::clone(&b.payload)).collect();
    for batch in emitted {
        batch.acks.resolve(outcome.clone());
    }
    (payloads, rx.wait().await)
}

#[test]
fn factory_validates_defaults_and_rejects_unknown_keys() {
    assert_eq!(SizeLimitProcessorFactory.type_name(), "size_limit");
    assert!(SizeLimitProcessorFactory.validate(&Value::Null).is_ok());
    let errors = SizeLimitProcessorFactory
        .validate(&json!({"max_requst_bytes": "1MB"}))
        .expect_err("typo");
    assert!(errors[0].message.contains("max_requst_bytes"), "{errors:?}");
}

#[tokio::test]
async fn lifecycle_built_dropped_and_small_requests_pass_untouched() {
    drop(
        build_processor(&SizeLimitProcessorFactory, &Value::Null, Signal::Logs).expect("defaults"),
    );
    let mut h = harness(Value::Null, Signal::Traces);
    h.flush();
    assert!(h.take().is_empty());

    // Fast path: shared with another fan-out branch and small, so it is neither copied nor changed.
    let (batch, rx) = batch_with_ack(sample_traces(2, 5));
    let other_branch = batch.share();
    h.process(batch);
    let emitted = h.take();
    assert_eq!(emitted.len(), 1);
    assert!(Arc::ptr_eq(&emitted[0].payload, &other_branch.payload));
    for b in emitted.into_iter().chain([other_branch]) {
        b.acks.resolve(Outcome::Delivered);
    }
    assert_eq!(rx.wait().await.outcome, Outcome::Delivered);
}

#[tokio::test]
async fn an_11_mb_span_is_rejected_alone_by_default() {
    let original = traces_with_big_middle(11 * MB);
    let expected_size = spans(&Payload::from(original.clone()))[1].encoded_len_for_test();
    let (emitted, verdict) = run_one(Value::Null, original.clone(), Outcome::Delivered).await;
    assert_eq!(emitted.len(), 1);
    let kept = spans(&emitted[0]);
    let before = spans(&Payload::from(original));
    assert_eq!(kept, vec![before[0].clone(), before[2].clone()]);
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 1);
    assert_eq!(
        verdict.rejection_message.as_deref(),
        Some(
            format!("span of {expected_size} bytes exceeds max_record_bytes (10000000 bytes)")
                .as_str()
        )
    );
}

#[tokio::test]
async fn an_11_mb_span_is_truncated_to_fit_when_configured() {
    let original = traces_with_big_middle(11 * MB);
    let before = spans(&Payload::from(original.clone()));
    let original_size = before[1].encoded_len_for_test();
    let (emitted, verdict) = run_one(
        json!({"record_action": "truncate"}),
        original,
        Outcome::Delivered,
    )
    .await;
    let kept = spans(&emitted[0]);
    assert_eq!(kept.len(), 3);
    assert_eq!((&kept[0], &kept[2]), (&before[0], &before[2]));
    let truncated = &kept[1];
    assert!(truncated.encoded_len_for_test() <= 10 * MB);
    assert!(
        truncated.encoded_len_for_test() > 9 * MB,
        "cut no more than needed"
    );
    assert_eq!(marker(&truncated.attributes), Some(original_size as i64));
    // The small attribute of the same span is whole.
    assert_eq!(
        truncated.attributes[0],
        kv("gen_ai.request.model", "test-model")
    );
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 0);
}

#[tokio::test]
async fn a_2_mb_log_line_is_truncated_by_default_at_a_character_boundary() {
    let original = logs_with_big_middle(2 * MB);
    let before = logs(&Payload::from(original.clone()));
    let (emitted, verdict) = run_one(Value::Null, original, Outcome::Delivered).await;
    let kept = logs(&emitted[0]);
    assert_eq!(kept.len(), 3);
    assert_eq!((&kept[0], &kept[2]), (&before[0], &before[2]));
    let Some(any_value::Value::StringValue(line)) =
        kept[1].body.as_ref().and_then(|b| b.value.as_ref())
    else {
        panic!("body is still a string");
    };
    assert_eq!(line.len(), MB, "1 MB of two-byte characters");
    assert!(line.chars().all(|c| c == 'é'));
    assert!(marker(&kept[1].attributes).is_some_and(|size| size as usize > 2 * MB));
    assert_eq!(verdict.rejected_items, 0);
}

#[tokio::test]
async fn a_2_mb_log_line_is_rejected_alone_when_configured() {
    let original = logs_with_big_middle(2 * MB);
    let before = logs(&Payload::from(original.clone()));
    let (emitted, verdict) = run_one(
        json!({"log_line_action": "reject"}),
        original,
        Outcome::Delivered,
    )
    .await;
    assert_eq!(
        logs(&emitted[0]),
        vec![before[0].clone(), before[2].clone()]
    );
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 1);
    assert_eq!(
        verdict.rejection_message.as_deref(),
        Some("log line of 2000000 bytes exceeds max_log_line_bytes (1000000 bytes)")
    );
}

#[tokio::test]
async fn a_31_mb_request_is_rejected_whole_under_every_record_action() {
    for config in [Value::Null, json!({"record_action": "truncate"})] {
        // Four spans of ~7.75 MB: each within the record limit, together over the request limit.
        let mut request = sample_traces(1, 4);
        for span in &mut request.resource_spans[0].scope_spans[0].spans {
            span.attributes
                .push(kv("gen_ai.completion", &"c".repeat(31 * MB / 4)));
        }
        let size = Payload::from(request.clone()).encoded_len();
        assert!(size > 31 * MB);
        let (emitted, verdict) = run_one(config, request, Outcome::Delivered).await;
        assert!(emitted.is_empty());
        assert_eq!(
            verdict.outcome,
            Outcome::rejected(format!(
                "request of {size} bytes exceeds max_request_bytes (30000000 bytes)"
            ))
        );
    }
}

#[tokio::test]
async fn a_request_with_every_record_refused_is_answered_here() {
    let mut request = sample_traces(1, 2);
    for span in &mut request.resource_spans[0].scope_spans[0].spans {
        span.attributes.push(kv("blob", &"b".repeat(2_000)));
    }
    let (emitted, verdict) = run_one(
        json!({"max_record_bytes": 1000, "max_log_line_bytes": 100}),
        request,
        Outcome::retryable("must not be asked"),
    )
    .await;
    assert!(emitted.is_empty());
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 2);
}

#[tokio::test]
async fn an_oversize_data_point_is_rejected_and_its_empty_metric_removed() {
    let mut request = sample_metrics(1);
    let histogram = &mut request.resource_metrics[0].scope_metrics[0].metrics[1];
    let Some(metric::Data::Histogram(h)) = &mut histogram.data else {
        panic!("sample has a histogram second");
    };
    h.data_points[0]
        .attributes
        .push(kv("blob", &"b".repeat(5_000)));
    let (emitted, verdict) = run_one(
        json!({"max_record_bytes": 1000, "max_log_line_bytes": 100}),
        request,
        Outcome::Delivered,
    )
    .await;
    let Ok(otlake_core::ExportRequest::Metrics(kept)) = emitted[0].request() else {
        panic!("metrics");
    };
    let metrics = &kept.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(
        metrics.len(),
        1,
        "the gauge stays, the emptied histogram goes"
    );
    assert_eq!(metrics[0].name, "gpu.utilization");
    assert_eq!(emitted[0].item_count(), 2);
    assert_eq!(verdict.rejected_items, 1);
    assert!(
        verdict
            .rejection_message
            .as_deref()
            .is_some_and(|m| m.starts_with("data point of ")),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn export_failure_after_a_partial_rejection_is_retryable_and_keeps_the_count() {
    let mut h = harness(
        json!({"max_record_bytes": 1000, "max_log_line_bytes": 100, "log_line_action": "reject"}),
        Signal::Logs,
    );
    let (batch, rx) = batch_with_ack(logs_with_big_middle(400));
    h.process(batch);
    let (clean, rx_clean) = batch_with_ack(sample_logs(1, 2));
    h.process(clean);

    let (exporter, collected) = CollectingExporter::new(Outcome::retryable("disk full"));
    let (tx, input) = channel("exporter", 4);
    let run = tokio::spawn(Box::new(exporter).run(
        input,
        ExporterContext {
            id: ComponentId::new("collecting"),
        },
    ));
    let emitted: Vec<Batch> = h.take();
    assert_eq!(emitted.len(), 2);
    for batch in emitted {
        assert!(tx.send(batch).await.is_ok());
    }
    drop(tx);
    run.await.expect("joined").expect("ran");
    assert_eq!(collected.item_count(), 4);

    let verdict = rx.wait().await;
    assert!(matches!(verdict.outcome, Outcome::Retryable { .. }));
    assert_eq!(verdict.rejected_items, 1);
    let verdict = rx_clean.wait().await;
    assert!(matches!(verdict.outcome, Outcome::Retryable { .. }));
    assert_eq!(verdict.rejected_items, 0);
}

/// `encoded_len` without importing prost's trait into every test.
trait EncodedLen {
    fn encoded_len_for_test(&self) -> usize;
}

impl EncodedLen for Span {
    fn encoded_len_for_test(&self) -> usize {
        prost::Message::encoded_len(self)
    }
}
