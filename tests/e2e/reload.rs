//! Hot reload: `otlake loadgen` sends spans and logs over gRPC and HTTP at a steady rate while the config is
//! reloaded (SIGHUP) 20 times, alternating edits that add and remove an exporter, change batch settings, move
//! a receiver to another port, restart the Delta exporter on the same write-ahead log, and an invalid file.
//! Afterwards every acknowledged id is in Delta exactly once and in the file exporter that stayed; nothing was
//! refused for good. An invalid edit leaves the same process serving on the same ports (health 200), and
//! under `--watch` a Kubernetes-style ConfigMap symlink swap triggers a reload.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::crash::ids_in;
use crate::support::query;
use crate::support::{
    Daemon, OTLAKE, OTLP_IN, Ports, TELEMETRY, free_port, http_request, post_protobuf, python,
    wait_output, without_otel_env, workspace,
};

/// What the edits toggle.
#[derive(Clone, Copy, Default)]
struct Edits {
    /// A second file exporter in both pipelines.
    extra_exporter: bool,
    /// Other batch settings.
    bigger_batches: bool,
    /// `otlp/second` on its second port.
    moved_receiver: bool,
    /// Another Delta `max_latency`: the Delta exporter restarts on the same write-ahead log.
    slower_delta: bool,
}

/// OTLP (ports from the daemon: 0 in the file, so the section never changes) and `otlp/second` (HTTP on one
/// of two fixed ports; named so that `receiver/otlp/http` is the first `/http` address of the ready file,
/// the one `Daemon` calls `ports.http`) → batch → Delta behind a write-ahead log + a file exporter that stays (+ one that
/// comes and goes).
fn config(e: Edits, extra_ports: (u16, u16)) -> String {
    let extra_port = if e.moved_receiver {
        extra_ports.1
    } else {
        extra_ports.0
    };
    let (timeout, size) = if e.bigger_batches {
        ("200ms", 400)
    } else {
        ("100ms", 200)
    };
    let latency = if e.slower_delta { "700ms" } else { "400ms" };
    let exporters = if e.extra_exporter {
        "[delta, file, file/extra]"
    } else {
        "[delta, file]"
    };
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{{grpc}}\n      http:\n        endpoint: 127.0.0.1:{{http}}\n  otlp/second:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{extra_port}\n\
processors:\n  batch:\n    timeout: {timeout}\n    send_batch_size: {size}\n\
exporters:\n  delta:\n    location: {{dir}}/data\n    max_latency: {latency}\n    sending_queue: {{storage: wal, directory: {{dir}}/wal}}\n  file:\n    path: {{dir}}/out.jsonl\n  file/extra:\n    path: {{dir}}/extra.jsonl\n\
service:\n  pipelines:\n    traces: {{receivers: [otlp, otlp/second], processors: [batch], exporters: {exporters}}}\n    logs: {{receivers: [otlp, otlp/second], processors: [batch], exporters: {exporters}}}\n{TELEMETRY}"
    )
}

/// Writes the daemon's config file as the test's templates say (ports 0, `{dir}` filled), aside then renamed.
fn write_config(d: &Daemon, template: &str) {
    let text = Ports::any().fill(&template.replace("{dir}", &d.dir.path().display().to_string()));
    let aside = d.dir.path().join("otlake.yaml.new");
    std::fs::write(&aside, text).expect("write config");
    std::fs::rename(&aside, d.dir.path().join("otlake.yaml")).expect("rename config");
}

/// The text of a log line without its terminal colours.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('\u{1b}') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        rest = rest.find('m').map_or("", |end| &rest[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// Lines of the daemon's log that end a reload, applied or refused.
fn reload_lines(d: &Daemon) -> Vec<String> {
    d.stderr()
        .lines()
        .map(plain)
        .filter(|l| {
            l.contains("Configuration reloaded.") || l.contains("Configuration reload refused")
        })
        .collect()
}

