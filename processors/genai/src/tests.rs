//! Component tests of the `genai` processor: config, lifecycle, acknowledgements, and a request in, the
//! normalised request out.

use std::sync::Arc;

use otlake_core::proto::common::v1::any_value;
use otlake_core::test_util::{
    ProcessorHarness, batch_with_ack, build_processor, kv, sample_traces,
};
use otlake_core::{DynFactory, ExportRequest, Outcome, Signal};
use serde_json::{Value, json};

use crate::GenaiProcessorFactory;

#[test]
fn the_example_config_validates_and_mistakes_are_named() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/examples/genai.yaml"
    ))
    .expect("example");
    let yaml: Value = serde_saphyr::from_str(&text).expect("yaml");
    assert_eq!(
        GenaiProcessorFactory
            .validate(&yaml["processors"]["genai"])
            .err(),
        None
    );
    let errors = GenaiProcessorFactory
        .validate(&json!({"prices": {"gpt-4o": {"input_per_million": -1}}, "renames": {"a": "a"}}))
        .expect_err("invalid");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["renames.a", "prices.gpt-4o.input_per_million"]);
    assert!(
        GenaiProcessorFactory
            .validate(&json!({"price": {}}))
            .is_err(),
        "unknown key"
    );
}

#[tokio::test]
async fn spans_come_out_normalised_with_their_ack_and_normal_ones_untouched() {
    let mut h = ProcessorHarness::new(
        build_processor(
            &GenaiProcessorFactory,
            &json!({"prices": {"gpt-4o": {"input_per_million": 2.5, "output_per_million": 10}}}),
            Signal::Traces,
        )
        .expect("valid"),
    );
    let (batch, _rx) = batch_with_ack(sample_traces(1, 3));
    let shared = Arc::clone(&batch.payload);
    h.process(batch);
    assert!(
        Arc::ptr_eq(&h.take()[0].payload, &shared),
        "already normal: untouched"
    );

    let mut request = sample_traces(1, 1);
    let s = &mut request.resource_spans[0].scope_spans[0].spans[0];
    s.attributes = vec![
        kv("gen_ai.request.model", "gpt-4o"),
        kv("gen_ai.usage.prompt_tokens", "2000"),
        kv("mlflow.spanType", "\"CHAT_MODEL\""),
    ];
    let (batch, rx) = batch_with_ack(request);
    h.process(batch);
    let out = h.take();
    let ExportRequest::Traces(r) = out[0].payload.request().expect("decodes") else {
        panic!()
    };
    let attrs = &r.resource_spans[0].scope_spans[0].spans[0].attributes;
    let get = |k: &str| {
        attrs
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    };
    assert_eq!(
        get("mlflow.spanType"),
        Some(any_value::Value::StringValue("CHAT_MODEL".into()))
    );
    assert_eq!(
        get("gen_ai.usage.input_tokens"),
        Some(any_value::Value::StringValue("2000".into()))
    );
    assert_eq!(
        get("gen_ai.usage.cost"),
        Some(any_value::Value::DoubleValue(0.005))
    );
    for b in out {
        b.acks.resolve(Outcome::Delivered);
    }
    assert_eq!(rx.wait().await.outcome, Outcome::Delivered);
    h.flush();
    assert!(h.take().is_empty(), "nothing held");
    assert!(build_processor(&GenaiProcessorFactory, &Value::Null, Signal::Logs).is_ok());
}
