//! Spans shaped like the peer harness's payload (`/work/shared/bench/make-payloads.py`): 1 resource with 8
//! attributes, 1 scope, 100 CLIENT spans per request in traces of 10, 15 GenAI attributes per span (strings,
//! ints, doubles, a string array), an event on every 5th span, random ids. Unlike the harness, which sends
//! one request over and over, every request here is different (seeded PRNG), so the Parquet figures are not
//! flattered by dictionary encoding of repeated values.
#![allow(dead_code)]

use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value,
};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};

const MODELS: [&str; 5] = [
    "gpt-4o-2024-08-06",
    "gpt-4o-mini",
    "claude-3-5-sonnet-20241022",
    "llama-3.1-70b-instruct",
    "mistral-large-latest",
];
const OPS: [&str; 5] = ["chat", "chat", "chat", "embeddings", "text_completion"];
const FINISH: [&str; 3] = ["stop", "length", "tool_calls"];

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(text: &str) -> Value {
    Value::StringValue(text.to_owned())
}

fn system(model: &str) -> &'static str {
    match &model[..3] {
        "gpt" => "openai",
        "cla" => "anthropic",
        "lla" => "vllm",
        _ => "mistral_ai",
    }
}

fn span_attrs(rng: &mut Rng, model: &str, op: &str) -> Vec<KeyValue> {
    let inp = 20 + rng.below(7980) as i64;
    let out = 1 + rng.below(1999) as i64;
    vec![
        kv("gen_ai.system", s(system(model))),
        kv("gen_ai.operation.name", s(op)),
        kv("gen_ai.request.model", s(model)),
        kv("gen_ai.response.model", s(model)),
        kv(
            "gen_ai.request.temperature",
            Value::DoubleValue(rng.below(100) as f64 / 100.0),
        ),
        kv("gen_ai.request.top_p", Value::DoubleValue(0.95)),
        kv(
            "gen_ai.request.max_tokens",
            Value::IntValue([256, 1024, 4096][rng.below(3) as usize]),
        ),
        kv("gen_ai.usage.input_tokens", Value::IntValue(inp)),
        kv("gen_ai.usage.output_tokens", Value::IntValue(out)),
        kv(
            "gen_ai.response.id",
            s(&format!("chatcmpl-{:016x}", rng.next_u64())),
        ),
        kv(
            "gen_ai.response.finish_reasons",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(s(rng.pick(&FINISH))),
                }],
            }),
        ),
        kv(
            "server.address",
            s(&format!("api.{}.example", system(model))),
        ),
        kv("server.port", Value::IntValue(443)),
        kv(
            "session.id",
            s(&format!("sess-{:08x}", rng.next_u64() as u32)),
        ),
        kv(
            "llm.cost_usd",
            Value::DoubleValue(((inp as f64 * 2.5 + out as f64 * 10.0) / 1e6 * 1e6).round() / 1e6),
        ),
    ]
}

/// One request of 100 spans; `seed` makes it distinct.
pub fn harness_traces(seed: u64) -> ExportTraceServiceRequest {
    let mut rng = Rng::new(seed + 42);
    let t0 = 1_763_800_000_000_000_000 + seed * 100_000_000;
    let resource = Resource {
        attributes: vec![
            kv("service.name", s("genai-gateway")),
            kv("service.version", s("1.14.2")),
            kv("service.namespace", s("llm-platform")),
            kv("deployment.environment.name", s("production")),
            kv(
                "host.name",
                s(&format!("gw-{:02}.prod.internal", rng.below(40))),
            ),
            kv("telemetry.sdk.name", s("opentelemetry")),
            kv("telemetry.sdk.language", s("python")),
            kv("telemetry.sdk.version", s("1.27.0")),
        ],
        ..Default::default()
    };
    let mut spans = Vec::with_capacity(100);
    let mut trace_id = Vec::new();
    let mut parent = Vec::new();
    for i in 0..100u64 {
        if i % 10 == 0 {
            trace_id = rng.bytes(16);
            parent = Vec::new();
        }
        let span_id = rng.bytes(8);
        let parent_span_id = parent.clone();
        if parent.is_empty() {
            parent = span_id.clone();
        }
        let (model, op) = (rng.pick(&MODELS), rng.pick(&OPS));
        let start = t0 + i * 1_000_000;
        let events = if i % 5 == 0 {
            vec![span::Event {
                time_unix_nano: start + 1000,
                name: "gen_ai.choice".to_owned(),
                attributes: vec![
                    kv("gen_ai.system", s("openai")),
                    kv("index", Value::IntValue(0)),
                    kv("finish_reason", s("stop")),
                ],
                dropped_attributes_count: 0,
            }]
        } else {
            Vec::new()
        };
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id,
            parent_span_id,
            name: format!("{op} {model}"),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 50_000_000 + rng.below(8_950_000_000),
            attributes: span_attrs(&mut rng, model, op),
            events,
            status: Some(Status {
                code: if i % 37 == 0 {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Unset as i32
                },
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry.instrumentation.openai_v2".to_owned(),
                    version: "2.0b0".to_owned(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.27.0".to_owned(),
        }],
    }
}
