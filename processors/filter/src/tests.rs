//! Component tests of the `filter` processor: config, lifecycle, acknowledgements, the drop counter, and
//! what comes out for each context.

use std::sync::Arc;

use otlake_core::proto::logs::v1::LogRecord;
use otlake_core::proto::trace::v1::span::Event;
use otlake_core::test_util::{
    CountingRecorder, ProcessorHarness, batch_with_ack, build_processor, kv, sample_logs,
    sample_metrics, sample_traces,
};
use otlake_core::{Batch, DynFactory, ExportRequest, Outcome, Signal};
use serde_json::{Value, json};

use crate::FilterProcessorFactory;

fn harness(config: Value, signal: Signal) -> ProcessorHarness {
    ProcessorHarness::new(build_processor(&FilterProcessorFactory, &config, signal).expect("valid"))
}

fn span_names(batches: &[Batch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| match b.payload.request().expect("decodes") {
            ExportRequest::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .map(|s| s.name.clone())
                .collect::<Vec<_>>(),
            _ => panic!("traces"),
        })
        .collect()
}

#[test]
fn the_example_config_validates_and_outside_the_subset_is_refused_with_its_key() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/examples/filter.yaml"
    ))
    .expect("example");
    let yaml: Value = serde_saphyr::from_str(&text).expect("yaml");
    assert_eq!(
        FilterProcessorFactory
            .validate(&yaml["processors"]["filter"])
            .err(),
        None
    );

    let errors = FilterProcessorFactory
        .validate(&json!({
            "traces": {"span": ["name == \"ok\"", "Len(name) > 3"]},
            "logs": {"log_record": ["kind == SPAN_KIND_SERVER"]},
            "metrics": {"datapoint": ["attributes[\"a\"][\"b\"] == 1"]},
        }))
        .expect_err("outside the subset");
    let found: Vec<(String, bool)> = errors
        .iter()
        .map(|e| (e.path.clone(), e.message.contains('`')))
        .collect();
    assert_eq!(
        found,
        [
            ("traces.span.1".to_owned(), true),
            ("logs.log_record.0".to_owned(), true),
            ("metrics.datapoint.0".to_owned(), true),
        ]
    );
    assert!(errors[0].message.contains("function `Len`"), "{errors:?}");
    assert!(errors[1].message.contains("path `kind`"), "{errors:?}");
    assert!(errors[2].message.contains("nested indexing"), "{errors:?}");
    // The Collector's legacy keys are not taken silently.
    let errors = FilterProcessorFactory
        .validate(&json!({"spans": {"exclude": {"match_type": "strict", "span_names": ["x"]}}}))
        .expect_err("legacy");
    assert!(errors[0].to_string().contains("spans"), "{errors:?}");
    assert!(
        FilterProcessorFactory.validate(&Value::Null).is_err(),
        "no conditions"
    );
}

#[tokio::test]
async fn health_spans_are_dropped_and_their_siblings_go_on_with_the_ack() {
    let recorder = Arc::new(CountingRecorder::default());
    let mut h = metrics::with_local_recorder(recorder.as_ref(), || {
        harness(
            json!({"traces": {"span": ["attributes[\"http.route\"] == \"/health\""]}}),
            Signal::Traces,
        )
    });
    let mut request = sample_traces(2, 3);
    for (i, rs) in request.resource_spans.iter_mut().enumerate() {
        for (j, s) in rs.scope_spans[0].spans.iter_mut().enumerate() {
            s.name = format!("r{i}s{j}");
            if j == 1 {
                s.attributes.push(kv("http.route", "/health"));
            }
        }
    }
    let siblings_before: Vec<_> = request
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans[0].spans.clone())
        .filter(|s| !s.name.ends_with("s1"))
        .collect();
    let (batch, rx) = batch_with_ack(request);
    h.process(batch);
    let out = h.take();
    assert_eq!(span_names(&out), ["r0s0", "r0s2", "r1s0", "r1s2"]);
    let ExportRequest::Traces(r) = out[0].payload.request().expect("decodes") else {
        panic!("traces")
    };
    let siblings_after: Vec<_> = r
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans[0].spans.clone())
        .collect();
    assert_eq!(
        siblings_after, siblings_before,
        "siblings untouched, byte for byte"
    );
    assert_eq!(
        recorder.get(
            "otlake_processor_dropped_items_total{processor=filter,signal=traces,reason=filtered}"
        ),
        2
    );
    // The kept part carries the client's acknowledgement: the exporter's answer is the client's.
    for b in out {
        b.acks.resolve(Outcome::retryable("disk full"));
    }
    assert!(matches!(rx.wait().await.outcome, Outcome::Retryable { .. }));
}

