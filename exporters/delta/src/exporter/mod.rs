//! The `delta` exporter: routes each signal to its table and acknowledges a batch only once the Delta commit
//! that adds its rows has succeeded.
//!
//! Lifecycle of `run`:
//! 1. start a small dedicated tokio runtime (the writer pool, `writer_threads` threads). Conversion to Arrow,
//!    Parquet encoding and every Delta I/O run there, so the receivers' reactor keeps answering clients while a
//!    file is written;
//! 2. open (or create) one table per signal of the pipelines feeding this exporter; any failure, such as an
//!    existing table with another schema, stops start-up with the table and column named;
//! 3. hand each batch to its table's task over a bounded channel (backpressure flows to the pipeline);
//! 4. each table task buffers a commit window and commits when it holds `max_rows` rows or `max_bytes` bytes
//!    (OTLP-encoded size) or its oldest row is `max_latency` old. A commit resolves the window's
//!    acknowledgements `Delivered`; any failure before it resolves them `Retryable` and leaves the table
//!    without any of the window's rows;
//! 5. when the input closes, every table commits what it holds, then the writer pool is shut down.

use std::collections::HashMap;

use async_trait::async_trait;
use otlake_core::{
    Batch, BatchReceiver, BoxError, ComponentError, ComponentId, Exporter, ExporterContext,
    Outcome, Signal,
};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::config::{DeltaExporterConfig, TableKind};
use crate::error::DeltaError;
use crate::location::{Location, default_writer_id};
use crate::sink::{SinkOptions, TableSink, TableSpec};
use crate::table::redact;

mod compaction;
mod pool;
mod table_task;
#[cfg(test)]
mod tests;

use compaction::compaction_loop;
use pool::WriterPool;
use table_task::{Limits, table_task};

/// Batches that may wait in front of one table task. Each is held decoded (a full batch of 8192 GenAI spans
/// is ~20 MB), and one waiting batch is enough to keep the table task busy: beyond that a queue only adds
/// memory at saturation (16 queued batches took the saturated delta scenario to 210 MB), so backpressure
/// reaches the pipeline early instead.
const TABLE_QUEUE: usize = 2;
/// How long a write-ahead log waits before offering again an entry of a signal this exporter has no table for.
const NO_TABLE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// The exporter built by [`DeltaExporterFactory`](crate::DeltaExporterFactory).
pub struct DeltaExporter {
    config: DeltaExporterConfig,
    signals: Vec<Signal>,
}

impl DeltaExporter {
    pub fn new(config: DeltaExporterConfig, signals: &[Signal]) -> Self {
        let mut signals = signals.to_vec();
        signals.sort();
        signals.dedup();
        DeltaExporter { config, signals }
    }
}

/// Builds the spec of every table this exporter writes.
fn table_specs(
    config: &DeltaExporterConfig,
    signals: &[Signal],
    exporter: &ComponentId,
) -> Result<Vec<TableSpec>, DeltaError> {
    let location = Location::parse(&config.location).map_err(|message| DeltaError::Location {
        location: config.location.clone(),
        message,
    })?;
    location.prepare()?;
    let storage_options: HashMap<String, String> = config
        .storage_options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    signals
        .iter()
        .map(|&signal| {
            let kind = TableKind::for_signal(signal);
            let name = config.table_name(kind);
            let url = location.table_url(&name)?;
            let app_id = match &config.writer_id {
                Some(id) => id.clone(),
                None => default_writer_id(&url, &exporter.to_string()),
            };
            Ok(TableSpec {
                name,
                url,
                kind,
                version: config.schema_version,
                storage_options: storage_options.clone(),
                app_id,
                options: SinkOptions {
                    compression_level: config.compression_level,
                    row_group_size: config.row_group_size,
                    severity_number_format: config.severity_number_format,
                },
            })
        })
        .collect()
}

#[async_trait]
impl Exporter for DeltaExporter {
    async fn run(
        self: Box<Self>,
        mut input: BatchReceiver,
        cx: ExporterContext,
    ) -> otlake_core::Result<()> {
        let context = format!("exporter {}", cx.id);
        let startup = |e: BoxError| ComponentError::startup(context.clone(), e);
        let specs =
            table_specs(&self.config, &self.signals, &cx.id).map_err(|e| startup(e.into()))?;
        let pool = WriterPool::start(self.config.writer_threads).map_err(|e| startup(e.into()))?;
        let limits = Limits {
            max_rows: usize::try_from(self.config.max_rows).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(self.config.max_bytes).unwrap_or(usize::MAX),
            max_latency: self.config.max_latency,
        };

        // Open every table before taking data, so a bad table stops start-up instead of failing every batch.
        let opened = pool
            .spawn(async move {
                let mut sinks = Vec::new();
                for spec in specs {
                    sinks.push(TableSink::open(spec).await?);
                }
                Ok::<_, DeltaError>(sinks)
            })
            .await;
        let sinks = match opened {
            Ok(Ok(sinks)) => sinks,
            Ok(Err(e)) => return Err(startup(e.into())),
            Err(e) => return Err(startup(e.into())),
        };

        let mut routes: HashMap<Signal, mpsc::Sender<Batch>> = HashMap::new();
        let mut tasks = Vec::new();
        for sink in sinks {
            let (tx, rx) = mpsc::channel(TABLE_QUEUE);
            let signal = TableKind::for_signal(sink.spec_kind().signal()).signal();
            info!(exporter = %cx.id, table = sink.name(), url = %redact(sink.url()),
                committed = ?sink.committed_sequence(), "Writing Delta table.");
            if let Some(schedule) = &self.config.compaction {
                pool.spawn(compaction_loop(
                    cx.id.clone(),
                    sink.name().to_owned(),
                    sink.url().clone(),
                    sink.storage_options().clone(),
                    schedule.clone(),
                ));
            }
            routes.insert(signal, tx);
            tasks.push(pool.spawn(table_task(sink, rx, limits, cx.id.clone(), signal)));
        }

        while let Some(batch) = input.recv().await {
            let signal = batch.signal();
            match routes.get(&signal) {
                Some(tx) => {
                    if let Err(mpsc::error::SendError(batch)) = tx.send(batch).await {
                        // The table task is gone (it only ends on shutdown): the client retries.
                        batch
                            .acks
                            .resolve(Outcome::retryable("delta table writer stopped"));
                    }
                }
                None => {
                    let reason = format!("exporter {} has no table for {signal}", cx.id);
                    if batch.meta.wal_sequence().is_some() {
                        // A write-ahead log written while a pipeline of this signal existed: the configuration
                        // refuses it, not the data, so the log keeps it for a configuration that writes it.
                        warn!(exporter = %cx.id, %signal,
                            "No table for this signal; the write-ahead log keeps the entry (add the signal's pipeline back, or delete the log to give it up).");
                        batch.acks.resolve(Outcome::Retryable {
                            reason: format!("{reason} in this configuration"),
                            retry_after: Some(NO_TABLE_RETRY_AFTER),
                        });
                    } else {
                        warn!(exporter = %cx.id, %signal, "No table for this signal; refusing the batch.");
                        batch.acks.resolve(Outcome::rejected(reason));
                    }
                }
            }
        }
        drop(routes);
        for task in tasks {
            if let Err(e) = task.await {
                error!(exporter = %cx.id, error = %e, "A Delta table task failed.");
            }
        }
        drop(pool);
        debug!(exporter = %cx.id, "Delta exporter stopped.");
        Ok(())
    }
}
