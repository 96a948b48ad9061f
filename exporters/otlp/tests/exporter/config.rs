//! Configuration (Collector sections parse unchanged, defaults, errors, secrets) and lifecycle of both
//! factories.

use std::time::Duration;

use serde_json::{Value, json};

use otlake_core::batch::channel;
use otlake_core::config::Compression;
use otlake_core::test_util::build_exporter;
use otlake_core::{ComponentId, DynExporterFactory, DynFactory, ExporterContext, Signal};
use otlake_exporter_otlp::config::{Encoding, GrpcExporterConfig, HttpExporterConfig, Sizer};
use otlake_exporter_otlp::{OtlpFactory, OtlpHttpFactory};

use crate::common::WAIT;

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

/// An `otlp:` section as the Collector's docs and testdata write it.
const COLLECTOR_OTLP: &str = r#"
endpoint: "1.2.3.4:1234"
compression: "gzip"
tls:
  ca_file: /var/lib/mycert.pem
  insecure: false
  server_name_override: ingest.example.com
timeout: 10s
sending_queue:
  enabled: true
  num_consumers: 2
  queue_size: 10
  block_on_overflow: true
retry_on_failure:
  enabled: true
  initial_interval: 10s
  randomization_factor: 0.7
  multiplier: 1.3
  max_interval: 60s
  max_elapsed_time: 10m
headers:
  "can you have a . here?": "F0000000-0000-0000-0000-000000000000"
  header1: "234"
  another: "somevalue"
keepalive:
  time: 20s
  timeout: 30s
  permit_without_stream: true
balancer_name: "round_robin"
wait_for_ready: true
write_buffer_size: 524288
"#;

/// An `otlphttp:` section as the Collector's testdata writes it (less its deprecated `batcher`).
const COLLECTOR_OTLPHTTP: &str = r#"
endpoint: "https://1.2.3.4:1234"
tls:
  ca_file: /var/lib/mycert.pem
  cert_file: certfile
  key_file: keyfile
  insecure: true
timeout: 10s
read_buffer_size: 123
write_buffer_size: 345
sending_queue:
  enabled: true
  num_consumers: 2
  queue_size: 10
retry_on_failure:
  enabled: true
  initial_interval: 10s
  randomization_factor: 0.7
  multiplier: 1.3
  max_interval: 60s
  max_elapsed_time: 10m
headers:
  "can-you-have-a-dot": "F0000000-0000-0000-0000-000000000000"
  header1: 234
  another: "somevalue"
compression: gzip
encoding: json
"#;

#[test]
fn collector_sections_parse_unchanged() {
    let http: HttpExporterConfig =
        otlake_core::parse_config(&yaml(COLLECTOR_OTLPHTTP)).expect("parses");
    assert!(http.validate().is_empty(), "{:?}", http.validate());
    assert_eq!(http.timeout, Duration::from_secs(10));
    assert_eq!(http.encoding, Encoding::Json);
    assert_eq!(http.sending_queue.num_consumers, 2);
    assert_eq!(
        http.retry_on_failure.max_elapsed_time,
        Duration::from_secs(600)
    );
    assert_eq!(
        http.headers.0["header1"].expose(),
        "234",
        "numbers are taken as text"
    );
    OtlpHttpFactory
        .validate(&yaml(COLLECTOR_OTLPHTTP))
        .expect("valid");

    let grpc: GrpcExporterConfig =
        otlake_core::parse_config(&yaml(COLLECTOR_OTLP)).expect("parses");
    assert_eq!(grpc.retry_on_failure.multiplier, 1.3);
    assert_eq!(
        grpc.keepalive.as_ref().and_then(|k| k.time),
        Some(Duration::from_secs(20))
    );
    let target = grpc.target().expect("endpoint");
    assert!(target.tls);
    // `can you have a . here?` is a legal Go map key but not an HTTP header name: reported, by name only.
    let errors = OtlpFactory
        .validate(&yaml(COLLECTOR_OTLP))
        .expect_err("bad header name");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].path.starts_with("headers."), "{}", errors[0]);
}

#[test]
fn defaults_match_the_collectors() {
    let grpc: GrpcExporterConfig = otlake_core::parse_config(&Value::Null).expect("defaults");
    assert_eq!(grpc.timeout, Duration::from_secs(5));
    assert_eq!(grpc.compression, Compression::Gzip);
    assert!(grpc.retry_on_failure.enabled);
    assert_eq!(
        grpc.retry_on_failure.initial_interval,
        Duration::from_secs(5)
    );
    assert_eq!(grpc.retry_on_failure.randomization_factor, 0.5);
    assert_eq!(grpc.retry_on_failure.multiplier, 1.5);
    assert_eq!(grpc.retry_on_failure.max_interval, Duration::from_secs(30));
    assert_eq!(
        grpc.retry_on_failure.max_elapsed_time,
        Duration::from_secs(300)
    );
    assert!(grpc.sending_queue.enabled);
    assert_eq!(grpc.sending_queue.num_consumers, 10);
    assert_eq!(grpc.sending_queue.queue_size, 1000);
    assert_eq!(grpc.sending_queue.sizer, Sizer::Requests);
    assert_eq!(grpc.max_request_bytes, (4 << 20) - (128 << 10));
    assert!(!grpc.tls.insecure);

    let http: HttpExporterConfig = otlake_core::parse_config(&Value::Null).expect("defaults");
    assert_eq!(http.timeout, Duration::from_secs(30));
    assert_eq!(http.compression, Compression::Gzip);
    assert_eq!(http.encoding, Encoding::Proto);

    // Without an endpoint neither validates.
    assert!(OtlpFactory.validate(&Value::Null).is_err());
    assert!(OtlpHttpFactory.validate(&Value::Null).is_err());
}

