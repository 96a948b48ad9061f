//! Component tests of the `attributes` and `resource` processors: config, lifecycle, acknowledgements, and
//! what a user checks on the items that come out.

use std::sync::Arc;

use otlake_core::proto::common::v1::{KeyValue, any_value};
use otlake_core::proto::trace::v1::Span;
use otlake_core::test_util::{
    ProcessorHarness, batch_with_ack, build_processor, kv, sample_logs, sample_metrics,
    sample_traces,
};
use otlake_core::{Batch, DynFactory, ExportRequest, Outcome, Payload, Signal};
use prost::Message;
use serde_json::{Value, json};

use crate::{AttributesProcessorFactory, ResourceProcessorFactory};

fn harness(
    factory: &dyn otlake_core::DynProcessorFactory,
    config: Value,
    signal: Signal,
) -> ProcessorHarness {
    ProcessorHarness::new(build_processor(factory, &config, signal).expect("valid config"))
}

fn string(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        }
    })
}

fn spans(batch: &Batch) -> Vec<(Vec<KeyValue>, Span)> {
    match batch.payload.request().expect("decodes") {
        ExportRequest::Traces(r) => r
            .resource_spans
            .iter()
            .flat_map(|rs| {
                let resource = rs.resource.clone().unwrap_or_default().attributes;
                rs.scope_spans
                    .iter()
                    .flat_map(|ss| ss.spans.clone())
                    .map(move |s| (resource.clone(), s))
            })
            .collect(),
        _ => panic!("traces expected"),
    }
}

/// The example config's sections, as a user writes them.
fn example_sections() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/examples/attributes.yaml"
    ))
    .expect("the example exists");
    let yaml: Value = serde_saphyr::from_str(&text).expect("yaml");
    yaml["processors"].clone()
}

#[test]
fn the_example_config_validates_and_unknown_keys_are_refused() {
    let processors = example_sections();
    for (name, section) in processors.as_object().expect("map") {
        let errors = match name.split('/').next() {
            Some("resource") => ResourceProcessorFactory.validate(section).err(),
            Some("attributes") => AttributesProcessorFactory.validate(section).err(),
            _ => continue,
        };
        assert_eq!(errors, None, "{name}");
    }
    let errors = AttributesProcessorFactory
        .validate(&json!({"actions": [{"key": "a", "action": "delete", "colour": 1}]}))
        .expect_err("unknown key");
    assert!(errors[0].to_string().contains("colour"), "{errors:?}");
    let errors = AttributesProcessorFactory
        .validate(&json!({"actions": [{"key": "a", "action": "rename"}]}))
        .expect_err("unknown action");
    assert!(errors[0].to_string().contains("rename"), "{errors:?}");
    let errors = AttributesProcessorFactory
        .validate(&json!({"actions": [{"action": "delete", "pattern": "(("}],
                          "include": {"match_type": "regexp", "span_names": ["[z-a]"]}}))
        .expect_err("bad regexes");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["actions.0.pattern", "include.span_names.0"]);
    assert!(
        ResourceProcessorFactory.validate(&Value::Null).is_err(),
        "no actions"
    );
    assert!(
        AttributesProcessorFactory
            .validate(&json!({"actions": [{"key": "a", "action": "delete"}], "include": {}}))
            .is_err(),
        "an empty include"
    );
}

#[test]
fn a_property_of_another_signal_is_refused_at_build() {
    let config =
        json!({"actions": [{"key": "a", "action": "delete"}], "include": {"span_names": ["x"]}});
    let errors = build_processor(&AttributesProcessorFactory, &config, Signal::Logs)
        .err()
        .expect("refused");
    assert_eq!(errors[0].path, "include.span_names");
    assert!(build_processor(&AttributesProcessorFactory, &config, Signal::Traces).is_ok());
}

#[tokio::test]
async fn lifecycle_nothing_held_and_acks_follow_the_batch() {
    let mut h = harness(
        &AttributesProcessorFactory,
        json!({"actions": [{"key": "env", "value": "prod", "action": "upsert"}]}),
        Signal::Traces,
    );
    assert_eq!(h.next_deadline(), None);
    h.flush();
    assert!(h.take().is_empty(), "nothing held");
    let (batch, rx) = batch_with_ack(sample_traces(1, 2));
    h.process(batch);
    let out = h.take();
    assert_eq!(out.len(), 1);
    for (_, span) in spans(&out[0]) {
        assert_eq!(string(&span.attributes, "env").as_deref(), Some("prod"));
    }
    // The batch's acknowledgement travels with it: the client hears what the exporter says.
    for b in out {
        b.acks.resolve(Outcome::retryable("exporter busy"));
    }
    assert!(matches!(rx.wait().await.outcome, Outcome::Retryable { .. }));
    drop(h);
    drop(
        build_processor(
            &ResourceProcessorFactory,
            &json!({"attributes": [{"key": "a", "action": "delete"}]}),
            Signal::Metrics,
        )
        .expect("valid"),
    );
}

