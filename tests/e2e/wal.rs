//! The write-ahead log against the file system: a full disk answers clients retryable while the daemon keeps
//! running and takes data again once space returns; a damaged log tail is reported at start-up and the entries
//! before it are delivered.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use prost::Message;

use crate::crash::{
    downstream_config, forwarded_ids, id_hex, ids_in, kill_hard, logs, start_on, traces,
    wal_section,
};
use crate::delta::delta_config;
use crate::support::{OTLP_IN, Ports, TELEMETRY, http_request};

/// A 2 MiB tmpfs (or, where tmpfs cannot be mounted, a 2 MiB ext4 loop file), unmounted on drop.
struct SmallDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).expect("mount point");
        let tmpfs = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&mount)
            .status()
            .is_ok_and(|s| s.success());
        if !tmpfs {
            let image = dir.path().join("disk.img");
            let made = std::fs::File::create(&image).and_then(|f| f.set_len(2 << 20));
            let formatted = made.is_ok()
                && Command::new("mkfs.ext4")
                    .args(["-q", "-F"])
                    .arg(&image)
                    .status()
                    .is_ok_and(|s| s.success());
            let looped = formatted
                && Command::new("mount")
                    .args(["-o", "loop"])
                    .arg(&image)
                    .arg(&mount)
                    .status()
                    .is_ok_and(|s| s.success());
            assert!(
                looped,
                "this test needs root to mount a 2 MiB tmpfs or loop file system"
            );
        }
        SmallDisk { mount, _dir: dir }
    }

    /// Fills the file system up with `filler` until the kernel says it is full.
    fn fill(&self) -> PathBuf {
        let filler = self.mount.join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0xAAu8; 16 << 10];
        while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

fn post_traces(port: u16, first: u64) -> crate::support::Response {
    http_request(
        "POST",
        port,
        "/v1/traces",
        &[("Content-Type", "application/x-protobuf")],
        &traces(first).encode_to_vec(),
    )
    .expect("an answer")
}

