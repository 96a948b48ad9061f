//! The exporter task: input → split → sending queue → `num_consumers` senders.
//!
//! Lifecycle: `build` keeps the validated configuration; `run` builds the client (reads TLS files, no
//! connection yet: gRPC dials lazily), starts the senders, then reads its input. Each batch is split so one
//! request stays under `max_request_bytes` (each part carries a clone of the batch's acknowledgements) and
//! pushed into the queue; while the queue is full the input is not read, so the bounded channels push back and
//! the receiver answers retryable. When the input closes (shutdown), the queue is closed, the senders deliver
//! what it holds within `max_elapsed_time` from then (see [`crate::sender::DrainDeadline`]) and `run` returns.
//!
//! Guarantee: an acknowledgement resolves `Delivered` only after the destination answered success.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::task::{JoinError, JoinSet};
use tracing::{error, info};

use otlake_core::{Batch, BatchReceiver, ComponentId, Exporter, ExporterContext, Outcome, Signal};

use crate::config::{GrpcExporterConfig, HttpExporterConfig, SenderSettings};
use crate::queue::{MemoryQueue, Request, SendingQueue};
use crate::sender::{DrainDeadline, consume};
use crate::transport::Transport;
use crate::transport::grpc::GrpcTransport;
use crate::transport::http::{HttpTransport, printable};

/// Where the exporter sends.
pub enum Destination {
    Grpc(GrpcExporterConfig),
    Http(HttpExporterConfig),
}

/// Both `otlp` and `otlphttp`: only the transport differs.
pub struct OtlpExporter {
    destination: Destination,
    signals: Vec<Signal>,
    settings: SenderSettings,
}

impl OtlpExporter {
    pub fn new(destination: Destination, signals: &[Signal]) -> Self {
        let settings = match &destination {
            Destination::Grpc(c) => c.sender_settings(),
            Destination::Http(c) => c.sender_settings(),
        };
        OtlpExporter {
            destination,
            signals: signals.to_vec(),
            settings,
        }
    }
}

#[async_trait]
impl Exporter for OtlpExporter {
    async fn run(
        self: Box<Self>,
        input: BatchReceiver,
        cx: ExporterContext,
    ) -> otlake_core::Result<()> {
        let (transport, endpoint): (Arc<dyn Transport>, String) = match &self.destination {
            Destination::Grpc(config) => (
                Arc::new(GrpcTransport::new(config)?),
                config.endpoint.clone(),
            ),
            Destination::Http(config) => (
                Arc::new(HttpTransport::new(config, &self.signals)?),
                config
                    .endpoint
                    .as_deref()
                    .and_then(|e| reqwest::Url::parse(e).ok())
                    .map(|url| printable(&url))
                    .unwrap_or_else(|| "per-signal URLs".into()),
            ),
        };
        info!(exporter = %cx.id, %endpoint, consumers = self.settings.queue.consumers, "Exporter started.");
        let stage = format!("exporter/{}/sending_queue", cx.id);
        let queue: Arc<dyn SendingQueue> = Arc::new(MemoryQueue::new(self.settings.queue, &stage));
        run_pipeline(transport, queue, Arc::new(self.settings), input, cx.id).await;
        Ok(())
    }
}

/// The part of `run` after the client exists; public to the crate so tests can drive any transport.
///
/// The senders are watched while the input is open: one that ends then has panicked (its request's
/// acknowledgements resolved retryable when they dropped). It is logged and replaced, so that the queue never
/// stops draining with every sender gone.
pub async fn run_pipeline(
    transport: Arc<dyn Transport>,
    queue: Arc<dyn SendingQueue>,
    settings: Arc<SenderSettings>,
    mut input: BatchReceiver,
    id: ComponentId,
) {
    let drain = DrainDeadline::default();
    let mut senders = JoinSet::new();
    let spawn_sender = |senders: &mut JoinSet<()>| {
        senders.spawn(consume(
            Arc::clone(&queue),
            Arc::clone(&transport),
            Arc::clone(&settings),
            drain.clone(),
            id.clone(),
        ));
    };
    for _ in 0..settings.queue.consumers.max(1) {
        spawn_sender(&mut senders);
    }
    let replace_sender = |senders: &mut JoinSet<()>, ended: Result<(), JoinError>| {
        let error = match ended {
            Err(e) => e.to_string(),
            Ok(()) => "it returned while the queue was open".to_owned(),
        };
        error!(exporter = %id, %error, "A sender task failed; starting another.");
        spawn_sender(senders);
    };
    loop {
        let batch = tokio::select! {
            batch = input.recv() => batch,
            Some(ended) = senders.join_next() => {
                replace_sender(&mut senders, ended);
                continue;
            }
        };
        let Some(batch) = batch else { break };
        for request in split(batch, settings.max_request_bytes) {
            let push = queue.push(request);
            tokio::pin!(push);
            let pushed = loop {
                tokio::select! {
                    pushed = &mut push => break pushed,
                    Some(ended) = senders.join_next() => replace_sender(&mut senders, ended),
                }
            };
            if let Err(refused) = pushed {
                // Only a closed queue refuses, and only this loop closes it: a bug, made a client retry.
                refused
                    .acks
                    .resolve(Outcome::retryable("the exporter's queue is closed"));
            }
        }
    }
    let budget = settings.drain_budget();
    info!(exporter = %id, budget = ?budget, "Input closed; sending what is queued.");
    drain.start(budget);
    queue.close();
    while let Some(result) = senders.join_next().await {
        if let Err(e) = result {
            // A panicked sender dropped its request's acknowledgements: they resolve retryable.
            error!(exporter = %id, error = %e, "A sender task failed.");
        }
    }
    info!(exporter = %id, "Exporter stopped.");
}

