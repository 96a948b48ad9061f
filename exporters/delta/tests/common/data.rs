//! Realistic OTLP data for the tests and the benchmark: GenAI spans with events, links and errors; logs with
//! bodies of every AnyValue kind; all five metric types with exemplars. Deterministic for a given seed.
#![allow(dead_code)]

use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlake_core::proto::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point, summary_data_point::ValueAtQuantile,
};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};

pub const BASE_TIME: u64 = 1_763_800_000_000_000_000;
pub const MODELS: [&str; 2] = ["gpt-4o", "llama-3.1-70b"];

pub fn any(value: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

pub fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: any(value),
        ..Default::default()
    }
}

pub fn s(text: &str) -> Value {
    Value::StringValue(text.to_owned())
}

pub fn trace_id(n: u64) -> Vec<u8> {
    let mut id = vec![0xab; 8];
    id.extend_from_slice(&n.to_be_bytes());
    id
}

pub fn span_id(n: u64) -> Vec<u8> {
    (n | 0x0100_0000_0000_0000).to_be_bytes().to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", s(service)),
            kv("service.version", s("1.4.2")),
            kv("host.name", s("gpu-node-17")),
            kv("k8s.pod.name", s("vllm-7d9f8c6b5-x2x9k")),
            kv("gpu.count", Value::IntValue(8)),
        ],
        dropped_attributes_count: 1,
        ..Default::default()
    })
}

pub fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_owned(),
        version: "0.48b0".to_owned(),
        attributes: vec![kv("scope.kind", s("auto"))],
        dropped_attributes_count: 0,
    })
}

/// Input tokens of the `i`-th LLM span (so tests can sum them).
pub fn input_tokens(i: u64) -> i64 {
    100 + (i % 17) as i64 * 10
}

/// The model of the `i`-th LLM span.
pub fn model(i: u64) -> &'static str {
    MODELS[(i % 2) as usize]
}

