//! One pipeline's task: owns its processors and their timers, feeds each batch through them in order and
//! hands the results to every exporter.
//!
//! It ends in one of two ways:
//! - its input closes (every receiver feeding it is gone: shutdown): it flushes its processors and returns;
//! - a reload hands it over (`handover` fires): it stops reading, flushes its processors, delivers what they
//!   released to its exporters, and returns its input, still open, with whatever is queued in it, to the
//!   pipeline that replaces it. Receivers keep sending into the same channel meanwhile.

use std::collections::BTreeSet;
use std::sync::Arc;

use otlake_core::batch::{BatchReceiver, BatchSender};
use otlake_core::{Batch, Fanout, Outcome, Processor};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Runs the pipeline until its input closes (`None`) or `handover` fires (`Some(input)`).
pub(crate) async fn run_pipeline(
    mut processors: Vec<Box<dyn Processor>>,
    mut input: BatchReceiver,
    outputs: Vec<BatchSender>,
    shutdown: CancellationToken,
    handover: CancellationToken,
) -> Option<BatchReceiver> {
    let outputs = Fanout::blocking(outputs);
    let watch_idle = processors.iter().any(|p| p.wants_idle());
    let mut flushed_at_shutdown = false;
    let read_keys: BTreeSet<String> = processors
        .iter()
        .flat_map(|p| p.metadata_keys().iter().cloned())
        .collect();
    loop {
        let deadline = processors.iter().filter_map(|p| p.next_deadline()).min();
        let produced = tokio::select! {
            // Checked first: a pipeline being replaced takes nothing more from its input.
            biased;
            () = handover.cancelled() => {
                deliver(flush(&mut processors), &outputs).await;
                return Some(input);
            }
            received = input.recv() => match received {
                Some(mut batch) => {
                    keep_read_metadata(&mut batch, &read_keys);
                    push_through(&mut processors, 0, vec![batch])
                }
                None => break,
            },
            _ = sleep_until(deadline) => tick(&mut processors, Instant::now()),
            // The receivers stop accepting now, but they return only once their in-flight requests are
            // answered, and data held here (a tail-sampling trace, a batch) answers them only when released:
            // release it now rather than at a timer or the grace deadline. Later input runs as usual.
            () = shutdown.cancelled(), if !flushed_at_shutdown => {
                flushed_at_shutdown = true;
                flush(&mut processors)
            }
        };
        deliver(produced, &outputs).await;
        if watch_idle && input.is_empty() {
            // A sender woken together with this task may not have run yet (tokio runs the task a send wakes
            // first): step aside once so that requests arriving in the same instant are batched together.
            tokio::task::yield_now().await;
            if input.is_empty() {
                deliver(idle(&mut processors), &outputs).await;
            }
        }
    }
    // Input closed: flush what is still held.
    deliver(flush(&mut processors), &outputs).await;
    None
}

/// Flushes each processor in order, pushing what it releases through the ones after it.
fn flush(processors: &mut [Box<dyn Processor>]) -> Vec<Batch> {
    let mut produced = Vec::new();
    for i in 0..processors.len() {
        let mut released = Vec::new();
        processors[i].flush(&mut released);
        produced.extend(push_through(processors, i + 1, released));
    }
    produced
}

/// Drops the client metadata no processor of the pipeline reads (see `Processor::metadata_keys`): what a
/// receiver copied with `include_metadata` goes no further than it is used, and never into a write-ahead log.
fn keep_read_metadata(batch: &mut Batch, read_keys: &BTreeSet<String>) {
    if batch.meta.metadata.keys().all(|k| read_keys.contains(k)) {
        return;
    }
    Arc::make_mut(&mut batch.meta)
        .metadata
        .retain(|k, _| read_keys.contains(k));
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Runs `batches` through `processors[start..]`.
fn push_through(
    processors: &mut [Box<dyn Processor>],
    start: usize,
    mut batches: Vec<Batch>,
) -> Vec<Batch> {
    for processor in processors.iter_mut().skip(start) {
        let mut next = Vec::with_capacity(batches.len());
        for batch in batches {
            processor.process(batch, &mut next);
        }
        batches = next;
    }
    batches
}

/// Gives every processor whose deadline passed its tick, in order.
fn tick(processors: &mut [Box<dyn Processor>], now: Instant) -> Vec<Batch> {
    let mut produced = Vec::new();
    for i in 0..processors.len() {
        if processors[i].next_deadline().is_some_and(|d| d <= now) {
            let mut released = Vec::new();
            processors[i].on_tick(now, &mut released);
            produced.extend(push_through(processors, i + 1, released));
        }
    }
    produced
}

/// Gives every processor that watches for it the news that the input has run dry, in order.
fn idle(processors: &mut [Box<dyn Processor>]) -> Vec<Batch> {
    let mut produced = Vec::new();
    for i in 0..processors.len() {
        if processors[i].wants_idle() {
            let mut released = Vec::new();
            processors[i].on_idle(&mut released);
            produced.extend(push_through(processors, i + 1, released));
        }
    }
    produced
}

/// Hands each batch to every exporter (sharing the payload), waiting for room: backpressure.
async fn deliver(batches: Vec<Batch>, outputs: &Fanout) {
    for batch in batches {
        if batch.payload.item_count() == 0 {
            // Nothing to store (an empty request, or everything dropped on purpose upstream).
            batch.acks.resolve(Outcome::Delivered);
            continue;
        }
        // An exporter that is gone (it failed) answers its share retryable.
        outputs.send(batch).await;
    }
}
