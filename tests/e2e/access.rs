//! Access control as a user deploys it: the receiver serves TLS on both protocols with a bearer token taken from
//! the environment (`${env:OTLAKE_TOKEN}`); the real Python SDK exporters send over TLS with the token and
//! their data lands; without the token they are refused, nothing of theirs lands, the refusal is counted; and
//! the token appears in no output of the daemon (start-up logs, `otlake validate`, start-up errors). otlake's
//! own `otlp`/`otlphttp` exporters reach that receiver over TLS with the token; a wrong CA or name is refused.

use std::process::Command;

use crate::support::{
    Daemon, OTLAKE, OTLP_IN, Ports, TELEMETRY, http_request, landed_log_bodies,
    landed_metric_points, output_text, read_jsonl, sdk_send, sdk_send_acknowledged,
    sent_log_bodies, sent_metric_points, workspace,
};

const TOKEN: &str = "e2e-access-T0KEN-4f1c9a";

fn tls_dir() -> String {
    workspace()
        .join("exporters/otlp/tests/testdata/tls")
        .display()
        .to_string()
}

/// The receiver with TLS on both protocols and `auth.bearer_token: ${env:OTLAKE_TOKEN}`.
fn secure_receiver() -> String {
    let tls = format!(
        "        tls:\n          cert_file: {dir}/server.pem\n          key_file: {dir}/server.key\n",
        dir = tls_dir()
    );
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{{grpc}}\n{tls}      http:\n        endpoint: 127.0.0.1:{{http}}\n{tls}    auth:\n      bearer_token: ${{env:OTLAKE_TOKEN}}\n"
    )
}

fn secure_config() -> String {
    format!(
        "{}exporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n    logs: {{receivers: [otlp], exporters: [file]}}\n    metrics: {{receivers: [otlp], exporters: [file]}}\n{TELEMETRY}",
        secure_receiver()
    )
}

fn start_with_token() -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports::any();
    let config = ports.fill(&secure_config().replace("{dir}", &dir.path().display().to_string()));
    let config_path = dir.path().join("otlake.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let mut command = Command::new(OTLAKE);
    command
        .args(["run", "--config"])
        .arg(&config_path)
        .env("OTLAKE_TOKEN", TOKEN)
        .env("RUST_LOG", "debug");
    Daemon::from_command(command, dir, ports)
}

/// `sdk_send.py` over TLS (trusting the test CA, checking the name `localhost`), with `extra` arguments.
fn send_tls(protocol: &str, port: u16, tag: &str, extra: &[&str]) -> serde_json::Value {
    let endpoint = format!("127.0.0.1:{port}");
    let ca = format!("{}/ca.pem", tls_dir());
    let mut args = vec![
        "--protocol",
        protocol,
        "--endpoint",
        &endpoint,
        "--certificate",
        &ca,
        "--server-name",
        "localhost",
        "--tag",
        tag,
        "--spans",
        "6",
        "--logs",
        "4",
        "--timeout",
        "5",
    ];
    args.extend_from_slice(extra);
    sdk_send(&args)
}