/// `traces` traces of one SERVER root span and `llm_per_trace` CLIENT LLM child spans each. Span numbers start
/// at `first`; every 5th trace's first LLM span fails with an exception event; LLM spans link to the previous
/// trace's root.
pub fn genai_traces(first: u64, traces: u64, llm_per_trace: u64) -> ExportTraceServiceRequest {
    let mut spans = Vec::new();
    for t in 0..traces {
        let trace_no = first + t;
        let root_no = trace_no * 100;
        let start = BASE_TIME + trace_no * 1_000_000_000;
        spans.push(Span {
            trace_id: trace_id(trace_no),
            span_id: span_id(root_no),
            trace_state: "vendor=1".to_owned(),
            flags: 0x101,
            name: "POST /v1/chat/completions".to_owned(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 2_000_000_000 + t * 1_000_000,
            attributes: vec![
                kv("http.request.method", s("POST")),
                kv("http.response.status_code", Value::IntValue(200)),
                kv("url.path", s("/v1/chat/completions")),
            ],
            status: Some(Status {
                code: status::StatusCode::Ok as i32,
                ..Default::default()
            }),
            ..Default::default()
        });
        for l in 0..llm_per_trace {
            let n = root_no + 1 + l;
            let fails = t % 5 == 0 && l == 0;
            let mut events = vec![span::Event {
                time_unix_nano: start + 10_000,
                name: "gen_ai.content.prompt".to_owned(),
                attributes: vec![kv("gen_ai.prompt", s("What is the capital of France?"))],
                dropped_attributes_count: 0,
            }];
            if fails {
                events.push(span::Event {
                    time_unix_nano: start + 20_000,
                    name: "exception".to_owned(),
                    attributes: vec![
                        kv("exception.type", s("RateLimitError")),
                        kv("exception.message", s("429 Too Many Requests")),
                    ],
                    dropped_attributes_count: 2,
                });
            }
            spans.push(Span {
                trace_id: trace_id(trace_no),
                span_id: span_id(n),
                parent_span_id: span_id(root_no),
                name: format!("chat {}", model(n)),
                kind: span::SpanKind::Client as i32,
                start_time_unix_nano: start + 1_000,
                end_time_unix_nano: start + 1_500_000_000,
                attributes: vec![
                    kv("gen_ai.operation.name", s("chat")),
                    kv("gen_ai.request.model", s(model(n))),
                    kv(
                        "gen_ai.usage.input_tokens",
                        Value::IntValue(input_tokens(n)),
                    ),
                    kv("gen_ai.usage.output_tokens", Value::IntValue(42)),
                    kv("gen_ai.request.temperature", Value::DoubleValue(0.7)),
                    kv("gen_ai.request.stream", Value::BoolValue(false)),
                    kv("mlflow.spanType", s("\"LLM\"")),
                    kv(
                        "mlflow.chat.tokenUsage",
                        s(r#"{"input_tokens": 120, "output_tokens": 42, "total_tokens": 162}"#),
                    ),
                    kv(
                        "gen_ai.response.finish_reasons",
                        Value::ArrayValue(ArrayValue {
                            values: vec![AnyValue {
                                value: Some(s("stop")),
                            }],
                        }),
                    ),
                ],
                dropped_attributes_count: 3,
                events,
                dropped_events_count: 1,
                links: if trace_no > 0 {
                    vec![span::Link {
                        trace_id: trace_id(trace_no - 1),
                        span_id: span_id((trace_no - 1) * 100),
                        trace_state: "vendor=2".to_owned(),
                        attributes: vec![kv("link.reason", s("retry-of"))],
                        dropped_attributes_count: 0,
                        flags: 0x100,
                    }]
                } else {
                    Vec::new()
                },
                dropped_links_count: 0,
                status: Some(Status {
                    code: if fails {
                        status::StatusCode::Error as i32
                    } else {
                        status::StatusCode::Unset as i32
                    },
                    message: if fails {
                        "rate limited".to_owned()
                    } else {
                        String::new()
                    },
                }),
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("llm-gateway"),
            scope_spans: vec![ScopeSpans {
                scope: scope("opentelemetry.instrumentation.openai"),
                spans,
                schema_url: "https://opentelemetry.io/schemas/1.28.0".to_owned(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.27.0".to_owned(),
        }],
    }
}

/// Log records with bodies of every AnyValue kind, cycling: string, int, kvlist, bytes, array, double, bool,
/// absent. Every 4th record is an ERROR; records with an even number carry a trace context.
pub fn mixed_logs(first: u64, count: u64) -> ExportLogsServiceRequest {
    let records = (first..first + count)
        .map(|n| {
            let body = match n % 8 {
                0 => any(s(&format!("request {n} finished"))),
                1 => any(Value::IntValue(n as i64)),
                2 => any(Value::KvlistValue(KeyValueList {
                    values: vec![
                        kv("event", s("token_usage")),
                        kv("tokens", Value::IntValue(7)),
                    ],
                })),
                3 => any(Value::BytesValue(vec![0xde, 0xad, 0xbe, 0xef])),
                4 => any(Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Value::IntValue(1)),
                        },
                        AnyValue {
                            value: Some(s("two")),
                        },
                    ],
                })),
                5 => any(Value::DoubleValue(0.25)),
                6 => any(Value::BoolValue(true)),
                _ => None,
            };
            let error = n % 4 == 3;
            LogRecord {
                time_unix_nano: BASE_TIME + n,
                observed_time_unix_nano: BASE_TIME + n + 5,
                severity_number: if error { 17 } else { 9 },
                severity_text: if error { "ERROR" } else { "INFO" }.to_owned(),
                body,
                attributes: vec![
                    kv("log.number", Value::IntValue(n as i64)),
                    kv("code.function", s("generate")),
                ],
                dropped_attributes_count: 0,
                flags: if n % 2 == 0 { 1 } else { 0 },
                trace_id: if n % 2 == 0 { trace_id(n) } else { Vec::new() },
                span_id: if n % 2 == 0 { span_id(n) } else { Vec::new() },
                event_name: if n % 8 == 2 {
                    "gen_ai.usage".to_owned()
                } else {
                    String::new()
                },
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("vllm"),
            scope_logs: vec![ScopeLogs {
                scope: scope("vllm.logger"),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn exemplar(n: u64) -> Exemplar {
    Exemplar {
        filtered_attributes: vec![kv("request.id", s(&format!("req-{n}")))],
        time_unix_nano: BASE_TIME + n,
        value: Some(exemplar::Value::AsInt(n as i64)),
        span_id: span_id(n),
        trace_id: trace_id(n),
    }
}

/// One metric of each of the five types, each with `points` data points (so 5 × points rows).
pub fn all_metric_types(points: u64) -> ExportMetricsServiceRequest {
    let attrs = |i: u64| vec![kv("gpu.index", Value::IntValue(i as i64))];
    let metrics = vec![
        Metric {
            name: "gpu.utilization".to_owned(),
            description: "GPU busy fraction".to_owned(),
            unit: "1".to_owned(),
            metadata: vec![kv("source", s("dcgm"))],
            data: Some(metric::Data::Gauge(Gauge {
                data_points: (0..points)
                    .map(|i| NumberDataPoint {
                        attributes: attrs(i),
                        start_time_unix_nano: 0,
                        time_unix_nano: BASE_TIME + i,
                        value: Some(number_data_point::Value::AsDouble(0.5 + i as f64 / 100.0)),
                        ..Default::default()
                    })
                    .collect(),
            })),
        },
        Metric {
            name: "gen_ai.requests".to_owned(),
            unit: "{request}".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: (0..points)
                    .map(|i| NumberDataPoint {
                        attributes: attrs(i),
                        start_time_unix_nano: BASE_TIME - 60_000_000_000,
                        time_unix_nano: BASE_TIME + i,
                        exemplars: vec![exemplar(i)],
                        value: Some(number_data_point::Value::AsInt(1000 + i as i64)),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "gen_ai.client.token.usage".to_owned(),
            unit: "{token}".to_owned(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: (0..points)
                    .map(|i| HistogramDataPoint {
                        attributes: vec![kv(
                            "gen_ai.token.type",
                            s(if i % 2 == 0 { "input" } else { "output" }),
                        )],
                        start_time_unix_nano: BASE_TIME - 60_000_000_000,
                        time_unix_nano: BASE_TIME + i,
                        count: 3,
                        sum: Some(350.0),
                        bucket_counts: vec![1, 1, 1],
                        explicit_bounds: vec![100.0, 200.0],
                        exemplars: vec![exemplar(i)],
                        flags: 0,
                        min: Some(50.0),
                        max: Some(200.0),
                    })
                    .collect(),
                aggregation_temporality: 1,
            })),
            ..Default::default()
        },
        Metric {
            name: "gen_ai.server.time_to_first_token".to_owned(),
            unit: "s".to_owned(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: (0..points)
                    .map(|i| ExponentialHistogramDataPoint {
                        attributes: attrs(i),
                        start_time_unix_nano: BASE_TIME - 60_000_000_000,
                        time_unix_nano: BASE_TIME + i,
                        count: 6,
                        sum: Some(1.5),
                        scale: 3,
                        zero_count: 1,
                        positive: Some(Buckets {
                            offset: -2,
                            bucket_counts: vec![2, 3],
                        }),
                        negative: None,
                        flags: 0,
                        exemplars: Vec::new(),
                        min: Some(0.0),
                        max: Some(0.9),
                        zero_threshold: 0.001,
                    })
                    .collect(),
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
        Metric {
            name: "gen_ai.request.latency".to_owned(),
            unit: "s".to_owned(),
            data: Some(metric::Data::Summary(Summary {
                data_points: (0..points)
                    .map(|i| SummaryDataPoint {
                        attributes: attrs(i),
                        start_time_unix_nano: BASE_TIME - 60_000_000_000,
                        time_unix_nano: BASE_TIME + i,
                        count: 10,
                        sum: 4.2,
                        quantile_values: vec![
                            ValueAtQuantile {
                                quantile: 0.5,
                                value: 0.4,
                            },
                            ValueAtQuantile {
                                quantile: 0.99,
                                value: 1.1,
                            },
                        ],
                        flags: 1,
                    })
                    .collect(),
            })),
            ..Default::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("vllm"),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("vllm.metrics"),
                metrics,
                schema_url: "https://opentelemetry.io/schemas/1.28.0".to_owned(),
            }],
            schema_url: String::new(),
        }],
    }
}
