//! The editing processors with real clients and real readers: the Python SDK sends spans, events and logs
//! with e-mail addresses, card numbers and API keys in prompts, attributes (of spans, events, links, log
//! records, resources and scopes), status messages and bodies through `filter` and `redaction` into Delta;
//! DuckDB then reads every column of every row of every table and finds none of them, while the `/health`
//! spans are gone and their siblings landed. `resourcedetection` fills the v2 tables' `service_name`, and
//! MLflow's own tracing client goes through `genai` into a v2 table.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Daemon, OTLP_IN, TELEMETRY, run_python};
use crate::support::{query, query_v2};

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
    let mut tables: Vec<String> = std::fs::read_dir(&location)
        .expect("tables")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    tables.sort();
    assert!(
        tables.iter().any(|t| t == "otel_spans") && tables.iter().any(|t| t == "otel_logs"),
        "{tables:?}"
    );
    let mut landed = 0;
    let mut everything = String::new();
    for table in &tables {
        let rows = query(&location, &format!("SELECT * FROM {table}"));
        landed += rows.len();
        // Every string, map and list value of every column, as DuckDB hands them over.
        let text = serde_json::to_string(&rows).expect("JSON");
        for secret in sent["secrets"].as_array().expect("secrets") {
            let secret = secret.as_str().expect("text");
            assert!(!text.contains(secret), "{secret} found in {table}: {text}");
        }
        everything.push_str(&text);
    }
    // The values that carried secrets landed, masked (not dropped with their item).
    for masked in [
        "charge my card ****, mail ****",
        "my aws key is ****",
        "payment failed for ****",
        "ticket from ****",
        "team lead ****",
        "user **** paid with ****",
    ] {
        assert!(
            everything.contains(masked),
            "{masked:?} landed: {everything}"
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
/// sidecar's environment names (`OTEL_SERVICE_NAME`) and the pod from a Downward API variable, in the v2
/// table's `service_name` column (its clustering and pruning key) as in the resource's attributes.
#[test]
fn resourcedetection_fills_service_name_in_delta() {
    use otlake_core::test_util::sample_traces;
    use prost::Message;

    use crate::support::{OTLAKE, Ports, post_protobuf};

    let template = format!(
        "{OTLP_IN}processors:\n  resourcedetection:\n    detectors: [env, k8s]\n    override: false\n  batch:\n    timeout: 100ms\nexporters:\n  delta:\n    location: {{dir}}/data\n    schema_version: v2\n    max_latency: 300ms\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [resourcedetection, batch], exporters: [delta]}}\n{TELEMETRY}"
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
    // The resource's attribute object whole: DuckDB 1.5 fails on a subscript of a VARIANT inside a struct.
    let rows = query_v2(
        &d.dir.path().join("data"),
        "SELECT service_name, resource FROM otel_spans",
    );
    let mut got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let attributes = &r["resource"]["attributes"];
            let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (
                text(&r["service_name"]),
                text(&attributes["service.name"]),
                text(&attributes["k8s.pod.name"]),
            )
        })
        .collect();
    got.sort();
    let row = |service: &str| {
        (
            service.to_owned(),
            service.to_owned(),
            "chat-api-7d9f".to_owned(),
        )
    };
    assert_eq!(
        got,
        [
            row("detected-chat-api"),
            row("detected-chat-api"),
            row("svc-1"),
            row("svc-1")
        ],
        "the resource without a service gets the detected one; the other keeps its own"
    );
    assert!(d.terminate());
}

/// MLflow's own tracing client (`@mlflow.trace`, `span.set_attributes`, exported over OTLP/HTTP as MLflow
/// documents it: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) through `genai` into a v2 (VARIANT) table, read back by
/// DuckDB's own Delta reader: `mlflow.spanType` is the plain string, the deprecated token and provider keys
/// carry their current names, and the cost from the price table is a `SUM` away. A second pipeline without
/// `genai` writes the same spans to a second table: there the values are as MLflow sent them (JSON-quoted,
/// old keys, no cost), which is what the first table would hold without the processor.
#[test]
fn mlflow_traces_through_genai_land_normalised_in_a_v2_table() {
    let delta = |location: &str| {
        format!(
            "    location: {{dir}}/{location}\n    schema_version: v2\n    max_latency: 300ms\n"
        )
    };
    let config = format!(
        "{OTLP_IN}processors:\n  genai:\n    prices:\n      gpt-4o: {{input_per_million: 2.5, output_per_million: 10}}\n      gpt-4o-mini: {{input_per_million: 0.15, output_per_million: 0.6}}\n  batch:\n    timeout: 100ms\nexporters:\n  delta:\n{}  delta/raw:\n{}service:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [genai, batch], exporters: [delta]}}\n    traces/raw: {{receivers: [otlp], processors: [batch], exporters: [delta/raw]}}\n{TELEMETRY}",
        delta("data"),
        delta("raw"),
    );
    let mut d = Daemon::start(&config);
    let out = run_python(
        "mlflow_traced.py",
        &["--endpoint", &format!("127.0.0.1:{}", d.ports.http)],
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "mlflow_traced.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // MLflow's exporter has had its answer when the script ends, and an answer means committed.
    let spans = |table: &str| -> Vec<(String, Value)> {
        query_v2(
            &d.dir.path().join(table),
            "SELECT name, attributes FROM otel_spans ORDER BY name",
        )
        .into_iter()
        .map(|r| {
            (
                r["name"].as_str().expect("name").to_owned(),
                r["attributes"].clone(),
            )
        })
        .collect()
    };
    let normalised = spans("data");
    let names: Vec<&str> = normalised.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["agent", "llm", "retrieve"], "{normalised:?}");
    for (name, attributes) in &normalised {
        assert_eq!(
            attributes["mlflow.spanType"], sent["spans"][name],
            "{name}: the span type itself, not JSON text: {attributes}"
        );
    }
    let llm = &normalised[1].1;
    assert_eq!(llm["gen_ai.request.model"], sent["model"], "{llm}");
    assert_eq!(llm["gen_ai.usage.input_tokens"], sent["prompt_tokens"]);
    assert_eq!(llm["gen_ai.usage.output_tokens"], sent["completion_tokens"]);
    assert_eq!(llm["gen_ai.provider.name"], "openai");
    for deprecated in [
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.system",
    ] {
        assert!(llm.get(deprecated).is_none(), "{deprecated} renamed: {llm}");
    }
    // The model is gpt-4o-mini-2024-07-18: the longest price entry it starts with is gpt-4o-mini.
    let expected = (1000.0 * 0.15 + 200.0 * 0.6) / 1e6;
    let cost = query_v2(
        &d.dir.path().join("data"),
        "SELECT SUM(attributes['gen_ai.usage.cost']::DOUBLE) AS cost FROM otel_spans",
    );
    let cost = cost[0]["cost"].as_f64().expect("a cost");
    assert!(
        (cost - expected).abs() < 1e-12,
        "cost {cost}, expected {expected}"
    );

    // Without `genai`: what MLflow sent.
    let raw = spans("raw");
    assert_eq!(raw.len(), 3, "{raw:?}");
    let retrieve = &raw[2].1;
    assert_eq!(retrieve["mlflow.spanType"], "\"RETRIEVER\"", "{retrieve}");
    let llm = &raw[1].1;
    assert_eq!(
        llm["gen_ai.request.model"],
        format!("\"{}\"", sent["model"].as_str().expect("model"))
    );
    assert_eq!(llm["gen_ai.usage.prompt_tokens"], "1000", "{llm}");
    assert!(llm.get("gen_ai.usage.cost").is_none());
    assert!(d.terminate());
}
