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
//!
//! Supervision: a table task only ends when its input closes. One that ends before (a panic: a bug, or data
//! no check foresaw) has dropped its window, whose clients hear retryable; the exporter logs it and starts
//! the table again from a fresh open, so the table does not stay dead until a restart. A table that fails
//! more than [`MAX_RESTARTS`] times within [`RESTART_WINDOW`], or cannot be opened again, fails the exporter:
//! the daemon's health turns 503 and it stops, for its supervisor to see.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use otlake_core::{
    Batch, BatchReceiver, BoxError, ComponentError, ComponentId, Exporter, ExporterContext,
    Outcome, Signal,
};
use tokio::sync::mpsc;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::config::DeltaExporterConfig;
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
/// How many times one table's task may fail within [`RESTART_WINDOW`] before the exporter gives up.
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(600);
/// How long a write-ahead log waits before offering again an entry of a signal this exporter has no table for.
const NO_TABLE_RETRY_AFTER: Duration = Duration::from_secs(30);

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
            let name = config.table_name(signal);
            let url = location.table_url(&name)?;
            let app_id = match &config.writer_id {
                Some(id) => id.clone(),
                None => default_writer_id(&url, &exporter.to_string()),
            };
            Ok(TableSpec {
                name,
                url,
                signal,
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

        let specs_by_signal: HashMap<Signal, TableSpec> = specs
            .iter()
            .map(|spec| (spec.signal, spec.clone()))
            .collect();
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

        let mut tables = Tables {
            routes: HashMap::new(),
            running: HashMap::new(),
            specs: specs_by_signal,
            failures: HashMap::new(),
            tasks: JoinSet::new(),
            limits,
            exporter: cx.id.clone(),
        };
        for sink in sinks {
            let signal = sink.signal();
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
            tables.start(&pool, sink, signal);
        }

        // A batch whose table is busy waits in `waiting` (one per table) while the input keeps being read for
        // the other tables, so one slow table does not hold up the others. A second batch for a busy table is
        // `held` and the input is not read until that table takes its waiting batch: the exporter holds at most
        // one extra batch per table plus one.
        let mut waiting: HashMap<Signal, Batch> = HashMap::new();
        let mut held: Option<Batch> = None;
        loop {
            let free = next_free_table(&waiting, &tables.routes);
            tokio::select! {
                batch = input.recv(), if held.is_none() => {
                    let Some(batch) = batch else { break };
                    held = tables.route(batch, &mut waiting);
                }
                (signal, permit) = free => {
                    if let Some(batch) = waiting.remove(&signal) {
                        match permit {
                            Ok(permit) => {
                                permit.send(batch);
                            }
                            Err(_) => stopped(batch),
                        }
                    }
                    if let Some(batch) = held.take() {
                        held = tables.route(batch, &mut waiting);
                    }
                }
                Some(ended) = tables.tasks.join_next_with_id() => {
                    tables.restart(&pool, ended).await.map_err(|e| {
                        ComponentError::failed(context.clone(), e)
                    })?;
                }
            }
        }
        for (signal, batch) in waiting {
            match tables.routes.get(&signal) {
                Some(tx) => {
                    if let Err(mpsc::error::SendError(batch)) = tx.send(batch).await {
                        stopped(batch);
                    }
                }
                None => stopped(batch),
            }
        }
        tables.routes.clear();
        while let Some(ended) = tables.tasks.join_next().await {
            if let Err(e) = ended {
                error!(exporter = %cx.id, error = %e, "A Delta table task failed.");
            }
        }
        drop(pool);
        debug!(exporter = %cx.id, "Delta exporter stopped.");
        Ok(())
    }
}

/// The table task is gone (it failed; it is being started again): the client retries.
fn stopped(batch: Batch) {
    batch
        .acks
        .resolve(Outcome::retryable("delta table writer stopped"));
}

/// The first table with a waiting batch to have room for it (never, when none waits). Built from clones of
/// the routes, so it borrows nothing while the loop changes `waiting`.
fn next_free_table(
    waiting: &HashMap<Signal, Batch>,
    routes: &HashMap<Signal, mpsc::Sender<Batch>>,
) -> impl Future<Output = (Signal, Reserved)> + 'static {
    let reserves: Vec<_> = waiting
        .keys()
        .filter_map(|&signal| {
            let tx = routes.get(&signal)?.clone();
            Some(Box::pin(async move { (signal, tx.reserve_owned().await) }))
        })
        .collect();
    async move {
        if reserves.is_empty() {
            return std::future::pending().await;
        }
        futures::future::select_all(reserves).await.0
    }
}