fn landed_span_ids(daemon: &Daemon) -> Vec<String> {
    let mut ids = Vec::new();
    for line in read_jsonl(&daemon.dir.path().join("out.jsonl")) {
        for rs in line["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    ids.push(s["spanId"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    ids
}

#[test]
fn python_sdk_over_tls_with_the_token_lands_and_without_it_is_refused_and_counted() {
    let mut daemon = start_with_token();
    let header = format!("authorization=Bearer {TOKEN}");
    let wrong = "authorization=Bearer not-the-token".to_owned();

    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (protocol, port) in [("grpc", daemon.ports.grpc), ("http", daemon.ports.http)] {
        let sent = send_tls(
            protocol,
            port,
            &format!("{protocol}-ok"),
            &["--header", &header],
        );
        for (signal, result) in sent["results"].as_object().expect("results") {
            assert_eq!(result, "SUCCESS", "{protocol} {signal} with the token");
        }
        accepted.push(sent);
        for extra in [&[][..], &["--header", wrong.as_str()][..]] {
            let sent = send_tls(protocol, port, &format!("{protocol}-denied"), extra);
            for (signal, result) in sent["results"].as_object().expect("results") {
                assert_eq!(
                    result, "FAILURE",
                    "{protocol} {signal} {extra:?} was accepted"
                );
            }
            refused.push(sent);
        }
    }

    let metrics = http_request("GET", daemon.ports.metrics, "/metrics", &[], b"")
        .expect("metrics answer")
        .text();
    let unauthenticated: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("otlake_receiver_refused_items_total")
                && l.contains("reason=\"unauthenticated\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    // Two refused runs per protocol, three signals each (the SDK does not retry an authentication failure).
    assert!(unauthenticated >= 12.0, "refusals counted: {metrics}");

    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
    let landed = landed_span_ids(&daemon);
    for sent in &accepted {
        for span in sent["spans"].as_array().expect("spans") {
            let id = span["span_id"].as_str().expect("id");
            assert_eq!(
                landed.iter().filter(|l| *l == id).count(),
                1,
                "span {id} landed once"
            );
        }
    }
    for sent in &refused {
        for span in sent["spans"].as_array().expect("spans") {
            let id = span["span_id"].as_str().expect("id");
            assert!(!landed.iter().any(|l| l == id), "refused span {id} landed");
        }
    }
    let stderr = daemon.stderr();
    assert!(stderr.contains("OTLP receiver listening"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "the token was logged:\n{stderr}");
}

#[test]
fn the_token_is_in_no_validate_output_or_start_up_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports::free();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, ports.fill(&text)).expect("write config");
        path
    };
    let pipelines = "exporters:\n  debug:\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug]}\n";

    // Valid: `validate` says so without printing the token.
    let valid = write(
        "valid.yaml",
        format!("{}{pipelines}{TELEMETRY}", secure_receiver()),
    );
    let (ok, text) = output_text(
        Command::new(OTLAKE)
            .args(["validate", "--config"])
            .arg(&valid)
            .env("OTLAKE_TOKEN", TOKEN),
    );
    assert!(ok, "{text}");
    assert!(!text.contains(TOKEN), "{text}");

    // Invalid token (a space: it cannot travel in a header) and an unknown key beside it: every problem is
    // reported, and the token is not quoted.
    let bad_token = "not valid T0KEN-with-space";
    let invalid = write(
        "invalid.yaml",
        format!(
            "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{{http}}\n    auth:\n      bearer_token: \"{bad_token}\"\n{pipelines}"
        ),
    );
    let (ok, text) = output_text(
        Command::new(OTLAKE)
            .args(["validate", "--config"])
            .arg(&invalid),
    );
    assert!(!ok, "{text}");
    assert!(text.contains("auth.bearer_token"), "names the key: {text}");
    assert!(!text.contains("T0KEN"), "{text}");

    // A missing certificate: `run` fails at start-up naming the file, without the token in any line.
    let missing = write(
        "missing.yaml",
        format!("{}{pipelines}{TELEMETRY}", secure_receiver())
            .replace("server.pem", "no-such-server.pem"),
    );
    let (ok, text) = output_text(
        Command::new(OTLAKE)
            .args(["run", "--config"])
            .arg(&missing)
            .env("OTLAKE_TOKEN", TOKEN)
            .env("RUST_LOG", "debug"),
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("no-such-server.pem") && text.contains("cert_file"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
}

/// A sidecar forwarding every signal to the TLS + token gateway: traces and metrics over `otlp` (gRPC), logs
/// and metrics over `otlphttp`, each trusting the test CA and checking the name `localhost`, the token from the
/// environment. `tls` replaces the gRPC exporter's `tls` keys (the failure cases); there retries are off, so
/// a refused handshake answers the client at once.
fn forwarding_sidecar(gateway: &Daemon, grpc_tls: Option<&str>) -> Daemon {
    let dir = tls_dir();
    let good_tls =
        format!("    tls:\n      ca_file: {dir}/ca.pem\n      server_name_override: localhost\n");
    let (tls, retry) = match grpc_tls {
        Some(tls) => (
            tls.replace("{dir}", &dir),
            "    retry_on_failure:\n      enabled: false\n",
        ),
        None => (good_tls.clone(), ""),
    };
    let token = "    headers:\n      authorization: \"Bearer ${env:OTLAKE_TOKEN}\"\n";
    let config = format!(
        "{OTLP_IN}exporters:\n  otlp/gateway:\n    endpoint: 127.0.0.1:{grpc}\n{token}{tls}{retry}  otlphttp/gateway:\n    endpoint: https://127.0.0.1:{http}\n{token}{good_tls}service:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [otlp/gateway]}}\n    logs: {{receivers: [otlp], exporters: [otlphttp/gateway]}}\n    metrics: {{receivers: [otlp], exporters: [otlp/gateway, otlphttp/gateway]}}\n{TELEMETRY}",
        grpc = gateway.ports.grpc,
        http = gateway.ports.http,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sidecar.yaml");
    std::fs::write(&path, Ports::any().fill(&config)).expect("write config");
    let mut command = Command::new(OTLAKE);
    command
        .args(["run", "--config"])
        .arg(&path)
        .env("OTLAKE_TOKEN", TOKEN);
    Daemon::from_command(command, dir, Ports::any())
}

/// The exporters' TLS end to end, against the daemon's own TLS + token receiver: what the sidecar
/// acknowledges is at the gateway, by content; a gateway certificate from another CA, or for another name,
/// is refused by the gRPC exporter and nothing of that data lands.
#[test]
fn otlp_exporters_forward_over_tls_with_a_token_and_refuse_a_wrong_ca_or_name() {
    let mut gateway = start_with_token();
    let mut sidecar = forwarding_sidecar(&gateway, None);
    let sent = sdk_send_acknowledged(
        "grpc",
        sidecar.ports.grpc,
        &["--tag", "over-tls", "--spans", "5", "--logs", "3"],
    );
    assert!(sidecar.terminate(), "clean exit:\n{}", sidecar.stderr());

    let wrong_ca =
        "    tls:\n      ca_file: {dir}/other-ca.pem\n      server_name_override: localhost\n";
    let wrong_name = "    tls:\n      ca_file: {dir}/ca.pem\n      server_name_override: not-the-gateway.example\n";
    for (case, tls) in [("wrong-ca", wrong_ca), ("wrong-name", wrong_name)] {
        let mut refused = forwarding_sidecar(&gateway, Some(tls));
        let endpoint = format!("127.0.0.1:{}", refused.ports.grpc);
        let result = sdk_send(&[
            "--protocol",
            "grpc",
            "--endpoint",
            &endpoint,
            "--tag",
            case,
            "--only",
            "traces",
            "--spans",
            "2",
            "--timeout",
            "3",
        ]);
        assert_eq!(result["results"]["traces"], "FAILURE", "{case}: {result}");
        assert!(
            refused.terminate(),
            "{case}: clean exit:\n{}",
            refused.stderr()
        );
        let stderr = refused.stderr().to_lowercase();
        assert!(
            stderr.contains("certificate"),
            "{case}: the log names the certificate problem:\n{stderr}"
        );
    }

    assert!(gateway.terminate(), "clean exit:\n{}", gateway.stderr());
    let lines = read_jsonl(&gateway.dir.path().join("out.jsonl"));
    let mut landed = landed_span_ids(&gateway);
    landed.sort();
    let mut want: Vec<String> = sent["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| s["span_id"].as_str().expect("id").to_owned())
        .collect();
    want.sort();
    assert_eq!(
        landed, want,
        "exactly the acknowledged spans, once; none of the refused ones"
    );
    assert_eq!(landed_log_bodies(&lines), sent_log_bodies(&[&sent]));
    // Metrics went through both exporters: every point twice, once per protocol.
    let once = sent_metric_points(&[&sent]);
    let mut twice: Vec<String> = once.iter().chain(&once).cloned().collect();
    twice.sort();
    assert_eq!(landed_metric_points(&lines), twice);
}
