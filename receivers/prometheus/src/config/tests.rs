//! The config from YAML: the Collector's keys, defaults, refusals by name, and secrets that never print.

use super::*;
use otlake_core::parse_config;

fn load(yaml: &str) -> Result<PrometheusReceiverConfig, Vec<ConfigError>> {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("YAML");
    let config: PrometheusReceiverConfig = parse_config(&value).map_err(|e| vec![e])?;
    config.validate()?;
    Ok(config)
}

fn errors(yaml: &str) -> Vec<String> {
    load(yaml)
        .expect_err("invalid")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_collector_config_loads_with_prometheus_defaults() {
    let config = load(
        r#"
config:
  scrape_configs:
    - job_name: vllm
      static_configs:
        - targets: ["127.0.0.1:8000"]
          labels: { cluster: prod, port: 8000, canary: true }
"#,
    )
    .expect("valid");
    let job = &config.config.scrape_configs[0];
    let global = &config.config.global;
    assert_eq!(job.interval(global), Duration::from_secs(60));
    assert_eq!(job.timeout(global), Duration::from_secs(10));
    assert_eq!(job.metrics_path, "/metrics");
    assert_eq!(job.scheme, "http");
    assert!(job.honor_timestamps && !job.honor_labels && job.enable_compression);
    assert_eq!(job.body_size_limit, DEFAULT_BODY_SIZE_LIMIT);
    assert_eq!(job.static_configs[0].labels["cluster"], "prod");
    assert_eq!(job.static_configs[0].labels["port"], "8000");
    assert_eq!(job.static_configs[0].labels["canary"], "true");
}

#[test]
fn every_supported_key_is_read() {
    let config = load(
        r#"
config:
  global: { scrape_interval: 30s, scrape_timeout: 5s }
  scrape_configs:
    - job_name: gpu
      scrape_interval: 2s
      metrics_path: /probe
      scheme: https
      params: { module: [gpu, mem] }
      honor_labels: true
      honor_timestamps: false
      tls_config: { ca_file: /etc/ca.pem, server_name: dcgm.local, min_version: TLS13 }
      authorization: { credentials: "t0k3n" }
      metric_relabel_configs:
        - { source_labels: [__name__], regex: "DCGM_.*", action: keep }
        - { regex: "pod|node", action: labeldrop }
      body_size_limit: 2MiB
      sample_limit: 5000
      enable_compression: false
      static_configs: [{ targets: ["[::1]:9400", "gpu-host"] }]
    - job_name: other
      basic_auth: { username: u, password_file: /run/secrets/p }
"#,
    )
    .expect("valid");
    let global = &config.config.global;
    let gpu = &config.config.scrape_configs[0];
    assert_eq!(gpu.interval(global), Duration::from_secs(2));
    assert_eq!(
        gpu.timeout(global),
        Duration::from_secs(2),
        "the global timeout cut to the interval"
    );
    assert_eq!(gpu.params["module"], ["gpu", "mem"]);
    assert_eq!(gpu.body_size_limit, 2 << 20);
    assert_eq!(
        gpu.metric_relabel_configs[0].parsed_action(),
        Ok(RelabelAction::Keep)
    );
    let other = &config.config.scrape_configs[1];
    assert_eq!(other.interval(global), Duration::from_secs(30));
    assert_eq!(other.timeout(global), Duration::from_secs(5));
    assert_eq!(
        parse_target("[::1]:9400", "https"),
        Ok(TargetAddress {
            host: "::1".into(),
            port: 9400
        })
    );
    assert_eq!(
        parse_target("gpu-host", "https"),
        Ok(TargetAddress {
            host: "gpu-host".into(),
            port: 443
        })
    );
}

#[test]
fn an_unsupported_prometheus_key_is_refused_by_name() {
    for (yaml, key) in [
        (
            "config: { scrape_configs: [{ job_name: k, kubernetes_sd_configs: [{ role: pod }] }] }",
            "kubernetes_sd_configs",
        ),
        (
            "config: { scrape_configs: [{ job_name: k, relabel_configs: [] }] }",
            "relabel_configs",
        ),
        (
            "config: { remote_write: [{ url: x }], scrape_configs: [{ job_name: k }] }",
            "remote_write",
        ),
        (
            "config: { global: { external_labels: { a: b } }, scrape_configs: [{ job_name: k }] }",
            "external_labels",
        ),
        (
            "trim_metric_suffixes: true\nconfig: { scrape_configs: [{ job_name: k }] }",
            "trim_metric_suffixes",
        ),
    ] {
        let all = errors(yaml).join("\n");
        assert!(
            all.contains(&format!("unknown field `{key}`")),
            "{yaml}: {all}"
        );
        assert!(all.contains(key), "{all}");
    }
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let all = errors(
        r#"
config:
  scrape_configs:
    - job_name: a
      scrape_interval: 5s
      scrape_timeout: 10s
      scheme: ftp
      metrics_path: metrics
      body_size_limit: 0
      static_configs: [{ targets: ["http://x:1/metrics", "host:99999"], labels: { "__x": y } }]
      metric_relabel_configs:
        - { source_labels: [a], regex: "(" , action: keep }
        - { regex: x }
        - { regex: x, action: replace }
        - { source_labels: [a], regex: x, action: labeldrop }
    - job_name: a
      basic_auth: { username: u, password: p, password_file: f }
      authorization: { credentials: c }
      tls_config: { cert_file: c.pem, min_version: TLS10 }
"#,
    );
    let expect = [
        "config.scrape_configs[0].scrape_timeout: 10s is longer than the scrape interval (5s)",
        "config.scrape_configs[0].scheme: `ftp` is not `http` or `https`",
        "config.scrape_configs[0].metrics_path: `metrics` must start with `/`",
        "config.scrape_configs[0].body_size_limit: must be more than 0",
        "config.scrape_configs[0].static_configs[0].targets[0]:",
        "config.scrape_configs[0].static_configs[0].targets[1]:",
        "config.scrape_configs[0].static_configs[0].labels.__x:",
        "config.scrape_configs[0].metric_relabel_configs[0].regex: invalid regex",
        "config.scrape_configs[0].metric_relabel_configs[1].action: is required",
        "config.scrape_configs[0].metric_relabel_configs[2].action: `replace` is not supported",
        "config.scrape_configs[0].metric_relabel_configs[3].source_labels:",
        "config.scrape_configs[1].job_name: `a` is used by another scrape config",
        "config.scrape_configs[1].authorization: and `basic_auth` are both set",
        "config.scrape_configs[1].basic_auth.password: and `password_file` are both set",
        "config.scrape_configs[1].tls_config: `cert_file` and `key_file` go together",
        "config.scrape_configs[1].tls_config.min_version: `TLS10`",
    ];
    for line in expect {
        assert!(
            all.iter().any(|e| e.starts_with(line)),
            "missing {line:?} in:\n{}",
            all.join("\n")
        );
    }
    assert_eq!(all.len(), expect.len(), "{}", all.join("\n"));
    assert_eq!(
        errors("config: {}"),
        ["config.scrape_configs: at least one scrape config is required"]
    );
}

#[test]
fn secrets_never_print() {
    let config = load(
        r#"
config:
  scrape_configs:
    - job_name: a
      basic_auth: { username: u, password: "hunter2-basic" }
    - job_name: b
      authorization: { type: Bearer, credentials: 123456789 }
"#,
    )
    .expect("valid");
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("hunter2-basic") && !debug.contains("123456789"),
        "{debug}"
    );
    assert_eq!(
        config.config.scrape_configs[1]
            .authorization
            .as_ref()
            .and_then(|a| a.credentials.as_ref())
            .map(Secret::expose),
        Some("123456789")
    );

    // A refused secret is not quoted either.
    let all = errors(
        "config: { scrape_configs: [{ job_name: a, authorization: { credentials: \"bad\\ntoken-xyz\" } }] }",
    );
    assert!(all.iter().all(|e| !e.contains("token-xyz")), "{all:?}");
    assert!(all[0].contains("authorization.credentials"), "{all:?}");
}
