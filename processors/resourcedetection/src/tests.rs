//! Component tests of the `resourcedetection` processor: config, lifecycle, acknowledgements, `override`, and
//! the service name filled in.

use std::collections::BTreeMap;
use std::sync::Arc;

use otlake_core::proto::common::v1::KeyValue;
use otlake_core::test_util::{ProcessorHarness, batch_with_ack, kv, sample_traces};
use otlake_core::{DynFactory, ExportRequest, Outcome};
use serde_json::{Value, json};

use crate::{
    ResourceDetectionConfig, ResourceDetectionProcessor, ResourceDetectionProcessorFactory,
};

fn harness(config: Value, vars: &[(&str, &str)]) -> ProcessorHarness {
    let config: ResourceDetectionConfig = otlake_core::parse_config(&config).expect("parses");
    config.validate().expect("valid");
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    ProcessorHarness::new(Box::new(ResourceDetectionProcessor::new(
        config,
        Box::new(move |k| vars.get(k).cloned()),
    )))
}

fn resources(batch: &otlake_core::Batch) -> Vec<Vec<KeyValue>> {
    let ExportRequest::Traces(r) = batch.payload.request().expect("decodes") else {
        panic!()
    };
    r.resource_spans
        .iter()
        .map(|rs| rs.resource.clone().unwrap_or_default().attributes)
        .collect()
}

fn get(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| format!("{:?}", kv.value.as_ref().and_then(|v| v.value.clone())))
}

#[test]
fn the_example_config_validates_and_mistakes_are_named() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/examples/resourcedetection.yaml"
    ))
    .expect("example");
    let yaml: Value = serde_saphyr::from_str(&text).expect("yaml");
    assert_eq!(
        ResourceDetectionProcessorFactory
            .validate(&yaml["processors"]["resourcedetection"])
            .err(),
        None
    );
    let errors = ResourceDetectionProcessorFactory
        .validate(&json!({"detectors": ["env", "env"], "k8s": {"pod_name": ""}}))
        .expect_err("invalid");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["detectors.1", "k8s.pod_name"]);
    assert!(
        ResourceDetectionProcessorFactory
            .validate(&json!({"detectors": ["gcp"]}))
            .is_err(),
        "unknown detector"
    );
}

#[tokio::test]
async fn a_resource_without_a_service_gets_the_detected_one_and_the_pod() {
    let vars = [
        ("OTEL_SERVICE_NAME", "chat-api"),
        ("K8S_POD_NAME", "chat-api-7d9f"),
        ("K8S_NAMESPACE_NAME", "llm"),
    ];
    let mut h = harness(
        json!({"detectors": ["env", "k8s"], "override": false}),
        &vars,
    );
    let mut request = sample_traces(3, 1);
    request.resource_spans[0].resource = None;
    request.resource_spans[1]
        .resource
        .as_mut()
        .expect("r")
        .attributes = vec![kv("service.name", "unknown_service:python")];
    // resource 2 keeps its own service.name: override is off.
    let (batch, rx) = batch_with_ack(request);
    h.process(batch);
    let out = h.take();
    let rs = resources(&out[0]);
    assert_eq!(
        get(&rs[0], "service.name"),
        get(&[kv("x", "chat-api")], "x")
    );
    assert_eq!(
        get(&rs[1], "service.name"),
        get(&[kv("x", "chat-api")], "x"),
        "an SDK placeholder is replaced"
    );
    assert_eq!(
        get(&rs[2], "service.name"),
        get(&[kv("x", "svc-2")], "x"),
        "not overridden"
    );
    for r in &rs {
        assert_eq!(
            get(r, "k8s.pod.name"),
            get(&[kv("x", "chat-api-7d9f")], "x")
        );
        assert_eq!(get(r, "k8s.namespace.name"), get(&[kv("x", "llm")], "x"));
    }
    for b in out {
        b.acks.resolve(Outcome::retryable("busy"));
    }
    assert!(
        matches!(rx.wait().await.outcome, Outcome::Retryable { .. }),
        "the ack travels with the batch"
    );

    // With override (the default) the detected value wins; a request already carrying it passes untouched.
    let mut h = harness(
        json!({"detectors": ["env"]}),
        &[("OTEL_SERVICE_NAME", "svc-0")],
    );
    let (batch, _rx) = batch_with_ack(sample_traces(1, 2));
    let shared = Arc::clone(&batch.payload);
    h.process(batch);
    assert!(
        Arc::ptr_eq(&h.take()[0].payload, &shared),
        "already right: untouched"
    );
    let (batch, _rx) = batch_with_ack(sample_traces(2, 1));
    h.process(batch);
    let rs = resources(&h.take()[0]);
    assert_eq!(
        get(&rs[1], "service.name"),
        get(&[kv("x", "svc-0")], "x"),
        "overridden"
    );
    h.flush();
    assert!(h.take().is_empty());
}
