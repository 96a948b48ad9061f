//! The `prometheus` receiver end to end: a real Python `prometheus_client` server publishing vLLM's metric
//! families (tests/clients/prom_vllm_exporter.py) is scraped by the daemon into Delta, and DuckDB over
//! `otel_metrics` answers the token-rate and TTFT questions with exactly what the exporter served. Beside it:
//! a target that goes away (`up` = 0), one that answers garbage, one behind basic auth (right and wrong
//! password), one that never existed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::query;
use crate::support::{
    Daemon, OTLAKE, TELEMETRY, free_port, http_request, output_text, python, workspace,
};

/// The exporter process; killed on drop.
struct Exporter {
    child: Option<Child>,
    port: u16,
    log: std::path::PathBuf,
}

impl Exporter {
    fn start(dir: &Path) -> Exporter {
        let port = free_port();
        let log = dir.join("served.jsonl");
        let child = Command::new(python())
            .arg(workspace().join("tests/clients/prom_vllm_exporter.py"))
            .args(["--port", &port.to_string(), "--log"])
            .arg(&log)
            .args([
                "--basic-auth",
                "scraper:s3cret-pass",
                "--max-seconds",
                "240",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the exporter starts");
        let exporter = Exporter {
            child: Some(child),
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http_request("GET", port, "/ready", &[], b"").is_ok_and(|r| r.status == 200) {
            assert!(
                Instant::now() < deadline,
                "the exporter did not answer in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        exporter
    }

    /// Scrapes of /metrics served so far.
    fn served(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(exporter: u16, dead: u16) -> String {
    format!(
        r#"receivers:
  prometheus:
    config:
      global: {{ scrape_interval: 1s, scrape_timeout: 1s }}
      scrape_configs:
        - job_name: vllm
          static_configs: [{{ targets: ["127.0.0.1:{exporter}"], labels: {{ cluster: e2e }} }}]
        - job_name: garbage
          metrics_path: /garbage
          static_configs: [{{ targets: ["127.0.0.1:{exporter}"] }}]
        - job_name: gpu
          metrics_path: /auth/metrics
          basic_auth: {{ username: scraper, password: "${{env:PROM_E2E_PASSWORD}}" }}
          static_configs: [{{ targets: ["127.0.0.1:{exporter}"] }}]
        - job_name: gpu-wrong-password
          metrics_path: /auth/metrics
          basic_auth: {{ username: scraper, password: wrong-pass-zz9 }}
          static_configs: [{{ targets: ["127.0.0.1:{exporter}"] }}]
        - job_name: dead
          static_configs: [{{ targets: ["127.0.0.1:{dead}"] }}]
processors:
  batch: {{ timeout: 100ms }}
exporters:
  delta: {{ location: "{{dir}}/data", max_latency: 300ms }}
service:
  pipelines:
    metrics: {{ receivers: [prometheus], processors: [batch], exporters: [delta] }}
{TELEMETRY}"#
    )
}

/// Scrapes of the exporter before it is stopped.
const SERVED: usize = 8;

fn up_values(location: &Path, job: &str) -> Vec<f64> {
    let sql = format!(
        "SELECT gauge.value AS up FROM otel_metrics WHERE name = 'up' \
         AND resource.attributes['service.name'] = '{job}' ORDER BY gauge.time_unix_nano"
    );
    query(location, &sql)
        .iter()
        .filter_map(|r| r["up"].as_f64())
        .collect()
}

fn number(report: &Value, engine: &str, key: &str) -> f64 {
    report["engines"][engine][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} of engine {engine} in {report}"))
}

#[test]
fn vllm_metrics_scraped_into_delta_answer_token_rate_and_ttft_as_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut exporter = Exporter::start(dir.path());
    let dead = free_port();
    let ports = crate::support::Ports::any();
    let template = config(exporter.port, dead);
    let config_text = ports.fill(&template.replace("{dir}", &dir.path().display().to_string()));
    let config_path = dir.path().join("otlake.yaml");
    std::fs::write(&config_path, config_text).expect("write config");
    let mut command = Command::new(OTLAKE);
    command
        .args(["run", "--config"])
        .arg(&config_path)
        .env("PROM_E2E_PASSWORD", "s3cret-pass");
    let mut daemon = Daemon::from_command(command, dir, ports);

    // Several scrapes of the changing exporter, then it goes away.
    let deadline = Instant::now() + Duration::from_secs(60);
    while exporter.served() < SERVED {
        assert!(
            Instant::now() < deadline,
            "only {} scrapes in 60 s:\n{}",
            exporter.served(),
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    exporter.stop();
    let location = daemon.dir.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let table_ready = location.join("otel_metrics/_delta_log").exists();
        if table_ready && up_values(&location, "vllm").contains(&0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no up = 0 after the exporter went away:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
    let stderr = daemon.stderr();

    // up: 1 while the exporter ran, 0 once it was gone; the others as they deserve.
    let vllm = up_values(&location, "vllm");
    let first_down = vllm.iter().position(|v| *v == 0.0).expect("a 0");
    // The last scrape served may have been cut off by the kill: every one before it succeeded.
    assert!(
        first_down >= SERVED - 1 && vllm[..first_down].iter().all(|v| *v == 1.0),
        "{vllm:?}"
    );
    for job in ["garbage", "dead", "gpu-wrong-password"] {
        let ups = up_values(&location, job);
        assert!(
            !ups.is_empty() && ups.iter().all(|v| *v == 0.0),
            "{job}: {ups:?}"
        );
    }
    let gpu = up_values(&location, "gpu");
    assert!(
        gpu.contains(&1.0),
        "basic auth with the right password: {gpu:?}"
    );
    let utilisation = query(
        &location,
        "SELECT gauge.value AS v, gauge.attributes['modelName'] AS model FROM otel_metrics \
         WHERE name = 'DCGM_FI_DEV_GPU_UTIL' LIMIT 1",
    );
    assert_eq!(utilisation[0]["v"].as_f64(), Some(87.0), "{utilisation:?}");

    // A target failing the same way is logged once (garbage: with the line), not every interval; no secret is
    // printed.
    let garbage_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.contains("Scrape failed;") && l.contains("garbage") && l.contains("malformed")
        })
        .collect();
    assert_eq!(garbage_lines.len(), 1, "{stderr}");
    assert!(garbage_lines[0].contains("line 1"), "{}", garbage_lines[0]);
    assert!(
        !stderr.contains("s3cret-pass") && !stderr.contains("wrong-pass-zz9"),
        "{stderr}"
    );

    // The platform engineer's questions, in DuckDB, against what the exporter served.
    let out = crate::support::bounded_output(
        Command::new(python())
            .arg(workspace().join("tests/clients/prom_vllm_check.py"))
            .arg(&location)
            .arg(&exporter.log)
            .arg("vllm"),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for engine in ["0", "1"] {
        let entry = &report["engines"][engine];
        assert_eq!(entry["first_value_served"], true, "{report}");
        assert_eq!(entry["last_value_served"], true, "{report}");
        assert!(
            number(&report, engine, "token_points") >= (SERVED - 1) as f64,
            "{report}"
        );
        let tokens = number(&report, engine, "tokens_sql");
        assert!(
            tokens > 0.0 && tokens == number(&report, engine, "tokens_served"),
            "{report}"
        );
        let rate = number(&report, engine, "tokens_per_second_sql");
        let seconds = number(&report, engine, "seconds");
        assert!((rate * seconds - tokens).abs() < 1e-6 * tokens, "{report}");
        let points = number(&report, engine, "histogram_points");
        assert!(points >= (SERVED - 1) as f64, "{report}");
        assert_eq!(
            points,
            number(&report, engine, "histogram_points_matching_served"),
            "{report}"
        );
        for q in ["p50", "p99"] {
            let sql = number(&report, engine, &format!("ttft_{q}_sql"));
            let served = number(&report, engine, &format!("ttft_{q}_served"));
            assert!(
                (sql - served).abs() <= 1e-9 * served.abs().max(1.0),
                "{q}: {report}"
            );
        }
    }
}

#[test]
fn validate_names_an_unsupported_prometheus_key_and_never_prints_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("prom.yaml");
    std::fs::write(
        &path,
        "receivers:\n  prometheus:\n    config:\n      scrape_configs:\n        - job_name: k8s\n          \
         basic_auth: { username: u, password: \"hunter2-do-not-print\" }\n          kubernetes_sd_configs: [{ role: pod }]\n\
         exporters:\n  debug: {}\nservice:\n  pipelines:\n    metrics: { receivers: [prometheus], exporters: [debug] }\n",
    )
    .expect("write");
    let (ok, text) = output_text(
        Command::new(OTLAKE)
            .args(["validate", "--config"])
            .arg(&path),
    );
    assert!(!ok, "{text}");
    assert!(text.contains("kubernetes_sd_configs"), "{text}");
    assert!(!text.contains("hunter2-do-not-print"), "{text}");
}