/// One request per part under `max_bytes`; the common case (already small enough) copies nothing.
pub fn split(batch: Batch, max_bytes: usize) -> Vec<Request> {
    let logged = batch.meta.source().is_some();
    if batch.payload.encoded_len() <= max_bytes {
        return vec![Request::new(batch.payload, batch.acks).logged(logged)];
    }
    let (payload, acks, _meta) = batch.into_parts();
    let parts = match payload.split(usize::MAX, max_bytes) {
        Ok(parts) => parts,
        Err(e) => {
            acks.resolve(Outcome::rejected(e.to_string()));
            return Vec::new();
        }
    };
    let mut requests = Vec::with_capacity(parts.len());
    let count = parts.len();
    let mut acks = Some(acks);
    for (i, part) in parts.into_iter().enumerate() {
        // Every part holds the batch's acknowledgements: the client hears `Delivered` only when all arrived.
        let part_acks = if i + 1 == count {
            acks.take().unwrap_or_default()
        } else {
            acks.clone().unwrap_or_default()
        };
        requests.push(Request::new(Arc::new(part), part_acks).logged(logged));
    }
    requests
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_trait::async_trait;
    use bytes::Bytes;
    use otlake_core::Payload;
    use otlake_core::batch::channel;
    use otlake_core::test_util::{batch_with_ack, sample_traces};

    use super::*;
    use crate::config::QueueConfig;
    use crate::transport::{Accepted, SendError};

    /// Panics on its first send (the narrowest seam that kills a sender), then accepts everything.
    #[derive(Default)]
    struct PanicsOnce(AtomicUsize);

    #[async_trait]
    impl Transport for PanicsOnce {
        fn encode(&self, _payload: &Payload) -> Result<Bytes, SendError> {
            Ok(Bytes::new())
        }

        async fn send(&self, _signal: Signal, _body: &Bytes) -> Result<Accepted, SendError> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a sender dies");
            }
            Ok(Accepted::default())
        }
    }

    #[tokio::test]
    async fn a_sender_that_dies_is_replaced_and_the_queue_keeps_draining() {
        let settings = SenderSettings {
            retry: Default::default(),
            queue: QueueConfig {
                num_consumers: 1,
                ..QueueConfig::default()
            }
            .limits(),
            max_request_bytes: usize::MAX,
            timeout: None,
        };
        let queue: Arc<dyn SendingQueue> = Arc::new(MemoryQueue::new(settings.queue, "test"));
        let (input, rx) = channel("otlp-test", 2);
        let task = tokio::spawn(run_pipeline(
            Arc::new(PanicsOnce::default()),
            queue,
            Arc::new(settings),
            rx,
            ComponentId::new("otlp"),
        ));
        let wait = Duration::from_secs(20);
        let (batch, first) = batch_with_ack(sample_traces(1, 1));
        input.send(batch).await.expect("running");
        let first = tokio::time::timeout(wait, first.wait())
            .await
            .expect("resolves");
        assert!(
            matches!(first.outcome, Outcome::Retryable { .. }),
            "{first:?}"
        );
        let (batch, second) = batch_with_ack(sample_traces(1, 1));
        input.send(batch).await.expect("running");
        let second = tokio::time::timeout(wait, second.wait())
            .await
            .expect("a sender is there to send it");
        assert_eq!(second.outcome, Outcome::Delivered);
        drop(input);
        tokio::time::timeout(wait, task)
            .await
            .expect("stops")
            .expect("no panic");
    }
}