/// Waits (at most 60 s) until the daemon has logged `n` finished reloads; returns the last line.
fn wait_reloads(d: &Daemon, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = reload_lines(d);
        if lines.len() >= n {
            return lines[n - 1].clone();
        }
        assert!(
            Instant::now() < deadline,
            "reload {n} did not finish in 60 s:\n{}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sighup(d: &Daemon) {
    let status = Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// `otlake loadgen` in the background, logging acknowledged ids to `acks`.
fn start_loadgen(protocol: &str, port: u16, seed: &str, acks: &Path) -> Child {
    Command::new(OTLAKE)
        .args(["loadgen", "--protocol", protocol, "--endpoint"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "--signal",
            "traces,logs",
            "--batch",
            "10",
            "--rate",
            "200",
            "--duration",
            "15s",
            "--concurrency",
            "2",
            "--retries",
            "10",
            "--seed",
            seed,
            "--json",
            "--ack-log",
        ])
        .arg(acks)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadgen starts")
}

fn status(port: u16, path: &str) -> u16 {
    http_request("GET", port, path, &[], b"")
        .map(|r| r.status)
        .unwrap_or(0)
}

/// Log record uids in the Delta logs table, with their row counts.
fn log_uids_in(location: &Path) -> BTreeMap<String, u64> {
    let rows = query(
        location,
        "SELECT attributes['log.record.uid'] AS uid, count(*) AS n FROM otel_logs GROUP BY 1",
    );
    rows.into_iter()
        .filter_map(|row| {
            // DuckDB answers a map subscript with a one-element list in some versions, a value in others.
            let uid = match &row["uid"] {
                serde_json::Value::Array(values) => values.first()?.as_str()?.to_owned(),
                serde_json::Value::String(uid) => uid.clone(),
                other => {
                    let text = other.to_string();
                    text.trim_matches(|c| c == '[' || c == ']' || c == '\'' || c == '"')
                        .to_owned()
                }
            };
            Some((uid, row["n"].as_u64()?))
        })
        .collect()
}

#[test]
fn twenty_reloads_under_load_lose_and_duplicate_nothing_acknowledged() {
    let extra_ports = (free_port(), free_port());
    let mut edits = Edits::default();
    let mut d = Daemon::start_in(
        &config(edits, extra_ports),
        tempfile::tempdir().expect("tempdir"),
        Ports::any(),
    );
    let location = d.dir.path().join("data");
    let acks = [
        d.dir.path().join("acks-grpc.txt"),
        d.dir.path().join("acks-http.txt"),
    ];
    let loads = [
        start_loadgen("grpc", d.ports.grpc, "1", &acks[0]),
        start_loadgen("http", d.ports.http, "2", &acks[1]),
    ];
    let (mut took_ms, mut refused) = (Vec::new(), 0);
    for reload in 1..=20 {
        std::thread::sleep(Duration::from_millis(300));
        let invalid = reload % 5 == 0;
        match reload % 5 {
            1 => edits.extra_exporter = !edits.extra_exporter,
            2 => edits.bigger_batches = !edits.bigger_batches,
            3 => edits.moved_receiver = !edits.moved_receiver,
            4 => edits.slower_delta = !edits.slower_delta,
            _ => {}
        }
        let template = config(edits, extra_ports);
        if invalid {
            write_config(&d, &template.replace("max_latency: ", "max_latency: soon"));
        } else {
            write_config(&d, &template);
        }
        sighup(&d);
        let line = wait_reloads(&d, reload);
        if invalid {
            assert!(line.contains("reload refused"), "{line}");
            refused += 1;
            assert_eq!(
                status(d.ports.health, "/"),
                200,
                "health after an invalid edit"
            );
            // The running config stays: put the valid one back for the next edit to start from.
            write_config(&d, &template);
            continue;
        }
        assert!(line.contains("Configuration reloaded."), "{line}");
        // The receiver the load goes to never changes: it keeps its sockets and connections.
        assert!(line.contains("kept=[receiver/otlp "), "{line}");
        let ms = line
            .split("took_ms=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .expect("the reload line says how long it took");
        took_ms.push(ms);
        if reload % 5 == 3 {
            // The moved receiver answers on its new port.
            let port = if edits.moved_receiver {
                extra_ports.1
            } else {
                extra_ports.0
            };
            assert_eq!(post_protobuf(port, "/v1/traces", b"").status, 200);
        }
    }
    let reports: Vec<serde_json::Value> = loads
        .into_iter()
        .map(|load| {
            let out = wait_output(load, Duration::from_secs(120));
            assert!(
                out.status.success(),
                "loadgen: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).expect("loadgen report")
        })
        .collect();
    let metrics = http_request("GET", d.ports.metrics, "/metrics", &[], b"")
        .expect("metrics")
        .text();
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());

    // What clients saw: nothing refused for good; retries are what a reload may cost.
    for report in &reports {
        assert_eq!(report["refused_requests"], 0, "{report}");
        assert!(
            report["acked_items"].as_u64().expect("acked") > 0,
            "{report}"
        );
    }
    for (result, n) in [("success", 16), ("failed", 4)] {
        let line = format!("otlake_config_reloads_total{{result=\"{result}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    took_ms.sort_unstable();
    eprintln!(
        "16 reloads applied, {refused} refused; reload took {} ms median, {} ms max; retries {} (gRPC) + {} (HTTP), failed requests {} + {}, acknowledged items {} + {}",
        took_ms[took_ms.len() / 2],
        took_ms[took_ms.len() - 1],
        reports[0]["retries"],
        reports[1]["retries"],
        reports[0]["failed_requests"],
        reports[1]["failed_requests"],
        reports[0]["acked_items"],
        reports[1]["acked_items"],
    );
    eprintln!(
        "retried answers: {} (gRPC), {} (HTTP); reloads:\n{}",
        reports[0]["errors"],
        reports[1]["errors"],
        reload_lines(&d).join("\n")
    );

    // Every acknowledged id: once in Delta, at least once in the file exporter that stayed.
    let acked: BTreeSet<String> = acks
        .iter()
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .expect("ack log")
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut in_delta = ids_in(&location, "otel_spans");
    in_delta.extend(log_uids_in(&location));
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !in_delta.contains_key(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged ids are not in Delta, e.g. {:?}",
        lost.len(),
        acked.len(),
        lost.first()
    );
    let twice: Vec<(&String, &u64)> = in_delta
        .iter()
        .filter(|(id, n)| **n > 1 && acked.contains(*id))
        .collect();
    assert!(
        twice.is_empty(),
        "acknowledged ids in Delta more than once: {twice:?}"
    );
    let in_file = crate::loadgen::landed_ids(&d);
    let missing: Vec<&String> = acked.iter().filter(|id| !in_file.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged ids are not in the file exporter that stayed, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

/// A Kubernetes ConfigMap mount: `otlake.yaml -> ..data/otlake.yaml`, `..data -> ..<version>`.
fn configmap_version(dir: &Path, version: &str, text: &str) {
    let versioned = dir.join(version);
    std::fs::create_dir(&versioned).expect("version dir");
    std::fs::write(versioned.join("otlake.yaml"), text).expect("write");
    let link = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version, &link).expect("link");
    std::fs::rename(&link, dir.join("..data")).expect("swap");
}

#[test]
fn under_watch_a_configmap_symlink_swap_reloads_and_an_invalid_edit_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path().join("config");
    std::fs::create_dir(&mount).expect("mount");
    let base = dir.path().display().to_string();
    let template = |extra: bool| {
        let exporters = if extra {
            "[file, file/extra]"
        } else {
            "[file]"
        };
        Ports::any()
            .fill(&format!(
                "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:{{http}}\nexporters:\n  file:\n    path: {{dir}}/out.jsonl\n  file/extra:\n    path: {{dir}}/extra.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: {exporters}}}\n{TELEMETRY}"
            ))
            .replace("{dir}", &base)
    };
    configmap_version(&mount, "..v1", &template(false));
    std::os::unix::fs::symlink("..data/otlake.yaml", mount.join("otlake.yaml")).expect("link");
    let mut command = Command::new(crate::support::otlake_bin());
    command
        .args(["run", "--watch", "--config"])
        .arg(mount.join("otlake.yaml"));
    let mut d = Daemon::from_command(command, dir, Ports::any());
    let (pid, http) = (d.pid(), d.ports.http);

    // The swap adds an exporter: a request sent after the reload lands in both files.
    configmap_version(&mount, "..v2", &template(true));
    let line = wait_reloads(&d, 1);
    assert!(line.contains("Configuration reloaded."), "{line}");
    assert!(line.contains("added=[exporter/file/extra]"), "{line}");
    assert!(line.contains("receiver/otlp"), "kept: {line}");
    assert_eq!(post_protobuf(http, "/v1/traces", b"").status, 200);

    // An invalid version changes nothing: same process, same port, still serving, health 200; the log
    // names the problem as `otlake validate` does.
    configmap_version(
        &mount,
        "..v3",
        &template(true).replace("[file, file/extra]", "[file, nope]"),
    );
    let line = wait_reloads(&d, 2);
    assert!(line.contains("reload refused"), "{line}");
    let log = d.stderr();
    assert!(
        log.contains("service.pipelines.traces.exporters (line"),
        "the problem with its path and line:\n{log}"
    );
    assert!(
        log.contains("exporter `nope` is not defined in `exporters:`"),
        "{log}"
    );
    assert_eq!(d.pid(), pid);
    assert_eq!(status(d.ports.health, "/"), 200);
    assert_eq!(post_protobuf(http, "/v1/traces", b"").status, 200);
    let metrics = http_request("GET", d.ports.metrics, "/metrics", &[], b"")
        .expect("metrics")
        .text();
    assert!(
        metrics.contains("otlake_config_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());
}

/// Reads the JSON lines a child prints on stdout, each within a bounded wait.
struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut Child) -> Lines {
        use std::io::BufRead;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    fn next(&self) -> serde_json::Value {
        let line = self
            .0
            .recv_timeout(Duration::from_secs(30))
            .expect("the client answers within 30 s");
        serde_json::from_str(&line).expect("a JSON line")
    }
}

#[test]
fn a_pipeline_added_to_a_receiver_keeps_its_open_connections() {
    let template = |second: bool| {
        let pipeline = if second {
            "    traces/second: {receivers: [otlp], exporters: [file/second]}\n"
        } else {
            ""
        };
        format!(
            "{OTLP_IN}exporters:\n  file:\n    path: {{dir}}/out.jsonl\n  file/second:\n    path: {{dir}}/second.jsonl\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [file]}}\n{pipeline}{TELEMETRY}"
        )
    };
    let mut d = Daemon::start(&template(false));
    // One HTTP/1.1 keep-alive connection and one gRPC connection, held open by the client and never reopened.
    let mut client = without_otel_env(&mut Command::new(python()))
        .arg(workspace().join("tests/clients/held_connections.py"))
        .args([
            "127.0.0.1",
            &d.ports.grpc.to_string(),
            &d.ports.http.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python starts");
    let lines = Lines::of(&mut client);
    let mut stdin = client.stdin.take().expect("piped stdin");
    let mut send = |name: &str| {
        use std::io::Write;
        writeln!(stdin, "{name}").expect("the client reads");
        lines.next()
    };
    let before = send("before-reload");
    assert_eq!(before["http_status"], 200, "{before}");
    assert_eq!(before["grpc_code"], "OK", "{before}");

    write_config(&d, &template(true));
    sighup(&d);
    let line = wait_reloads(&d, 1);
    assert!(line.contains("Configuration reloaded."), "{line}");
    assert!(line.contains("rewired=[receiver/otlp]"), "{line}");
    assert!(line.contains("added=[pipeline/traces/second"), "{line}");

    // The same connections go on: the HTTP client's local port is the same, and the gRPC channel's only
    // connection still works (a reconnect would be refused).
    let after = send("after-reload");
    assert_eq!(after["http_status"], 200, "{after}\n{}", d.stderr());
    assert_eq!(
        after["http_local_port"], before["http_local_port"],
        "{after}"
    );
    assert_eq!(after["grpc_code"], "OK", "{after}\n{}", d.stderr());
    assert_eq!(after["grpc_connections"], 1, "{after}");
    let _ = client.kill();
    let _ = client.wait();

    // The new pipeline's exporter has what both connections sent after the reload; the old one has it all.
    let second = std::fs::read_to_string(d.dir.path().join("second.jsonl")).unwrap_or_default();
    assert_eq!(second.matches("after-reload").count(), 2, "{second}");
    assert!(!second.contains("before-reload"), "{second}");
    let first = std::fs::read_to_string(d.dir.path().join("out.jsonl")).expect("out.jsonl");
    assert_eq!(first.matches("before-reload").count(), 2, "{first}");
    assert_eq!(first.matches("after-reload").count(), 2, "{first}");
    assert!(d.terminate(), "clean exit:\n{}", d.stderr());
}
