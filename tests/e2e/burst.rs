//! A burst far above what the daemon can make durable, against a 32 MiB memory budget: the daemon does not
//! crash, its peak RSS stays under the budget plus a stated margin, requests it cannot hold are answered 503 with
//! `Retry-After` (without being decoded), and every request answered 200 is in the output.
//!
//! The slow path: a batch processor that holds each request up to 2 s before the file exporter writes it, so
//! the sustainable rate is about budget / (EXPANSION × 2 s) ≈ 32 MiB / 6 ≈ 5.6 MB/s (≈ 80 requests/s of
//! 70 KB). 16 threads keep 24 requests each in flight for 10 s and refill a slot the moment it is answered, so
//! refused slots come back at once: the offered rate is many times the sustainable one.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::test_util::sample_traces;
use prost::Message;

use crate::support::{Daemon, OTLP_IN, TELEMETRY};

const THREADS: usize = 16;
const IN_FLIGHT_PER_THREAD: usize = 24;
const SPANS_PER_REQUEST: usize = 200;
const BURST: Duration = Duration::from_secs(10);
const BUDGET: u64 = 32 << 20;
/// Peak RSS allowed above the budget. Measured (debug build, 2-core machine, 2026-11-22, after the daemon stopped
/// using transparent huge pages and returns freed memory after a burst): idle RSS 38 MiB, peak 126-138 MiB over
/// four runs (before: idle 44, peak 148-154). What the budget does not count: the daemon's own footprint (38 MiB
/// idle), hyper's per-connection read buffers (130-190 KiB per open connection, measured on the release build with a
/// budget that refuses everything: +51 MB at 384 connections), the file exporter's JSON encoding of each 4 MiB
/// batch, and allocator slack. The decoded requests themselves stay within the reservation (2.4× their wire
/// size against the 3× reserved: collector/bin/tests/decoded_size.rs). The margin is the highest measured peak
/// minus the budget plus 20 MiB of headroom.
const MARGIN: u64 = 126 << 20;

fn config() -> String {
    format!(
        "{OTLP_IN}processors:\n  batch:\n    timeout: 2s\n    send_batch_size: 1000000\n    send_batch_max_bytes: 4MiB\nexporters:\n  file:\n    path: {{dir}}/out.jsonl\nservice:\n  memory_limit: 32MiB\n  pipelines:\n    traces: {{receivers: [otlp], processors: [batch], exporters: [file]}}\n{TELEMETRY}"
    )
}

/// A ~70 KB trace request whose span names are `b<thread>-<seq>-<i>`.
fn request(thread: usize, seq: usize) -> Vec<u8> {
    let mut request = sample_traces(1, SPANS_PER_REQUEST);
    let padding = "x".repeat(230);
    for (i, span) in request.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .enumerate()
    {
        span.name = format!("b{thread}-{seq}-{i}");
        span.attributes.push(KeyValue {
            key: "padding".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(padding.clone())),
            }),
            ..Default::default()
        });
    }
    request.encode_to_vec()
}

fn open(port: u16, body: &[u8]) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// How the burst went, from the clients' side.
#[derive(Default)]
struct Tally {
    /// `(thread, seq)` of every request answered 200.
    accepted: Vec<(usize, usize)>,
    refused_503: usize,
    /// Anything else: a status other than 200/503, a 503 without `Retry-After`, a connection error.
    unexpected: Vec<String>,
}

