//! The editing processors with real clients and real readers: the Python SDK sends spans, events and logs
//! with e-mail addresses, card numbers and API keys in prompts, attributes, status messages and bodies through
//! `filter` and `redaction` into Delta; DuckDB then reads every column of every row of every table and finds
//! none of them, while the `/health` spans are gone and their siblings landed.

use std::time::Duration;

use serde_json::Value;

use crate::limits::query;
use crate::support::{Daemon, OTLP_IN, TELEMETRY, run_python};

fn config() -> String {
    format!(
        "{OTLP_IN}processors:\n  filter:\n    traces:\n      span:\n        - 'attributes[\"http.route\"] == \"/health\"'\n  redaction:\n    allow_all_keys: true\n    builtin_patterns: [email, card_number, api_key]\n    summary: info\n  batch:\n    timeout: 100ms\nexporters:\n  delta:\n    location: {{dir}}/data\n    max_latency: 500ms\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [filter, redaction, batch], exporters: [delta]}}\n    logs: {{receivers: [otlp], processors: [redaction, batch], exporters: [delta]}}\n{TELEMETRY}"
    )
}

#[test]
fn sdk_secrets_never_reach_delta_and_health_spans_are_filtered_out() {
    let mut d = Daemon::start(&config());
    let endpoint = format!("127.0.0.1:{}", d.ports.http);
    let out = run_python(
        "sdk_sensitive.py",
        &["--endpoint", &endpoint],
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "sdk_sensitive.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(sent["results"]["traces"], "SUCCESS");
    assert_eq!(sent["results"]["logs"], "SUCCESS");
    // Acknowledged means committed: read the tables while the daemon runs.
    let location = d.dir.path().join("data");
    let mut landed = 0;
    for table in ["otel_spans", "otel_logs"] {
        let rows = query(&location, &format!("SELECT * FROM {table}"));
        landed += rows.len();
        // Every string, map and list value of every column, as DuckDB hands them over.
        let text = serde_json::to_string(&rows).expect("JSON");
        for secret in sent["secrets"].as_array().expect("secrets") {
            let secret = secret.as_str().expect("text");
            assert!(!text.contains(secret), "{secret} found in {table}: {text}");
        }
        assert!(
            text.contains("****"),
            "{table} holds the masked values: {text}"
        );
    }
    let names: Vec<String> = query(&location, "SELECT name FROM otel_spans ORDER BY name")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect();
    let expected: Vec<&str> = sent["span_names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .filter(|n| !n.starts_with("GET /health"))
        .collect();
    assert_eq!(
        names, expected,
        "health spans dropped, every sibling landed"
    );
    assert_eq!(
        landed,
        expected.len() + 3,
        "spans and the three log records"
    );
    let kept = query(
        &location,
        "SELECT count(*) AS n FROM otel_spans WHERE name LIKE 'chat %' \
         AND attributes['gen_ai.operation.name'] = 'chat'",
    );
    assert_eq!(kept[0]["n"], 3, "siblings keep their attributes");
    assert!(d.terminate());
}

/// `resourcedetection` in a real daemon: a span sent without a resource lands with the `service.name` the
/// sidecar's environment names (`OTEL_SERVICE_NAME`) and the pod from a Downward API variable.
#[test]
fn resourcedetection_fills_service_name_in_delta() {
    use otlake_core::test_util::sample_traces;
    use prost::Message;

    use crate::support::{OTLAKE, Ports, post_protobuf};

    let template = format!(
        "{OTLP_IN}processors:\n  resourcedetection:\n    detectors: [env, k8s]\n    override: false\n  batch:\n    timeout: 100ms\nexporters:\n  delta:\n    location: {{dir}}/data\n    max_latency: 300ms\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [resourcedetection, batch], exporters: [delta]}}\n{TELEMETRY}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports::free();
    let config = ports.fill(&template.replace("{dir}", &dir.path().display().to_string()));
    let config_path = dir.path().join("otlake.yaml");
    std::fs::write(&config_path, config).expect("write");
    let mut command = std::process::Command::new(OTLAKE);
    command
        .args(["run", "--config"])
        .arg(&config_path)
        .env("OTEL_SERVICE_NAME", "detected-chat-api")
        .env("K8S_POD_NAME", "chat-api-7d9f");
    let mut d = Daemon::from_command(command, dir, ports);
    let mut request = sample_traces(2, 2);
    request.resource_spans[0].resource = None;
    let r = post_protobuf(d.ports.http, "/v1/traces", &request.encode_to_vec());
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = query(
        &d.dir.path().join("data"),
        "SELECT resource.attributes['service.name'] AS service_name, \
         resource.attributes['k8s.pod.name'] AS pod, count(*) AS n \
         FROM otel_spans GROUP BY 1, 2 ORDER BY 1",
    );
    let got: Vec<(String, String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["service_name"].as_str().unwrap_or("").to_owned(),
                r["pod"].as_str().unwrap_or("").to_owned(),
                r["n"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "detected-chat-api".to_owned(),
                "chat-api-7d9f".to_owned(),
                2
            ),
            ("svc-1".to_owned(), "chat-api-7d9f".to_owned(), 2),
        ],
        "the resource without a service gets the detected one; the other keeps its own"
    );
    assert!(d.terminate());
}