#[test]
fn an_unknown_key_is_reported_with_its_path() {
    let errors = OtlpHttpFactory
        .validate(&json!({"endpoint": "http://x:4318", "retry_on_failure": {"max_elapsed": "1m"}}))
        .expect_err("unknown key");
    assert_eq!(errors[0].path, "retry_on_failure.max_elapsed");
    assert!(
        errors[0].message.contains("max_elapsed_time"),
        "{}",
        errors[0]
    );

    let errors = OtlpFactory
        .validate(&json!({"endpoint": "x:4317", "encoding": "json"}))
        .expect_err("gRPC has no encoding");
    assert_eq!(errors[0].path, "encoding");
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = OtlpFactory
        .validate(&json!({
            "endpoint": "",
            "retry_on_failure": {"randomization_factor": 2.0},
            "sending_queue": {"num_consumers": 0, "storage": "file_storage"},
            "tls": {"cert_file": "client.pem"},
        }))
        .expect_err("invalid");
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    for expected in [
        "endpoint",
        "retry_on_failure.randomization_factor",
        "sending_queue.num_consumers",
        "sending_queue.storage",
        "tls",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
}

#[test]
fn header_values_never_appear_in_debug_or_errors() {
    let section = json!({
        "endpoint": "https://ingest.example.com",
        "headers": {
            "Authorization": "Bearer dapi-s3cr3t",
            "X-Databricks-UC-Table-Name": "main.otel.spans",
            "bad": "s3cr3t\r\nInjected: 1",
        },
        "tls": {"key_pem": "s3cr3t key", "cert_pem": "cert"},
        "compression": "snappy",
    });
    let errors = OtlpHttpFactory
        .validate(&section)
        .expect_err("snappy is unsupported");
    let errors_text = format!("{errors:?}");
    assert!(!errors_text.contains("s3cr3t"), "{errors_text}");

    let mut fixed = section.clone();
    fixed["compression"] = json!("zstd");
    let errors = OtlpHttpFactory
        .validate(&fixed)
        .expect_err("bad header value");
    let errors_text = format!("{errors:?} {}", errors[0]);
    assert!(errors_text.contains("headers.bad"), "{errors_text}");
    assert!(!errors_text.contains("s3cr3t"), "{errors_text}");

    let parsed: HttpExporterConfig = otlake_core::parse_config(&fixed).expect("parses");
    let debug = format!("{parsed:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("Authorization"), "names are fine to show");
}

#[test]
fn a_signal_without_a_url_fails_the_build() {
    let config = json!({"traces_endpoint": "http://mlflow:5000/v1/traces"});
    assert!(build_exporter(&OtlpHttpFactory, &config, &[Signal::Traces]).is_ok());
    let err = build_exporter(&OtlpHttpFactory, &config, &[Signal::Traces, Signal::Logs])
        .err()
        .expect("logs have no URL");
    assert!(err[0].to_string().contains("logs"), "{err:?}");
}

#[test]
fn built_exporters_can_be_dropped_without_running() {
    let grpc = build_exporter(
        &OtlpFactory,
        &json!({"endpoint": "127.0.0.1:1"}),
        &Signal::ALL,
    )
    .expect("builds");
    let http = build_exporter(
        &OtlpHttpFactory,
        &json!({"endpoint": "http://127.0.0.1:1"}),
        &Signal::ALL,
    )
    .expect("builds");
    drop((grpc, http));
}

#[tokio::test]
async fn run_returns_when_the_input_closes_at_once() {
    let cases: [(&dyn DynExporterFactory, Value); 2] = [
        (
            &OtlpFactory,
            json!({"endpoint": "127.0.0.1:1", "tls": {"insecure": true}}),
        ),
        (&OtlpHttpFactory, json!({"endpoint": "http://127.0.0.1:1"})),
    ];
    for (factory, config) in cases {
        let id = ComponentId::new(factory.type_name());
        let exporter = build_exporter(factory, &config, &Signal::ALL).expect("builds");
        let (tx, rx) = channel("otlp-lifecycle", 1);
        drop(tx);
        tokio::time::timeout(WAIT, exporter.run(rx, ExporterContext { id }))
            .await
            .expect("returns promptly")
            .expect("Ok");
    }
}
