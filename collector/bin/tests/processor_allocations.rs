//! "When nothing matches, a processor does not allocate per attribute" (issue 16), counted for every editing
//! processor: a counting global allocator (`stats_alloc`) around one `process` call on wire-form requests of
//! 10 and of 1 000 items shaped like the peer harness's payload (GenAI spans of 15 attributes, every 5th with
//! an event; log records of 12 attributes and a ~200-byte body; data points of 5 attributes), with configs
//! whose conditions and actions match none of it. Each processor must allocate nothing at all, and pass the
//! request on as it came (the same payload, still undecoded).
//!
//! Its own test binary with one test, so that the allocator counts this test alone.

use std::alloc::System;
use std::sync::Arc;

use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlake_core::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::proto::trace::v1::span::Event;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlake_core::test_util::{batch_with_ack, build_processor, kv};
use otlake_core::{DynProcessorFactory, Payload, Processor, Signal};
use otlake_processor_attributes::{AttributesProcessorFactory, ResourceProcessorFactory};
use otlake_processor_filter::FilterProcessorFactory;
use otlake_processor_genai::GenaiProcessorFactory;
use otlake_processor_redaction::RedactionProcessorFactory;
use otlake_processor_resourcedetection::{ResourceDetectionConfig, ResourceDetectionProcessor};
use prost::Message;
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The resource every request carries: a service and what the `resource` and `resourcedetection` configs
/// below would add.
fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", "chat-api"),
            kv("deployment.environment.name", "production"),
            kv("k8s.pod.name", "chat-api-0"),
            kv("k8s.namespace.name", "default"),
        ],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "opentelemetry.instrumentation.openai".into(),
        version: "0.40.0".into(),
        ..Default::default()
    })
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// `n` GenAI-shaped spans of 15 attributes (a prompt among them), every 5th with an event.
fn traces(n: usize) -> Payload {
    let spans = (0..n)
        .map(|s| {
            let mut attributes: Vec<_> = (0..10)
                .map(|a| {
                    kv(
                        &format!("app.attribute.{a}"),
                        &format!("value {s} {a} lorem ipsum"),
                    )
                })
                .collect();
            attributes.push(kv("gen_ai.operation.name", "chat"));
            attributes.push(kv("gen_ai.request.model", "llama-3-70b"));
            attributes.push(int("gen_ai.usage.input_tokens", 812));
            attributes.push(int("gen_ai.usage.output_tokens", 96));
            attributes.push(kv(
                "gen_ai.prompt",
                "summarise the quarterly report in three bullet points",
            ));
            let events = if s % 5 == 0 {
                vec![Event {
                    time_unix_nano: 1_700_000_000_100_000_000,
                    name: "gen_ai.choice".into(),
                    attributes: vec![kv("gen_ai.response.finish_reason", "stop"), int("index", 0)],
                    ..Default::default()
                }]
            } else {
                Vec::new()
            };
            Span {
                trace_id: vec![7; 16],
                span_id: (s as u64 + 1).to_be_bytes().to_vec(),
                name: "chat llama-3-70b".into(),
                kind: 3,
                start_time_unix_nano: 1_700_000_000_000_000_000,
                end_time_unix_nano: 1_700_000_000_500_000_000,
                attributes,
                events,
                ..Default::default()
            }
        })
        .collect();
    let bytes = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    Payload::from_wire(Signal::Traces, bytes.into()).expect("valid")
}

/// `n` log records of 12 attributes and a ~200-byte body, at INFO.
fn logs(n: usize) -> Payload {
    let log_records = (0..n)
        .map(|l| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + l as u64,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "request {l} served: {}",
                    "model answered within its budget; ".repeat(5)
                ))),
            }),
            attributes: (0..12)
                .map(|a| kv(&format!("log.attribute.{a}"), &format!("value {l} {a}")))
                .collect(),
            ..Default::default()
        })
        .collect();
    let bytes = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    Payload::from_wire(Signal::Logs, bytes.into()).expect("valid")
}