/// One client thread: keeps `IN_FLIGHT_PER_THREAD` requests open and refills each slot as soon as it is answered.
fn blast(thread: usize, port: u16, until: Instant, tally: &Mutex<Tally>) {
    let mut seq = 0;
    let mut slots: Vec<Option<(usize, TcpStream, Vec<u8>)>> = Vec::new();
    let next = |seq: &mut usize| {
        *seq += 1;
        let body = request(thread, *seq);
        open(port, &body).map(|s| (*seq, s, Vec::new()))
    };
    for _ in 0..IN_FLIGHT_PER_THREAD {
        match next(&mut seq) {
            Ok(slot) => slots.push(Some(slot)),
            Err(e) => tally
                .lock()
                .expect("lock")
                .unexpected
                .push(format!("connect: {e}")),
        }
    }
    let answer_deadline = until + Duration::from_secs(30);
    let mut buf = [0u8; 16 << 10];
    while slots.iter().any(Option::is_some) && Instant::now() < answer_deadline {
        let mut idle = true;
        for slot in slots.iter_mut() {
            let Some((id, stream, raw)) = slot else {
                continue;
            };
            match stream.read(&mut buf) {
                Ok(0) => {
                    idle = false;
                    record(thread, *id, raw, tally);
                    *slot = None;
                    if Instant::now() < until {
                        match next(&mut seq) {
                            Ok(fresh) => *slot = Some(fresh),
                            Err(e) => tally
                                .lock()
                                .expect("lock")
                                .unexpected
                                .push(format!("connect: {e}")),
                        }
                    }
                }
                Ok(n) => {
                    idle = false;
                    raw.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    tally
                        .lock()
                        .expect("lock")
                        .unexpected
                        .push(format!("request b{thread}-{id}: {e}"));
                    *slot = None;
                }
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let left = slots.iter().filter(|s| s.is_some()).count();
    if left > 0 {
        tally
            .lock()
            .expect("lock")
            .unexpected
            .push(format!("{left} requests unanswered 30 s after the burst"));
    }
}

fn record(thread: usize, id: usize, raw: &[u8], tally: &Mutex<Tally>) {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let status = head.split_whitespace().nth(1).unwrap_or("");
    let retry_after = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("retry-after:"));
    let mut tally = tally.lock().expect("lock");
    match status {
        "200" => tally.accepted.push((thread, id)),
        "503" if retry_after => tally.refused_503 += 1,
        _ => tally.unexpected.push(format!(
            "request b{thread}-{id}: {}",
            head.replace("\r\n", " | ")
        )),
    }
}

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Every `"name":"b…"` value in the file exporter's output.
fn span_names(text: &str) -> HashSet<&str> {
    let key = "\"name\":\"b";
    let mut names = HashSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(key) {
        let start = at + key.len() - 1;
        let end = rest[start..].find('"').map_or(rest.len(), |e| start + e);
        names.insert(&rest[start..end]);
        rest = &rest[end..];
    }
    names
}

#[test]
fn a_burst_over_the_memory_budget_is_refused_retryable_and_rss_stays_bounded() {
    let mut daemon = Daemon::start(&config());
    let pid = daemon.pid();
    let port = daemon.ports.http;
    let size = request(0, 0).len();
    assert!((60_000..100_000).contains(&size), "request size {size}");
    let idle_rss = status_field(pid, "VmRSS:");

    let tally = Arc::new(Mutex::new(Tally::default()));
    let until = Instant::now() + BURST;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let tally = Arc::clone(&tally);
            std::thread::spawn(move || blast(t, port, until, &tally))
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
    let peak = status_field(pid, "VmHWM:");
    assert!(
        daemon
            .child
            .as_mut()
            .expect("running")
            .try_wait()
            .expect("wait")
            .is_none(),
        "the daemon died in the burst:\n{}",
        daemon.stderr()
    );
    let tally = std::mem::take(&mut *tally.lock().expect("lock"));
    eprintln!(
        "burst: {} accepted, {} refused 503, request {size} B, idle RSS {} MiB, peak RSS {} MiB (budget 32 MiB + margin {} MiB)",
        tally.accepted.len(),
        tally.refused_503,
        idle_rss >> 20,
        peak >> 20,
        MARGIN >> 20
    );
    assert!(
        tally.unexpected.is_empty(),
        "{} unexpected answers, first: {:?}",
        tally.unexpected.len(),
        &tally.unexpected[..tally.unexpected.len().min(5)]
    );
    assert!(tally.refused_503 > 0, "the burst never reached the budget");
    assert!(!tally.accepted.is_empty(), "nothing was accepted");
    assert!(
        peak < BUDGET + MARGIN,
        "peak RSS {} MiB over budget + margin",
        peak >> 20
    );

    assert!(daemon.terminate(), "clean exit:\n{}", daemon.stderr());
    let text = std::fs::read_to_string(daemon.dir.path().join("out.jsonl")).expect("output");
    let names = span_names(&text);
    let missing: Vec<_> = tally
        .accepted
        .iter()
        .flat_map(|(t, s)| (0..SPANS_PER_REQUEST).map(move |i| format!("b{t}-{s}-{i}")))
        .filter(|name| !names.contains(name.as_str()))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "spans of requests answered 200 are missing, e.g. {missing:?}"
    );
}
