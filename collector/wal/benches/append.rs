//! Throughput of the log stage with a destination that answers at once: `concurrency` clients each send a
//! request of `spans` spans and wait for the answer (the log's fsync), for a few seconds, with fsync on and off.
//!
//! `cargo bench -p otlake-wal --bench append` (the log goes to $TMPDIR; say which file system that is).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use otlake_core::batch::channel;
use otlake_core::test_util::{batch_with_ack, sample_traces};
use otlake_core::{Outcome, Payload};
use otlake_wal::{WalConfig, WalStage};

const SECONDS: u64 = 4;

async fn measure(concurrency: usize, spans: usize, fsync: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = WalConfig {
        directory: dir.path().to_path_buf(),
        fsync,
        ..WalConfig::default()
    };
    let (input, input_rx) = channel("wal/bench", 1024);
    let (output_tx, mut output) = channel("exporter/bench", WalStage::output_capacity());
    let stage =
        tokio::spawn(WalStage::new("delta".parse().expect("id"), &config).run(input_rx, output_tx));
    let destination = tokio::spawn(async move {
        while let Some(batch) = output.recv().await {
            batch.acks.resolve(Outcome::Delivered);
        }
    });
    let payload = Payload::from(sample_traces(1, spans));
    let bytes = payload.encoded_len() as u64;
    let answered = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let input = input.clone();
            let payload = payload.clone();
            let answered = Arc::clone(&answered);
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (batch, ack) = batch_with_ack(payload.clone());
                    if input.send(batch).await.is_err() {
                        return;
                    }
                    if ack.wait().await.outcome == Outcome::Delivered {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client");
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(input);
    stage.await.expect("stage").expect("clean");
    destination.await.expect("destination");
    let n = answered.load(Ordering::Relaxed) as f64;
    println!(
        "fsync={fsync:<5} clients={concurrency:<3} spans/request={spans:<4} {:>8.0} requests/s {:>9.0} spans/s {:>7.1} MB/s logged",
        n / elapsed,
        n * spans as f64 / elapsed,
        n * bytes as f64 / elapsed / 1e6
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for fsync in [true, false] {
            for (concurrency, spans) in [(1, 100), (64, 100), (64, 1000)] {
                measure(concurrency, spans, fsync).await;
            }
        }
    });
}
