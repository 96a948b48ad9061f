//! What the three generators share: the content values are drawn from (models, services, errors), short
//! constructors for attributes, and the resource and instrumentation scope every request carries.

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

pub(super) const MS: u64 = 1_000_000;

pub(super) const MODELS: &[(&str, &str)] = &[
    ("openai", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini"),
    ("vllm", "meta-llama/Llama-3.1-70B-Instruct"),
    ("vllm", "mistralai/Mistral-7B-Instruct-v0.3"),
    ("anthropic", "claude-3-5-sonnet-20241022"),
];
const SERVICES: &[&str] = &["rag-api", "agent-runtime", "chat-gateway"];
pub(super) const ERRORS: &[(&str, &str)] = &[
    ("openai.RateLimitError", "Rate limit reached for requests"),
    ("timeout", "model server did not answer within 30s"),
    (
        "vllm.OutOfMemoryError",
        "CUDA out of memory: tried to allocate 2.00 GiB",
    ),
];

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}
pub(super) fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}
pub(super) fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}
pub(super) fn f(key: &str, v: f64) -> KeyValue {
    kv(key, any_value::Value::DoubleValue(v))
}
pub(super) fn strings(key: &str, items: &[&str]) -> KeyValue {
    let values = items
        .iter()
        .map(|v| AnyValue {
            value: Some(any_value::Value::StringValue((*v).to_owned())),
        })
        .collect();
    kv(key, any_value::Value::ArrayValue(ArrayValue { values }))
}

pub(super) fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

pub(super) fn resource(rng: &mut fastrand::Rng) -> Resource {
    let service = *pick(rng, SERVICES);
    Resource {
        attributes: vec![
            s("service.name", service),
            s(
                "service.version",
                format!("1.{}.{}", rng.u8(0..20), rng.u8(0..10)),
            ),
            s(
                "service.instance.id",
                format!("{service}-{:08x}", rng.u32(..)),
            ),
            s("host.name", format!("gpu-node-{:02}", rng.u8(1..64))),
            s("deployment.environment.name", "production"),
            s("cloud.region", "eu-west-1"),
            s(
                "k8s.pod.name",
                format!("{service}-7d9f{:05x}", rng.u32(..0xfffff)),
            ),
            s("telemetry.sdk.language", "python"),
        ],
        ..Default::default()
    }
}

pub(super) fn scope(name: &str) -> InstrumentationScope {
    InstrumentationScope {
        name: name.to_owned(),
        version: "0.48b0".to_owned(),
        ..Default::default()
    }
}

/// The value of attribute `key` (tests read generated requests back through it).
#[cfg(test)]
pub(super) fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}
