//! Component tests of the `redaction` processor: config, lifecycle, acknowledgements, and that nothing
//! sensitive is left anywhere in what comes out.

use std::sync::Arc;

use otlake_core::proto::common::v1::{AnyValue, KeyValueList, any_value};
use otlake_core::proto::logs::v1::LogRecord;
use otlake_core::proto::trace::v1::{Status, span::Event};
use otlake_core::test_util::{
    ProcessorHarness, batch_with_ack, build_processor, kv, sample_logs, sample_traces,
};
use otlake_core::{DynFactory, Outcome, Signal};
use serde_json::{Value, json};

use crate::RedactionProcessorFactory;

const SECRETS: &[&str] = &[
    "ana@example.com",
    "4111 1111 1111 1111",
    "sk-proj-AbCdEfGhIjKlMnOpQrSt",
    "AKIAIOSFODNN7EXAMPLE",
];

fn harness(config: Value, signal: Signal) -> ProcessorHarness {
    ProcessorHarness::new(
        build_processor(&RedactionProcessorFactory, &config, signal).expect("valid"),
    )
}

fn string(text: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(text.into())),
    })
}

#[test]
fn the_example_config_validates_and_mistakes_are_named() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/examples/redaction.yaml"
    ))
    .expect("example");
    let yaml: Value = serde_saphyr::from_str(&text).expect("yaml");
    assert_eq!(
        RedactionProcessorFactory
            .validate(&yaml["processors"]["redaction"])
            .err(),
        None
    );
    let errors = RedactionProcessorFactory
        .validate(&json!({
            "blocked_values": ["(unclosed"],
            "builtin_patterns": ["emails"],
            "hash_function": "md5",
            "content": {"gen_ai.prompt": {"truncate": 0}},
        }))
        .expect_err("invalid");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "blocked_values.0",
            "builtin_patterns.0",
            "hash_function",
            "content.gen_ai.prompt"
        ]
    );
    assert!(
        errors[1].message.contains("card_number"),
        "lists the names: {errors:?}"
    );
    assert!(
        RedactionProcessorFactory
            .validate(&json!({"colour": 1}))
            .is_err()
    );
}

#[tokio::test]
async fn secrets_in_attributes_events_status_and_bodies_are_gone_and_acks_follow() {
    let config = json!({
        "allow_all_keys": true,
        "builtin_patterns": ["email", "card_number", "api_key"],
        "content": {"gen_ai.input.messages": "mask"},
    });
    let mut request = sample_traces(1, 1);
    {
        let s = &mut request.resource_spans[0].scope_spans[0].spans[0];
        s.attributes.push(kv("user", "ana@example.com"));
        s.attributes.push(kv(
            "gen_ai.input.messages",
            "my card is 4111 1111 1111 1111",
        ));
        s.attributes.push(kv(
            "gen_ai.output.messages",
            "use sk-proj-AbCdEfGhIjKlMnOpQrSt",
        ));
        s.events.push(Event {
            name: "gen_ai.choice".into(),
            attributes: vec![kv("message", "AKIAIOSFODNN7EXAMPLE")],
            ..Default::default()
        });
        s.status = Some(Status {
            message: "failed for ana@example.com".into(),
            code: 2,
        });
    }
    request.resource_spans[0]
        .resource
        .as_mut()
        .expect("resource")
        .attributes
        .push(kv("owner", "ana@example.com"));
    let mut h = harness(config.clone(), Signal::Traces);
    let (batch, rx) = batch_with_ack(request);
    h.process(batch);
    let out = h.take();
    let written = format!("{:?}", out[0].payload.request().expect("decodes"));
    for secret in SECRETS {
        assert!(!written.contains(secret), "{secret} left in {written}");
    }
    assert!(written.contains("****"), "masked, not removed: {written}");
    for b in out {
        b.acks.resolve(Outcome::retryable("busy"));
    }
    assert!(
        matches!(rx.wait().await.outcome, Outcome::Retryable { .. }),
        "the ack travels with the batch"
    );

    // Logs: a string body and a structured one.
    let mut request = sample_logs(1, 0);
    request.resource_logs[0].scope_logs[0].log_records = vec![
        LogRecord {
            body: string("login by ana@example.com with 4111 1111 1111 1111"),
            ..Default::default()
        },
        LogRecord {
            body: Some(AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![
                        kv("prompt", "key AKIAIOSFODNN7EXAMPLE"),
                        kv("gen_ai.input.messages", "hi"),
                    ],
                })),
            }),
            ..Default::default()
        },
    ];
    let mut h = harness(config, Signal::Logs);
    let (batch, _rx) = batch_with_ack(request);
    h.process(batch);
    let written = format!("{:?}", h.take()[0].payload.request().expect("decodes"));
    for secret in SECRETS {
        assert!(!written.contains(secret), "{secret} left in {written}");
    }
    assert!(
        written.contains("redaction.masked.keys"),
        "the summary says what was masked"
    );
}

#[test]
fn a_request_with_nothing_to_redact_passes_untouched_and_nothing_is_held() {
    let mut h = harness(
        json!({"allow_all_keys": true, "builtin_patterns": ["email", "card_number"]}),
        Signal::Traces,
    );
    let (batch, _rx) = batch_with_ack(sample_traces(2, 5));
    let shared = Arc::clone(&batch.payload);
    h.process(batch);
    let out = h.take();
    assert!(Arc::ptr_eq(&out[0].payload, &shared), "not copied");
    h.flush();
    assert!(h.take().is_empty());
    assert_eq!(h.next_deadline(), None);
}

#[test]
fn without_allow_all_keys_only_allowed_keys_stay_as_in_the_collector() {
    let mut h = harness(
        json!({"allowed_keys": ["http.route"], "summary": "debug"}),
        Signal::Traces,
    );
    let mut request = sample_traces(1, 1);
    request.resource_spans[0].scope_spans[0].spans[0].attributes =
        vec![kv("http.route", "/chat"), kv("user.id", "42")];
    let (batch, _rx) = batch_with_ack(request);
    h.process(batch);
    let out = h.take();
    let otlake_core::ExportRequest::Traces(r) = out[0].payload.request().expect("decodes") else {
        panic!()
    };
    let keys: Vec<&str> = r.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "http.route",
            "redaction.redacted.keys",
            "redaction.redacted.count"
        ]
    );
    let resource_keys: Vec<&str> = r.resource_spans[0]
        .resource
        .as_ref()
        .expect("resource")
        .attributes
        .iter()
        .map(|kv| kv.key.as_str())
        .collect();
    assert_eq!(
        resource_keys,
        ["service.name"],
        "resource attributes are never removed"
    );
}