type Reserved = Result<mpsc::OwnedPermit<Batch>, mpsc::error::SendError<()>>;

/// The running table tasks, their routes, and what is needed to start one again.
struct Tables {
    routes: HashMap<Signal, mpsc::Sender<Batch>>,
    running: HashMap<Id, Signal>,
    specs: HashMap<Signal, TableSpec>,
    /// When each table's task failed lately (within `RESTART_WINDOW`).
    failures: HashMap<Signal, Vec<Instant>>,
    tasks: JoinSet<()>,
    limits: Limits,
    exporter: ComponentId,
}

impl Tables {
    /// Hands `batch` to its table, or to `waiting` when the table is busy; gives it back when the table
    /// already has a batch waiting (the caller holds it and stops reading).
    fn route(&self, batch: Batch, waiting: &mut HashMap<Signal, Batch>) -> Option<Batch> {
        let signal = batch.signal();
        let Some(tx) = self.routes.get(&signal) else {
            let reason = format!("exporter {} has no table for {signal}", self.exporter);
            if batch.meta.source().is_some() {
                // A write-ahead log written while a pipeline of this signal existed: the configuration
                // refuses it, not the data, so the log keeps it for a configuration that writes it.
                warn!(exporter = %self.exporter, %signal,
                    "No table for this signal; the write-ahead log keeps the entry (add the signal's pipeline back, or delete the log to give it up).");
                batch.acks.resolve(Outcome::Retryable {
                    reason: format!("{reason} in this configuration"),
                    retry_after: Some(NO_TABLE_RETRY_AFTER),
                });
            } else {
                warn!(exporter = %self.exporter, %signal, "No table for this signal; refusing the batch.");
                batch.acks.resolve(Outcome::rejected(reason));
            }
            return None;
        };
        if waiting.contains_key(&signal) {
            return Some(batch);
        }
        match tx.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(batch)) => {
                waiting.insert(signal, batch);
            }
            Err(mpsc::error::TrySendError::Closed(batch)) => stopped(batch),
        }
        None
    }

    fn start(&mut self, pool: &WriterPool, sink: TableSink, signal: Signal) {
        let (tx, rx) = mpsc::channel(TABLE_QUEUE);
        let task = table_task(sink, rx, self.limits, self.exporter.clone(), signal);
        let handle = self.tasks.spawn_on(task, pool.handle());
        self.running.insert(handle.id(), signal);
        self.routes.insert(signal, tx);
    }

    /// A table task ended while the input is open: starts the table again, or fails (see the module docs).
    async fn restart(
        &mut self,
        pool: &WriterPool,
        ended: Result<(Id, ()), JoinError>,
    ) -> Result<(), DeltaError> {
        let (id, cause) = match ended {
            Ok((id, ())) => (id, "it returned while its input was open".to_owned()),
            Err(e) => (e.id(), e.to_string()),
        };
        let Some(signal) = self.running.remove(&id) else {
            return Ok(());
        };
        self.routes.remove(&signal);
        let Some(spec) = self.specs.get(&signal).cloned() else {
            return Ok(());
        };
        let table = spec.name.clone();
        let now = Instant::now();
        let failures = self.failures.entry(signal).or_default();
        failures.retain(|at| now.duration_since(*at) < RESTART_WINDOW);
        failures.push(now);
        if failures.len() > MAX_RESTARTS {
            error!(exporter = %self.exporter, table, %cause, failures = failures.len(),
                "A Delta table task failed again; giving up on the exporter.");
            return Err(DeltaError::WriterStopped { table });
        }
        error!(exporter = %self.exporter, table, %cause,
            "A Delta table task failed; its open commit window is answered retryable. Opening the table again.");
        let sink = match pool.spawn(TableSink::open(spec)).await {
            Ok(opened) => opened?,
            Err(_) => return Err(DeltaError::WriterStopped { table }),
        };
        self.start(pool, sink, signal);
        Ok(())
    }
}