#[test]
fn a_full_disk_answers_retryable_keeps_running_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount();
    let shared = tempfile::tempdir().expect("tempdir");
    let config = delta_config(&wal_section(&disk.mount.join("wal")))
        .replace("{dir}", &shared.path().display().to_string());
    let ports = Ports::free();
    let mut daemon = start_on(&config, ports);
    assert_eq!(
        post_traces(ports.http, 1).status,
        200,
        "{}",
        daemon.stderr()
    );

    let filler = disk.fill();
    // A request whose data cannot be logged is answered retryable; try a few (one may still fit).
    let mut refused = None;
    for n in 0..20u64 {
        let answer = post_traces(ports.http, 1_000 + n * 10);
        if answer.status != 200 {
            refused = Some(answer);
            break;
        }
    }
    let refused = refused.expect("a full disk refuses data");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        refused.header("Retry-After").is_some(),
        "{:?}",
        refused.headers
    );
    assert!(
        refused.text().contains("write-ahead log"),
        "the reason names the log: {}",
        refused.text()
    );
    let health = http_request("GET", ports.health, "/", &[], b"").expect("health answers");
    assert_eq!(health.status, 200, "still running");
    assert!(
        daemon
            .child
            .as_mut()
            .expect("child")
            .try_wait()
            .expect("wait")
            .is_none(),
        "still running"
    );

    std::fs::remove_file(&filler).expect("space returns");
    let deadline = Instant::now() + Duration::from_secs(30);
    let accepted = loop {
        let first = 100_000;
        if post_traces(ports.http, first).status == 200 {
            break first;
        }
        assert!(
            Instant::now() < deadline,
            "never took data again:\n{}",
            daemon.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = daemon.stderr();
    assert!(stderr.contains("cannot take data"), "{stderr}");
    assert!(stderr.contains("takes data again"), "{stderr}");
    // Everything acknowledged lands: the first request and the one after the disk had room again.
    let wanted = [id_hex(1), id_hex(accepted)];
    let location = shared.path().join("data");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let spans = ids_in(&location, "otel_spans");
        if wanted.iter().all(|id| spans.contains_key(id)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged spans missing: {spans:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
}

/// The newest segment file of the log in `dir`.
fn newest_segment(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("log directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 8))
        .collect();
    segments.sort();
    segments.pop().expect("a segment with records")
}

#[test]
fn a_torn_log_tail_is_reported_at_startup_and_the_entries_before_it_delivered() {
    let wal_dir = tempfile::tempdir().expect("tempdir");
    let out_dir = tempfile::tempdir().expect("tempdir");
    // The downstream is down at first, so the acknowledged requests wait in the log.
    let gw_ports = Ports::free();
    let sidecar_config = format!(
        "{OTLP_IN}exporters:\n  otlphttp/gateway:\n    endpoint: http://127.0.0.1:{}\n    retry_on_failure:\n      initial_interval: 200ms\n      max_interval: 500ms\n      max_elapsed_time: 1s\n{}service:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [otlphttp/gateway]}}\n    logs: {{receivers: [otlp], exporters: [otlphttp/gateway]}}\n{TELEMETRY}",
        gw_ports.http,
        wal_section(wal_dir.path())
    );
    let sc_ports = Ports::free();
    let mut sidecar = start_on(&sidecar_config, sc_ports);
    let mut acked = Vec::new();
    for n in 0..5u64 {
        let first = 1 + n * 10;
        assert_eq!(post_traces(sc_ports.http, first).status, 200);
        let logged = http_request(
            "POST",
            sc_ports.http,
            "/v1/logs",
            &[("Content-Type", "application/x-protobuf")],
            &logs(first).encode_to_vec(),
        )
        .expect("answer");
        assert_eq!(logged.status, 200);
        acked.extend((first..first + 10).map(id_hex));
    }
    kill_hard(&mut sidecar);

    // Power loss in the middle of an append: half a record at the end of the newest segment.
    let log_dir = wal_dir.path().join("otlphttp_gateway");
    let segment = newest_segment(&log_dir);
    let mut torn = vec![0u8; 16];
    torn[..4].copy_from_slice(&4096u32.to_le_bytes());
    torn.extend_from_slice(&[0x5A; 100]);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("segment");
    std::io::Write::write_all(&mut file, &torn).expect("tear");
    drop(file);

    let mut gateway = start_on(&downstream_config(out_dir.path()), gw_ports);
    let mut sidecar = start_on(&sidecar_config, sc_ports);
    let out = out_dir.path().join("out.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (spans, logs) = forwarded_ids(&out);
        let missing = acked
            .iter()
            .filter(|id| !spans.contains_key(*id) || !logs.contains_key(*id))
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged items never arrived:\n{}",
            sidecar.stderr()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let stderr = sidecar.stderr();
    assert!(stderr.contains("damaged tail"), "{stderr}");
    assert!(
        stderr.contains(
            &segment
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string()
        ),
        "the report names the segment: {stderr}"
    );
    // The log goes on working after the repair.
    assert_eq!(post_traces(sc_ports.http, 9_000).status, 200);
    assert!(sidecar.terminate(), "clean exit:\n{}", sidecar.stderr());
    assert!(gateway.terminate());
}

/// Every byte of every file under `dir`.
fn bytes_under(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(bytes_under(&path));
        } else {
            all.extend(std::fs::read(&path).expect("read file"));
        }
    }
    all
}

#[test]
fn include_metadata_writes_only_the_keys_a_processor_reads_and_never_credentials_to_the_wal() {
    // An unreachable destination: entries stay in the log, acknowledged once fsynced.
    let dead = crate::support::free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = dir.path().join("wal");
    let config = format!(
        "{OTLP_IN}        include_metadata: true\nprocessors:\n  batch:\n    timeout: 10ms\n    metadata_keys: [X-Tenant, Authorization]\nexporters:\n  otlphttp:\n    endpoint: http://127.0.0.1:{dead}\n{}service:\n  pipelines:\n    traces/batched: {{receivers: [otlp], processors: [batch], exporters: [otlphttp]}}\n    traces/plain: {{receivers: [otlp], exporters: [otlphttp]}}\n{TELEMETRY}",
        wal_section(&wal)
    );
    let d = crate::support::Daemon::start_in(&config, dir, Ports::free());
    let body = otlake_core::test_util::sample_traces(1, 2).encode_to_vec();
    let headers = [
        ("Content-Type", "application/x-protobuf"),
        ("X-Tenant", "tenant-a"),
        ("Authorization", "Bearer SECRET-authorization"),
        ("Proxy-Authorization", "Basic SECRET-proxy"),
        ("Cookie", "session=SECRET-cookie"),
        ("X-Api-Key", "SECRET-api-key"),
        ("X-Unused", "SECRET-unused"),
    ];
    let r = http_request("POST", d.ports.http, "/v1/traces", &headers, &body).expect("answer");
    assert_eq!(r.status, 200, "acknowledged once in the log: {}", r.text());
    let on_disk = bytes_under(&wal);
    let text = String::from_utf8_lossy(&on_disk);
    assert!(
        text.contains("tenant-a"),
        "the batch processor's metadata key is kept"
    );
    assert!(
        !text.contains("SECRET"),
        "credentials or unused headers in the log: {:?}",
        text.match_indices("SECRET")
            .map(|(i, _)| text.get(i.saturating_sub(30)..i + 30).unwrap_or("?"))
            .collect::<Vec<_>>()
    );
}
