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
use tokio::task::JoinSet;
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
pub async fn run_pipeline(
    transport: Arc<dyn Transport>,
    queue: Arc<dyn SendingQueue>,
    settings: Arc<SenderSettings>,
    mut input: BatchReceiver,
    id: ComponentId,
) {
    let drain = DrainDeadline::default();
    let mut senders = JoinSet::new();
    for _ in 0..settings.queue.consumers.max(1) {
        senders.spawn(consume(
            Arc::clone(&queue),
            Arc::clone(&transport),
            Arc::clone(&settings),
            drain.clone(),
            id.clone(),
        ));
    }
    while let Some(batch) = input.recv().await {
        for request in split(batch, settings.max_request_bytes) {
            if let Err(refused) = queue.push(request).await {
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
    let logged = batch.meta.wal_sequence().is_some();
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