#[test]
fn a_request_no_action_applies_to_passes_untouched_in_wire_form() {
    let mut h = harness(
        &AttributesProcessorFactory,
        json!({"actions": [
            {"key": "password", "action": "delete"},
            {"key": "env", "value": "x", "action": "update"},
        ]}),
        Signal::Traces,
    );
    let bytes = sample_traces(2, 3).encode_to_vec();
    let payload = Payload::from_wire(Signal::Traces, bytes.clone().into()).expect("valid");
    let (batch, _rx) = batch_with_ack(payload);
    let shared = Arc::clone(&batch.payload);
    h.process(batch);
    let out = h.take();
    assert!(Arc::ptr_eq(&out[0].payload, &shared), "not copied");
    assert_eq!(
        out[0].payload.wire_chunks().map(|c| c[0].to_vec()),
        Some(bytes),
        "still the client's bytes"
    );
}

#[test]
fn include_and_exclude_choose_the_spans_changed() {
    let mut request = sample_traces(2, 2);
    request.resource_spans[0].scope_spans[0].spans[0].name = "GET /health".into();
    request.resource_spans[0].scope_spans[0].spans[1].name = "chat gpt-4o".into();
    request.resource_spans[1].scope_spans[0].spans[0].name = "chat gpt-4o".into();
    request.resource_spans[1].scope_spans[0].spans[0]
        .attributes
        .push(kv("user.email", "ana@example.com"));
    let mut h = harness(
        &AttributesProcessorFactory,
        json!({
            "include": {"match_type": "regexp", "span_names": ["^chat "]},
            "exclude": {"services": ["svc-1"], "attributes": [{"key": "user.email"}]},
            "actions": [{"key": "touched", "value": true, "action": "insert"}],
        }),
        Signal::Traces,
    );
    let (batch, _rx) = batch_with_ack(request);
    h.process(batch);
    let touched: Vec<(String, bool)> = spans(&h.take()[0])
        .into_iter()
        .map(|(_, s)| (s.name.clone(), string(&s.attributes, "touched").is_some()))
        .collect();
    assert_eq!(
        touched,
        [
            ("GET /health".to_owned(), false),
            ("chat gpt-4o".to_owned(), true),
            ("chat gpt-4o".to_owned(), false),
            (touched[3].0.clone(), false),
        ]
    );
}

#[test]
fn log_records_and_data_points_are_edited_too() {
    let config = json!({"actions": [
        {"key": "tenant", "value": "acme", "action": "upsert"},
        {"key": "tenant", "action": "hash"},
    ]});
    let expected = crate::actions::sha256_hex(b"acme");
    let mut h = harness(&AttributesProcessorFactory, config.clone(), Signal::Logs);
    let (batch, _rx) = batch_with_ack(sample_logs(1, 3));
    h.process(batch);
    let out = h.take();
    let ExportRequest::Logs(r) = out[0].payload.request().expect("decodes") else {
        panic!("logs")
    };
    let records = &r.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|l| string(&l.attributes, "tenant").as_deref() == Some(expected.as_str()))
    );

    let mut h = harness(&AttributesProcessorFactory, config, Signal::Metrics);
    let (batch, _rx) = batch_with_ack(sample_metrics(1));
    let points = batch.item_count();
    h.process(batch);
    let out = h.take();
    let ExportRequest::Metrics(r) = out[0].payload.request().expect("decodes") else {
        panic!("metrics")
    };
    let mut seen = 0;
    for m in &r.resource_metrics[0].scope_metrics[0].metrics {
        use otlake_core::proto::metrics::v1::metric::Data;
        let attrs: Vec<&Vec<KeyValue>> = match m.data.as_ref().expect("data") {
            Data::Gauge(g) => g.data_points.iter().map(|p| &p.attributes).collect(),
            Data::Sum(s) => s.data_points.iter().map(|p| &p.attributes).collect(),
            Data::Histogram(h) => h.data_points.iter().map(|p| &p.attributes).collect(),
            _ => Vec::new(),
        };
        for a in attrs {
            assert_eq!(string(a, "tenant").as_deref(), Some(expected.as_str()));
            seen += 1;
        }
    }
    assert_eq!(seen, points);
}

#[test]
fn the_resource_processor_edits_every_resource_and_creates_missing_ones() {
    let mut request = sample_traces(2, 1);
    request.resource_spans[1].resource = None;
    let mut h = harness(
        &ResourceProcessorFactory,
        json!({"attributes": [
            {"key": "k8s.cluster.name", "value": "prod-eu", "action": "insert"},
            {"key": "service.name", "value": "fallback", "action": "insert"},
            {"key": "service.name", "pattern": "^(?P<service_family>[a-z]+)-", "action": "extract"},
        ]}),
        Signal::Traces,
    );
    let (batch, _rx) = batch_with_ack(request);
    h.process(batch);
    let out = h.take();
    let resources: Vec<Vec<KeyValue>> = spans(&out[0]).into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        string(&resources[0], "service.name").as_deref(),
        Some("svc-0")
    );
    assert_eq!(
        string(&resources[0], "service_family").as_deref(),
        Some("svc")
    );
    assert_eq!(
        string(&resources[1], "service.name").as_deref(),
        Some("fallback")
    );
    for r in &resources {
        assert_eq!(string(r, "k8s.cluster.name").as_deref(), Some("prod-eu"));
    }
}
