//! The `filelog` receiver end to end: real writers (a Python program logging through `logging` with a
//! RotatingFileHandler, a CRI log file with partial lines), the real daemon, Delta tables read back with
//! `deltalake` + DuckDB. Every wait is bounded.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::crash::{kill_hard, start_on};
use crate::support::query;
use crate::support::{Daemon, Ports, TELEMETRY, python, workspace};

/// A daemon tailing `{dir}/logs/<glob>` into Delta at `{dir}/data`, checkpoints in `{dir}/state`.
fn filelog_config(glob: &str, operators: &str) -> String {
    format!(
        "receivers:\n  filelog:\n    include: [\"{{dir}}/logs/{glob}\"]\n    start_at: beginning\n    poll_interval: 50ms\n    storage: {{dir}}/state\n    include_file_path: true\n    operators:\n{operators}processors:\n  batch:\n    timeout: 100ms\nexporters:\n  delta:\n    location: {{dir}}/data\n    max_latency: 300ms\nservice:\n  pipelines:\n    logs: {{receivers: [filelog], processors: [batch], exporters: [delta]}}\n{TELEMETRY}"
    )
}

const PYTHON_OPERATOR: &str = "      - type: python\n";

/// Starts tests/clients/filelog_writer.py writing `count` records at `rate` per second into `path`.
fn start_writer(path: &Path, count: usize, rate: u32, max_bytes: u32) -> std::process::Child {
    Command::new(python())
        .arg(workspace().join("tests/clients/filelog_writer.py"))
        .arg(path)
        .args([count.to_string(), rate.to_string(), max_bytes.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the writer starts")
}

fn wait_writer(mut writer: std::process::Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = writer.try_wait().expect("wait") {
            assert!(status.success(), "the writer failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = writer.kill();
            panic!("the writer did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What otel_logs holds of the `count` messages `msg 0` .. `msg <count-1>`.
#[derive(Debug, Default)]
struct Landed {
    /// Rows with a `msg <n>` body.
    rows: u64,
    /// Distinct `msg <n>` bodies.
    distinct: u64,
    /// A few of the numbers missing.
    missing: Vec<u64>,
}

fn landed(location: &Path, count: u64) -> Landed {
    if !location.join("otel_logs/_delta_log").exists() {
        return Landed::default();
    }
    let rows = query(
        location,
        &format!(
            "WITH m AS (SELECT body FROM otel_logs WHERE body LIKE 'msg %') \
             SELECT (SELECT count(*) FROM m) AS rows, (SELECT count(DISTINCT body) FROM m) AS distinct_rows, \
             (SELECT list(n ORDER BY n)[1:10] FROM (SELECT range AS n FROM range(0, {count})) \
              WHERE 'msg ' || n NOT IN (SELECT body FROM m)) AS missing"
        ),
    );
    let row = &rows[0];
    Landed {
        rows: row["rows"].as_u64().unwrap_or(0),
        distinct: row["distinct_rows"].as_u64().unwrap_or(0),
        missing: row["missing"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
            .unwrap_or_default(),
    }
}

/// Waits (bounded) until every one of `count` messages is in the table; returns what is there.
fn wait_for_all(location: &Path, count: u64, limit: Duration) -> Landed {
    let deadline = Instant::now() + limit;
    loop {
        let now = landed(location, count);
        if now.distinct >= count || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn filelog_python_logging_with_rotation_lands_once_each_with_tracebacks_joined() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
    let mut daemon = Daemon::start_in(
        &filelog_config("app.log*", PYTHON_OPERATOR),
        dir,
        Ports::any(),
    );
    let logs = daemon.dir.path().join("logs");
    // Small files: the handler rotates a dozen times while the daemon reads.
    let count = 3000;
    let writer = start_writer(&logs.join("app.log"), count, 1500, 20_000);
    wait_writer(writer, Duration::from_secs(60));
    assert!(
        std::fs::read_dir(&logs).expect("logs").count() > 5,
        "the writer rotated"
    );
    let location = daemon.dir.path().join("data");
    let landed = wait_for_all(&location, count as u64, Duration::from_secs(90));
    assert_eq!(
        landed.distinct, count as u64,
        "records missing, e.g. {:?}",
        landed.missing
    );
    assert_eq!(
        landed.rows, count as u64,
        "records twice without any crash: {landed:?}"
    );

    // Each logged exception is one ERROR record carrying its traceback, the levels are Python's.
    let errors = query(
        &location,
        "SELECT body, severity_text, severity_number, attributes['exception.type'] AS type, \
         attributes['exception.message'] AS message, attributes['exception.stacktrace'] AS stack, \
         instrumentation_scope.name AS logger FROM otel_logs WHERE body = 'msg 99'",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["severity_text"], "ERROR");
    assert_eq!(errors[0]["type"], "ValueError");
    assert_eq!(errors[0]["message"], "bad input 99");
    assert_eq!(errors[0]["logger"], "model.server");
    let stack = errors[0]["stack"].as_str().unwrap_or_default();
    assert!(
        stack.starts_with("Traceback (most recent call last):")
            && stack.contains("raise ValueError"),
        "{stack}"
    );
    let levels = query(
        &location,
        "SELECT severity_text, count(*) AS n FROM otel_logs GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(
        serde_json::Value::Array(levels),
        serde_json::json!([
            {"severity_text": "ERROR", "n": 30},
            {"severity_text": "INFO", "n": 2700},
            {"severity_text": "WARNING", "n": 270}
        ])
    );
    // No traceback line became a record of its own.
    let stray = query(
        &location,
        "SELECT count(*) AS n FROM otel_logs WHERE body NOT LIKE 'msg %'",
    );
    assert_eq!(stray[0]["n"], 0, "{stray:?}");
    // The seed query: errors in the last hour.
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
        - 3600 * 1_000_000_000;
    let recent = query(
        &location,
        &format!(
            "SELECT count(*) AS n FROM otel_logs WHERE CAST(severity_number AS INTEGER) >= 17 \
             AND time_unix_nano > {hour_ago}"
        ),
    );
    assert_eq!(recent[0]["n"], 30, "{recent:?}");
    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
}

/// Moments to SIGKILL the daemon at: three delays of 0.5 to 1.5 s, drawn from `seed` (printed, so a failure
/// can be replayed with `OTLAKE_E2E_SEED`).
fn kill_delays(seed: u64) -> Vec<Duration> {
    let mut state = seed | 1;
    (0..3)
        .map(|_| {
            // xorshift64: no dependency for three numbers.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            Duration::from_millis(500 + state % 1000)
        })
        .collect()
}

/// SIGKILLs the daemon as soon as a new version of `table` appears (waiting at most 3 s): the moment between a
/// Delta commit and the receiver's checkpoint after it, where a receiver that only checkpoints sends lines a
/// second time.
fn kill_after_next_commit(daemon: &mut crate::support::Daemon, table: &Path) {
    let log = table.join("_delta_log");
    let versions = || {
        std::fs::read_dir(&log).map_or(0, |dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
    };
    let before = versions();
    let deadline = Instant::now() + Duration::from_secs(3);
    while versions() <= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    kill_hard(daemon);
}

#[test]
fn filelog_sigkill_three_times_while_a_writer_appends_10k_lines_a_second_lands_every_line_exactly_once()
 {
    let shared = tempfile::tempdir().expect("tempdir");
    let logs = shared.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let config = filelog_config("app.log*", PYTHON_OPERATOR)
        .replace("{dir}", &shared.path().display().to_string());
    let ports = Ports::free();
    let seed = std::env::var("OTLAKE_E2E_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let delays = kill_delays(seed);
    eprintln!("OTLAKE_E2E_SEED={seed}: SIGKILL after {delays:?}");
    let mut daemon = start_on(&config, ports);
    // About 5 s of writing at 10k lines a second, rotating every ~500 KB (a handful of files).
    let count: u64 = 50_000;
    let writer = start_writer(&logs.join("app.log"), count as usize, 10_000, 500_000);
    let location = shared.path().join("data");
    for delay in delays {
        std::thread::sleep(delay);
        kill_after_next_commit(&mut daemon, &location.join("otel_logs"));
        daemon = start_on(&config, ports);
    }
    wait_writer(writer, Duration::from_secs(60));
    let landed = wait_for_all(&location, count, Duration::from_secs(60));
    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
    assert_eq!(
        landed.distinct, count,
        "records lost across SIGKILLs: {landed:?}"
    );
    assert_eq!(
        landed.rows, count,
        "records twice after SIGKILLs (OTLAKE_E2E_SEED={seed}): {landed:?}"
    );
}

#[test]
fn filelog_cri_partial_lines_are_joined_with_the_pod_from_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = dir
        .path()
        .join("logs/ml_vllm-0_0123abcd-0000-4000-8000-00000000abcd/server");
    std::fs::create_dir_all(&pod).expect("mkdir");
    let operators = "      - type: container\n";
    let mut daemon = Daemon::start_in(&filelog_config("**/*.log", operators), dir, Ports::any());
    let long = "y".repeat(20_000);
    let text = format!(
        "2024-12-01T10:00:00.000000001Z stdout P first part, \n\
         2024-12-01T10:00:00.000000002Z stderr F an error meanwhile\n\
         2024-12-01T10:00:00.000000003Z stdout P {long}\n\
         2024-12-01T10:00:00.000000004Z stdout F last part\n\
         2024-12-01T10:00:01Z stdout F whole line\n"
    );
    std::fs::write(pod.join("0.log"), text).expect("write");
    let location = daemon.dir.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = if location.join("otel_logs/_delta_log").exists() {
            query(
                &location,
                "SELECT length(body) AS len, left(body, 17) AS head, attributes['log.iostream'] AS stream, \
                 resource.attributes['k8s.pod.name'] AS pod, resource.attributes['k8s.namespace.name'] AS ns, \
                 resource.attributes['k8s.container.name'] AS container FROM otel_logs ORDER BY time_unix_nano",
            )
        } else {
            Vec::new()
        };
        if rows.len() >= 3 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["head"], "first part, yyyyy");
    assert_eq!(
        rows[0]["len"],
        "first part, ".len() + 20_000 + "last part".len()
    );
    assert_eq!(rows[0]["stream"], "stdout");
    assert_eq!(rows[1]["head"], "an error meanwhil");
    assert_eq!(rows[1]["stream"], "stderr");
    assert_eq!(rows[2]["head"], "whole line");
    for row in &rows {
        assert_eq!(row["pod"], "vllm-0");
        assert_eq!(row["ns"], "ml");
        assert_eq!(row["container"], "server");
    }
    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
}