/// A gauge of `n` data points of 5 attributes.
fn metrics(n: usize) -> Payload {
    let data_points = (0..n)
        .map(|p| NumberDataPoint {
            time_unix_nano: 1_700_000_000_000_000_000,
            value: Some(number_data_point::Value::AsDouble(p as f64)),
            attributes: (0..5)
                .map(|a| kv(&format!("gpu.attribute.{a}"), &format!("value {p} {a}")))
                .collect(),
            ..Default::default()
        })
        .collect();
    let bytes = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![Metric {
                    name: "gpu.utilization".into(),
                    data: Some(metric::Data::Gauge(Gauge { data_points })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    Payload::from_wire(Signal::Metrics, bytes.into()).expect("valid")
}

/// Allocations made by one `process` call on `payload`, and whether it came out as it went in (the same
/// payload, still undecoded).
fn allocations(processor: &mut dyn Processor, payload: Payload) -> (usize, bool) {
    let (batch, _rx) = batch_with_ack(payload);
    let shared = Arc::clone(&batch.payload);
    let mut out = Vec::with_capacity(1);
    let region = Region::new(GLOBAL);
    processor.process(batch, &mut out);
    let allocated = region.change().allocations;
    let untouched =
        out.len() == 1 && Arc::ptr_eq(&out[0].payload, &shared) && out[0].payload.is_wire();
    (allocated, untouched)
}

fn build(factory: &dyn DynProcessorFactory, config: Value, signal: Signal) -> Box<dyn Processor> {
    build_processor(factory, &config, signal)
        .unwrap_or_else(|e| panic!("{}: {e:?}", factory.type_name()))
}

#[test]
fn when_nothing_matches_no_processor_allocates() {
    let filter = json!({
        "traces": {
            "span": [
                r#"attributes["http.route"] == "/health" or attributes["url.path"] == "/health""#,
                r#"IsMatch(name, "^(GET|HEAD) /(healthz|readyz|livez|metrics)$")"#,
                r#"resource.attributes["service.name"] == "health-checker" and kind == SPAN_KIND_SERVER"#,
                r#"IsMatch(attributes["gen_ai.usage.input_tokens"], "^0$")"#,
            ],
            "spanevent": [r#"name == "heartbeat""#],
        },
        "logs": {"log_record": [
            "severity_number < SEVERITY_NUMBER_INFO and severity_number != SEVERITY_NUMBER_UNSPECIFIED",
            r#"IsMatch(body, "^GET /health") or attributes["log.attribute.0"] == "noise""#,
        ]},
        "metrics": {
            "metric": [r#"name == "up""#],
            "datapoint": [r#"attributes["gpu.attribute.0"] == "idle""#],
        },
    });
    let attributes = json!({
        "include": {"match_type": "regexp", "attributes": [{"key": "gen_ai.operation.name", "value": ".+"}]},
        "actions": [
            {"key": "enduser.id", "action": "hash"},
            {"pattern": "^internal\\.", "action": "delete"},
            {"key": "retry.count", "converted_type": "int", "action": "convert"},
            {"key": "tenant", "value": "acme", "action": "update"},
        ],
    });
    let resource = json!({"attributes": [
        {"key": "deployment.environment.name", "value": "production", "action": "insert"},
        {"key": "k8s.pod.name", "value": "unknown", "action": "insert"},
        {"key": "internal.build", "action": "delete"},
    ]});
    let genai = json!({"prices": {
        "gpt-4o": {"input_per_million": 2.5, "output_per_million": 10.0},
        "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6},
    }});
    let redaction = json!({
        "allow_all_keys": true,
        "blocked_key_patterns": ["(?i)(password|passwd|secret|api[_.-]?key|authorization|cookie)"],
        "builtin_patterns": ["email", "card_number", "phone_number", "ipv4", "ipv6", "bearer_token", "api_key"],
        "content": {"gen_ai.system_instructions": "hash"},
        "content_default": {"truncate": 500},
    });
    let detection = || -> Box<dyn Processor> {
        let config: ResourceDetectionConfig =
            otlake_core::parse_config(&json!({"detectors": ["env"]})).expect("parses");
        let env = |key: &str| match key {
            "OTEL_SERVICE_NAME" => Some("chat-api".to_owned()),
            "OTEL_RESOURCE_ATTRIBUTES" => Some("deployment.environment.name=production".to_owned()),
            _ => None,
        };
        Box::new(ResourceDetectionProcessor::new(config, Box::new(env)))
    };

    let mut cases: Vec<(&str, Box<dyn Processor>, Signal)> = Vec::new();
    for signal in Signal::ALL {
        cases.push((
            "filter",
            build(&FilterProcessorFactory, filter.clone(), signal),
            signal,
        ));
        cases.push((
            "attributes",
            build(&AttributesProcessorFactory, attributes.clone(), signal),
            signal,
        ));
        cases.push((
            "resource",
            build(&ResourceProcessorFactory, resource.clone(), signal),
            signal,
        ));
        cases.push(("resourcedetection", detection(), signal));
        cases.push((
            "redaction",
            build(&RedactionProcessorFactory, redaction.clone(), signal),
            signal,
        ));
        if signal != Signal::Metrics {
            cases.push((
                "genai",
                build(&GenaiProcessorFactory, genai.clone(), signal),
                signal,
            ));
        }
    }
    let payload = |signal: Signal, n: usize| match signal {
        Signal::Traces => traces(n),
        Signal::Logs => logs(n),
        Signal::Metrics => metrics(n),
    };
    let mut failures = Vec::new();
    for (name, mut processor, signal) in cases {
        // The regexes grow their lazy DFA caches the first time they meet a state (per pattern state, bounded by
        // the cache's capacity, not per attribute), and a processor may set itself up on its first batch: one
        // pass over the same shapes first.
        allocations(processor.as_mut(), payload(signal, 1_000));
        let (small, small_untouched) = allocations(processor.as_mut(), payload(signal, 10));
        let (large, large_untouched) = allocations(processor.as_mut(), payload(signal, 1_000));
        if (small, large) != (0, 0) || !(small_untouched && large_untouched) {
            failures.push(format!(
                "{name} ({signal}): {small} allocations for 10 items, {large} for 1 000; passed on untouched: {small_untouched}, {large_untouched}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
