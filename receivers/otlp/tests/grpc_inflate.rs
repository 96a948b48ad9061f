//! A gzip gRPC message that inflates 1000× cannot take more memory than the budget: the receiver reads the
//! message itself and admits its decompressed size as it inflates, so against an 8 MiB budget (part of it held
//! by a request in flight) bombs are answered `UNAVAILABLE` (with `RetryInfo`) once the budget is spent, and
//! the process's peak RSS grows by far less than the 29 MB one of them would inflate to. (tonic used to inflate
//! the whole message before our codec could admit it.) Their content is never decoded.
//!
//! A test binary of its own: it sets the size of the process-wide budget and measures the process's peak RSS,
//! which no other test may disturb.

#[path = "receiver/support.rs"]
#[allow(dead_code)]
mod support;

use bytes::Bytes;
use otlake_core::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlake_core::test_util::sample_traces;
use otlake_core::{MemoryBudget, Outcome, Signal};
use serde_json::json;
use tonic::Code;
use tonic::codec::CompressionEncoding;

use support::*;

const BUDGET: u64 = 8 << 20;
/// What each bomb inflates to: under `max_request_bytes` (30 MB), so only the budget can refuse it.
const INFLATED: usize = 29_000_000;
const BOMBS: usize = 4;
/// Peak RSS growth allowed: the budget itself (reservations count decoded bytes at 3× the wire size, so the
/// inflated bytes in flight stay well under it), plus per bomb one admission step (1 MiB) of overshoot with
/// vector doubling, plus the connections' buffers. One bomb inflated whole is 29 MB.
const ALLOWED_GROWTH: u64 = BUDGET + (BOMBS as u64) * (2 << 20) + (4 << 20);

/// `field:` of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

// Multi-thread runtime, as in the daemon: the bombs are read and inflated at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_gzip_bomb_is_refused_within_the_memory_budget() {
    let budget = MemoryBudget::global();
    budget.set_limit(BUDGET);
    // A request in flight holds part of the budget, as in a busy daemon (a request alone in the budget may
    // pass it, by design: see `MemoryBudget::try_reserve`).
    let (outputs, mut rx) = held_pipeline(Signal::Traces, 8);
    let receiver = start(
        json!({"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}, "max_request_bytes": "30MB"}),
        outputs,
    )
    .await;
    let addr = receiver.grpc_addr();
    let first = tokio::spawn(async move {
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(addr))
            .send_compressed(CompressionEncoding::Gzip)
            .export(sample_traces(2, 2))
            .await
    });
    let held = bounded("the first request's batch", rx.recv())
        .await
        .expect("batch");
    assert!(budget.used() > 0, "the first request holds its reservation");

    let bomb = Bytes::from(gzip_zeros(INFLATED));
    assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
    // One bomb first, so the code it runs is paged in (a debug binary's text counts in RSS) before measuring.
    let reply = grpc_raw(addr, TRACE_EXPORT, &bomb, Some("gzip")).await;
    assert_eq!(
        reply.grpc_status(),
        Some(Code::Unavailable as i32),
        "{reply:?}"
    );

    // Peak RSS from here on (writing 5 to clear_refs resets VmHWM to the current RSS).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let before = status_bytes("VmRSS:");
    let replies = futures_join(BOMBS, || {
        let bomb = bomb.clone();
        async move { grpc_raw(addr, TRACE_EXPORT, &bomb, Some("gzip")).await }
    })
    .await;
    let growth = status_bytes("VmHWM:").saturating_sub(before);
    eprintln!(
        "peak RSS growth {} KiB for {BOMBS} bombs of {} bytes (allowed {} KiB)",
        growth >> 10,
        bomb.len(),
        ALLOWED_GROWTH >> 10
    );
    for reply in &replies {
        assert_eq!(
            reply.grpc_status(),
            Some(Code::Unavailable as i32),
            "{reply:?}"
        );
        assert!(
            reply
                .grpc_message()
                .is_some_and(|m| m.contains("memory budget")),
            "{reply:?}"
        );
    }
    assert!(
        growth < ALLOWED_GROWTH,
        "peak RSS grew {} MiB for gzip bombs against a {} MiB budget",
        growth >> 20,
        BUDGET >> 20
    );
    assert!(rx.try_recv().is_none(), "no bomb reached the pipeline");

    // The held request is answered, and its reservation released with the verdict.
    held.acks.resolve(Outcome::Delivered);
    bounded("the first request's answer", first)
        .await
        .expect("task")
        .expect("accepted");
    assert_eq!(budget.used(), 0, "every reservation is released");
    receiver.stop().await.expect("clean stop");
}

/// `len` zero bytes, gzip-compressed, written in small pieces: no buffer of `len` bytes is ever allocated, so
/// the process's memory holds nothing a later 29 MB allocation could reuse without growing its RSS.
fn gzip_zeros(len: usize) -> Vec<u8> {
    use std::io::Write;
    let zeros = [0u8; 64 << 10];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        encoder.write_all(&zeros[..n]).expect("write");
        left -= n;
    }
    encoder.finish().expect("finish")
}

/// Runs `count` calls of `call` at once and collects their results.
async fn futures_join<F, Fut>(count: usize, call: F) -> Vec<Fut::Output>
where
    F: Fn() -> Fut,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let tasks: Vec<_> = (0..count).map(|_| tokio::spawn(call())).collect();
    let mut out = Vec::with_capacity(count);
    for task in tasks {
        out.push(bounded("a bomb's answer", task).await.expect("task"));
    }
    out
}