#[tokio::test]
async fn a_request_dropped_whole_is_delivered_and_one_nothing_matches_passes_untouched() {
    let mut h = harness(
        json!({"traces": {"span": ["IsMatch(name, \"^span\")"]}}),
        Signal::Traces,
    );
    let (batch, rx) = batch_with_ack(sample_traces(1, 2));
    let names = span_names(std::slice::from_ref(&batch));
    assert!(names.iter().all(|n| n.starts_with("span")), "{names:?}");
    h.process(batch);
    assert!(h.take().is_empty());
    assert_eq!(rx.wait().await.outcome, Outcome::Delivered);

    let mut h = harness(
        json!({"traces": {"span": ["name == \"nothing\""]}}),
        Signal::Traces,
    );
    let (batch, _rx) = batch_with_ack(sample_traces(1, 2));
    let shared = Arc::clone(&batch.payload);
    h.process(batch);
    let out = h.take();
    assert!(Arc::ptr_eq(&out[0].payload, &shared), "not copied");
    h.flush();
    assert!(h.take().is_empty(), "nothing held");
    assert_eq!(h.next_deadline(), None);
}

#[test]
fn span_events_log_records_and_data_points() {
    // Span events: only the matching event goes; its span stays.
    let mut request = sample_traces(1, 1);
    request.resource_spans[0].scope_spans[0].spans[0].events = vec![
        Event {
            name: "cache.miss".into(),
            ..Default::default()
        },
        Event {
            name: "retry".into(),
            ..Default::default()
        },
    ];
    let mut h = harness(
        json!({"traces": {"spanevent": ["name == \"cache.miss\""]}}),
        Signal::Traces,
    );
    let (batch, _rx) = batch_with_ack(request);
    h.process(batch);
    let out = h.take();
    let ExportRequest::Traces(r) = out[0].payload.request().expect("decodes") else {
        panic!()
    };
    let events: Vec<&str> = r.resource_spans[0].scope_spans[0].spans[0]
        .events
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(events, ["retry"]);

    // Log records by severity and body.
    let mut request = sample_logs(1, 0);
    request.resource_logs[0].scope_logs[0].log_records = [
        (5, "debug"),
        (9, "GET /metrics 200"),
        (13, "warn"),
        (0, "no severity"),
    ]
    .into_iter()
    .map(|(n, body)| LogRecord {
        severity_number: n,
        body: Some(otlake_core::proto::common::v1::AnyValue {
            value: Some(otlake_core::proto::common::v1::any_value::Value::StringValue(body.into())),
        }),
        ..Default::default()
    })
    .collect();
    let mut h = harness(
        json!({"logs": {"log_record": [
            "severity_number < SEVERITY_NUMBER_INFO and severity_number != SEVERITY_NUMBER_UNSPECIFIED",
            "IsMatch(body, \"^GET /metrics \")",
        ]}}),
        Signal::Logs,
    );
    let (batch, _rx) = batch_with_ack(request);
    h.process(batch);
    let out = h.take();
    let ExportRequest::Logs(r) = out[0].payload.request().expect("decodes") else {
        panic!()
    };
    let kept: Vec<i32> = r.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .map(|l| l.severity_number)
        .collect();
    assert_eq!(kept, [13, 0]);

    // Metrics: a whole metric, or data points by type; a metric left without points goes too.
    let (batch, _rx) = batch_with_ack(sample_metrics(2));
    let mut h = harness(
        json!({"metrics": {
            "metric": ["name == \"gpu.utilization\" and resource.attributes[\"service.name\"] == \"svc-0\""],
            "datapoint": ["metric.type == METRIC_DATA_TYPE_HISTOGRAM and resource.attributes[\"service.name\"] == \"svc-1\""],
        }}),
        Signal::Metrics,
    );
    h.process(batch);
    let out = h.take();
    let ExportRequest::Metrics(r) = out[0].payload.request().expect("decodes") else {
        panic!()
    };
    let left: Vec<(String, String)> = r
        .resource_metrics
        .iter()
        .flat_map(|rm| {
            let service = format!("{:?}", rm.resource.as_ref().map(|r| &r.attributes[0].value));
            rm.scope_metrics[0]
                .metrics
                .iter()
                .map(move |m| (service.clone(), m.name.clone()))
        })
        .map(|(s, m)| {
            (
                if s.contains("svc-0") {
                    "svc-0"
                } else {
                    "svc-1"
                }
                .to_owned(),
                m,
            )
        })
        .collect();
    assert_eq!(
        left,
        [
            ("svc-0".to_owned(), "gen_ai.client.token.usage".to_owned()),
            ("svc-1".to_owned(), "gpu.utilization".to_owned()),
        ]
    );
}
