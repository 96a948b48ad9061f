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
use std::time::Duration;

use async_trait::async_trait;
use otlake_core::telemetry::record_export;
use otlake_core::{
    AckSet, Batch, BatchReceiver, BoxError, ComponentError, ComponentId, Exporter, ExporterContext,
    Outcome, Signal,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::config::{CompactionSchedule, DeltaExporterConfig, TableKind};
use crate::error::DeltaError;
use crate::location::{Location, default_writer_id};
use crate::maintenance::{CompactOptions, compact_table};
use crate::sink::{CommitOutcome, SinkOptions, TableSink, TableSpec};
use crate::table::redact;

/// Batches that may wait in front of one table task. Each is held decoded (a full batch of 8192 GenAI spans
/// is ~20 MB), and one waiting batch is enough to keep the table task busy: beyond that a queue only adds
/// memory at saturation (16 queued batches took the saturated delta scenario to 210 MB), so backpressure
/// reaches the pipeline early instead.
const TABLE_QUEUE: usize = 2;
/// How long a client should wait before retrying after a failed commit.
const RETRY_AFTER: Duration = Duration::from_secs(1);

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

/// When a table commits.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_rows: usize,
    max_bytes: usize,
    max_latency: Duration,
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
                    warn!(exporter = %cx.id, %signal, "No table for this signal; refusing the batch.");
                    batch.acks.resolve(Outcome::rejected(format!(
                        "exporter {} has no table for {signal}",
                        cx.id
                    )));
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

/// The exporter's own runtime (see the module docs). Dropping it shuts it down without blocking, which is
/// allowed anywhere, also inside the daemon's runtime (dropping a tokio `Runtime` there would panic).
struct WriterPool(Option<tokio::runtime::Runtime>);

impl WriterPool {
    fn start(threads: usize) -> std::io::Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("otlake-delta")
            .enable_all()
            .build()
            .map(|rt| WriterPool(Some(rt)))
    }

    fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(rt) => rt.spawn(future),
            // Unreachable: the runtime is only taken in `drop`.
            None => tokio::spawn(future),
        }
    }
}

impl Drop for WriterPool {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The commit window of one table: acknowledgements waiting for the next commit.
struct Window {
    acks: Vec<AckSet>,
    items: usize,
    bytes: usize,
    opened: Option<Instant>,
    /// With a write-ahead log in front: the first and last log sequence in the window. The commit uses the
    /// last as its `txn` version, so a replay skips what is already in the table.
    first_wal: Option<u64>,
    last_wal: Option<u64>,
}

impl Window {
    fn new() -> Self {
        Window {
            acks: Vec::new(),
            items: 0,
            bytes: 0,
            opened: None,
            first_wal: None,
            last_wal: None,
        }
    }

    fn take(&mut self) -> (Vec<AckSet>, usize) {
        let items = self.items;
        self.items = 0;
        self.bytes = 0;
        self.opened = None;
        self.first_wal = None;
        self.last_wal = None;
        (std::mem::take(&mut self.acks), items)
    }
}

fn resolve_all(acks: Vec<AckSet>, outcome: Outcome) {
    for set in acks {
        set.resolve(outcome.clone());
    }
}

/// Owns one table: appends batches, commits by size and time, resolves acknowledgements.
async fn table_task(
    mut sink: TableSink,
    mut rx: mpsc::Receiver<Batch>,
    limits: Limits,
    exporter: ComponentId,
    signal: Signal,
) {
    let mut window = Window::new();
    // With a write-ahead log: after a failed window, the first log sequence it held. Later entries are refused
    // until the log sends that one again, so commits stay in sequence order and none is skipped as committed.
    let mut gate: Option<u64> = None;
    loop {
        let deadline = window.opened.map(|t| t + limits.max_latency);
        let next = tokio::select! {
            batch = rx.recv() => batch,
            () = sleep_until(deadline) => {
                close_gate(&mut gate, commit(&mut sink, &mut window, &exporter, signal).await);
                continue;
            }
        };
        let Some(batch) = next else { break };
        let bytes = batch.payload.encoded_len();
        let wal_sequence = batch.meta.wal_sequence();
        if let Some(sequence) = wal_sequence {
            match gate {
                Some(first) if sequence > first => {
                    batch.acks.resolve(Outcome::Retryable {
                        reason: "an earlier write-ahead log entry of this table is being sent again first"
                            .into(),
                        retry_after: Some(RETRY_AFTER),
                    });
                    continue;
                }
                Some(_) => gate = None,
                None => {}
            }
        }
        let appended = match wal_sequence {
            Some(sequence) => sink.append_sequenced(sequence, &batch.payload).await,
            None => sink.append(&batch.payload).await.map(Some),
        };
        match appended {
            // A replayed log entry the table already holds (committed before a crash): nothing to add.
            Ok(None) => batch.acks.resolve(Outcome::Delivered),
            Ok(Some(items)) => {
                window.acks.push(batch.acks);
                window.items += items;
                window.bytes += bytes;
                window.opened.get_or_insert_with(Instant::now);
                if let Some(sequence) = wal_sequence {
                    window.first_wal.get_or_insert(sequence);
                    window.last_wal = Some(sequence);
                }
            }
            Err(e) => {
                // The whole window is gone: everyone in it must send again. This batch too, unless it is what
                // failed and would fail again (data that does not convert): then it is refused, or its client
                // would retry it forever and take every neighbour's window down with it each time.
                let outcome = retryable(&e);
                let own = if e.is_retryable() {
                    outcome.clone()
                } else {
                    Outcome::rejected(e.to_string())
                };
                // A refused log entry is not sent again, so it cannot reopen the gate.
                let own_sequence = wal_sequence.filter(|_| e.is_retryable());
                close_gate(&mut gate, window.first_wal.or(own_sequence));
                warn!(exporter = %exporter, table = sink.name(), error = %e,
                    "Writing to the Delta table failed; the batches of this commit window will be retried.");
                let (acks, items) = window.take();
                record_export(&exporter, signal, items, &outcome);
                record_export(&exporter, signal, batch.payload.item_count(), &own);
                resolve_all(acks, outcome);
                batch.acks.resolve(own);
                continue;
            }
        }
        if window.items >= limits.max_rows || window.bytes >= limits.max_bytes {
            close_gate(
                &mut gate,
                commit(&mut sink, &mut window, &exporter, signal).await,
            );
        }
    }
    commit(&mut sink, &mut window, &exporter, signal).await;
}

/// Remembers the first log sequence of a failed window (the lowest, if several failed).
fn close_gate(gate: &mut Option<u64>, failed_from: Option<u64>) {
    if let Some(first) = failed_from {
        *gate = Some(gate.map_or(first, |g| g.min(first)));
    }
}

fn retryable(e: &DeltaError) -> Outcome {
    Outcome::Retryable {
        reason: e.to_string(),
        retry_after: Some(RETRY_AFTER),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Commits the window; returns its first write-ahead log sequence if it failed (see `table_task`'s gate).
async fn commit(
    sink: &mut TableSink,
    window: &mut Window,
    exporter: &ComponentId,
    signal: Signal,
) -> Option<u64> {
    let (first_wal, last_wal) = (window.first_wal, window.last_wal);
    let (acks, items) = window.take();
    if acks.is_empty() && sink.window_rows() == 0 {
        return None;
    }
    // With a write-ahead log the transaction version is the log sequence of the window's last entry.
    let sequence = last_wal.unwrap_or_else(|| sink.next_sequence());
    let outcome = match sink.commit(sequence).await {
        Ok(CommitOutcome::Committed {
            table_version,
            rows,
        }) => {
            debug!(exporter = %exporter, table = sink.name(), table_version, rows, sequence, "Committed.");
            Outcome::Delivered
        }
        // Only an empty window (batches without items) commits nothing; they are delivered as they are.
        Ok(CommitOutcome::Empty) => Outcome::Delivered,
        Ok(CommitOutcome::AlreadyCommitted { committed }) => {
            // Another process wrote with our writer id: our rows are not in the table.
            error!(exporter = %exporter, table = sink.name(), sequence, committed,
                "Another writer uses this writer_id; give each writer its own.");
            let _ = sink.refresh().await;
            Outcome::retryable("another writer uses the same writer_id")
        }
        Err(e) => {
            warn!(exporter = %exporter, table = sink.name(), error = %e, items,
                "Delta commit failed; the batches will be retried.");
            retryable(&e)
        }
    };
    let failed = !matches!(outcome, Outcome::Delivered);
    record_export(exporter, signal, items, &outcome);
    resolve_all(acks, outcome);
    if failed { first_wal } else { None }
}

/// Compacts one table on a schedule, next to the writer (compaction only rewrites committed files).
async fn compaction_loop(
    exporter: ComponentId,
    table: String,
    url: url::Url,
    storage_options: HashMap<String, String>,
    schedule: CompactionSchedule,
) {
    let mut ticker = tokio::time::interval(schedule.interval);
    ticker.tick().await; // the first tick is immediate: skip it, the table was just opened
    loop {
        ticker.tick().await;
        let options = CompactOptions {
            target_file_size: schedule.target_file_size,
            min_files: schedule.min_files,
            ..CompactOptions::default()
        };
        match compact_table(&url, &table, &storage_options, &options).await {
            Ok(report) if report.files_removed > 0 => {
                info!(exporter = %exporter, table, files_removed = report.files_removed,
                    files_added = report.files_added, "Compacted.");
            }
            Ok(_) => {}
            Err(e) => {
                warn!(exporter = %exporter, table, error = %e, "Compaction failed; will try again.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeltaExporterFactory;
    use crate::config::SchemaVersion;
    use crate::sink::TableSpec;
    use otlake_core::batch::channel;
    use otlake_core::test_util::{batch_with_ack, build_exporter, sample_logs, sample_traces};
    use otlake_core::{DynExporterFactory, Payload};
    use serde_json::json;

    fn id() -> ComponentId {
        "delta/test".parse().expect("id")
    }

    #[test]
    fn factory_validates_and_builds_without_io() {
        let factory: &dyn DynExporterFactory = &DeltaExporterFactory;
        assert_eq!(factory.type_name(), "delta");
        factory
            .validate(&serde_json::Value::Null)
            .expect("defaults are valid");
        let errors = factory
            .validate(&json!({"spans_table": "bad name", "compression_level": 0}))
            .expect_err("invalid");
        assert_eq!(errors.len(), 2, "{errors:?}");
        let unknown = factory
            .validate(&json!({"max_lantecy": "1s"}))
            .expect_err("unknown key");
        assert_eq!(unknown[0].path, "max_lantecy");
        // Building touches nothing: a location that cannot exist is only used when running.
        let exporter = build_exporter(
            factory,
            &json!({"location": "/proc/otlake-never"}),
            &Signal::ALL,
        )
        .expect("builds");
        drop(exporter);
        assert!(!std::path::Path::new("/proc/otlake-never").exists());
    }

    #[tokio::test]
    async fn runs_with_an_input_that_closes_at_once_and_creates_the_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exporter = build_exporter(
            &DeltaExporterFactory,
            &json!({"location": dir.path()}),
            &[Signal::Traces, Signal::Logs],
        )
        .expect("builds");
        let (tx, rx) = channel("delta/test", 1);
        drop(tx);
        exporter
            .run(rx, ExporterContext { id: id() })
            .await
            .expect("clean run");
        assert!(dir.path().join("otel_spans/_delta_log").is_dir());
        assert!(dir.path().join("otel_logs/_delta_log").is_dir());
        assert!(
            !dir.path().join("otel_metrics").exists(),
            "no pipeline sends metrics"
        );
    }

    #[tokio::test]
    async fn acks_resolve_delivered_after_the_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exporter = build_exporter(
            &DeltaExporterFactory,
            &json!({"location": dir.path(), "max_latency": "50ms"}),
            &Signal::ALL,
        )
        .expect("builds");
        let (tx, rx) = channel("delta/test", 4);
        let run = tokio::spawn(exporter.run(rx, ExporterContext { id: id() }));
        let (traces, traces_ack) = batch_with_ack(sample_traces(2, 3));
        let (logs, logs_ack) = batch_with_ack(sample_logs(1, 4));
        tx.send(traces).await.expect("send");
        tx.send(logs).await.expect("send");
        assert_eq!(traces_ack.wait().await.outcome, Outcome::Delivered);
        assert_eq!(logs_ack.wait().await.outcome, Outcome::Delivered);
        drop(tx);
        run.await.expect("task").expect("clean run");
        let location = dir.path().to_str().expect("utf-8");
        let spans = crate::inspect(location, "otel_spans", &HashMap::new())
            .await
            .expect("spans");
        let logs = crate::inspect(location, "otel_logs", &HashMap::new())
            .await
            .expect("logs");
        assert_eq!((spans.rows, logs.rows), (6, 4));
    }

    #[tokio::test]
    async fn write_ahead_log_entries_commit_once_even_when_replayed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let numbered = |payload: Payload, sequence: u64| {
            let (mut batch, ack) = batch_with_ack(payload);
            batch.meta = std::sync::Arc::new(
                otlake_core::RequestMeta::default().with_wal_sequence(sequence),
            );
            (batch, ack)
        };
        let run_once = |entries: Vec<(Payload, u64)>| {
            let config = json!({"location": dir.path(), "max_latency": "50ms"});
            async move {
                let exporter = build_exporter(&DeltaExporterFactory, &config, &[Signal::Traces])
                    .expect("builds");
                let (tx, rx) = channel("delta/test", 8);
                let run = tokio::spawn(exporter.run(rx, ExporterContext { id: id() }));
                for (payload, sequence) in entries {
                    let (batch, ack) = numbered(payload, sequence);
                    tx.send(batch).await.expect("send");
                    assert_eq!(ack.wait().await.outcome, Outcome::Delivered);
                }
                drop(tx);
                run.await.expect("task").expect("clean run");
            }
        };
        let traces = |n| Payload::from(sample_traces(1, n));
        run_once(vec![(traces(2), 1_000), (traces(3), 1_001)]).await;
        // A crash after the commit but before the log was truncated: the log replays both, then goes on.
        run_once(vec![
            (traces(2), 1_000),
            (traces(3), 1_001),
            (traces(4), 1_002),
        ])
        .await;
        let location = dir.path().to_str().expect("utf-8");
        let spans = crate::inspect(location, "otel_spans", &HashMap::new())
            .await
            .expect("spans");
        assert_eq!(spans.rows, 2 + 3 + 4, "each entry exactly once");
    }

    #[tokio::test]
    async fn after_a_failed_commit_later_log_entries_wait_for_the_failed_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exporter = build_exporter(
            &DeltaExporterFactory,
            &json!({"location": dir.path(), "max_latency": "50ms"}),
            &[Signal::Traces],
        )
        .expect("builds");
        let (tx, rx) = channel("delta/test", 8);
        let run = tokio::spawn(exporter.run(rx, ExporterContext { id: id() }));
        let send = |n: usize, sequence: u64| {
            let (mut batch, ack) = batch_with_ack(sample_traces(1, n));
            batch.meta = std::sync::Arc::new(
                otlake_core::RequestMeta::default().with_wal_sequence(sequence),
            );
            let tx = tx.clone();
            async move {
                tx.send(batch).await.expect("send");
                ack.wait().await.outcome
            }
        };
        assert_eq!(send(1, 10).await, Outcome::Delivered);
        // The table's log becomes unwritable (a file where its directory was; chmod does not stop root).
        let log = dir.path().join("otel_spans/_delta_log");
        let parked = dir.path().join("otel_spans/_delta_log.parked");
        std::fs::rename(&log, &parked).expect("park");
        std::fs::write(&log, b"unwritable").expect("block");
        assert!(matches!(send(2, 11).await, Outcome::Retryable { .. }));
        std::fs::remove_file(&log).expect("unblock");
        std::fs::rename(&parked, &log).expect("restore");
        // Committing 12 now would make 11 look committed on its resend: 12 waits until 11 came again.
        assert!(matches!(
            send(4, 12).await,
            Outcome::Retryable { reason, .. } if reason.contains("sent again first")
        ));
        assert_eq!(send(2, 11).await, Outcome::Delivered);
        assert_eq!(send(4, 12).await, Outcome::Delivered);
        drop(tx);
        run.await.expect("task").expect("clean run");
        let location = dir.path().to_str().expect("utf-8");
        let spans = crate::inspect(location, "otel_spans", &HashMap::new())
            .await
            .expect("spans");
        assert_eq!(spans.rows, 1 + 2 + 4, "each entry once, none skipped");
    }

    #[tokio::test]
    async fn a_table_with_another_schema_stops_startup_naming_the_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = Location::parse(dir.path().to_str().expect("utf-8")).expect("location");
        location.prepare().expect("prepare");
        // A logs table where the spans table should be.
        let spec = TableSpec {
            name: "otel_spans".to_owned(),
            url: location.table_url("otel_spans").expect("url"),
            kind: TableKind::Logs,
            version: SchemaVersion::V1,
            storage_options: HashMap::new(),
            app_id: "x".to_owned(),
            options: SinkOptions::default(),
        };
        drop(TableSink::open(spec).await.expect("create"));
        let exporter = build_exporter(
            &DeltaExporterFactory,
            &json!({"location": dir.path()}),
            &[Signal::Traces],
        )
        .expect("builds");
        let (_tx, rx) = channel("delta/test", 1);
        let err = exporter
            .run(rx, ExporterContext { id: id() })
            .await
            .expect_err("start-up fails");
        let message = err.to_string();
        assert!(
            message.contains("otel_spans") && message.contains("column `"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn data_that_does_not_convert_is_refused_and_its_window_neighbours_retried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = Location::parse(dir.path().to_str().expect("utf-8")).expect("location");
        location.prepare().expect("prepare");
        let sink = TableSink::open(TableSpec {
            name: "otel_spans".to_owned(),
            url: location.table_url("otel_spans").expect("url"),
            kind: TableKind::Spans,
            version: SchemaVersion::V1,
            storage_options: HashMap::new(),
            app_id: "x".to_owned(),
            options: SinkOptions::default(),
        })
        .await
        .expect("create");
        let limits = Limits {
            max_rows: usize::MAX,
            max_bytes: usize::MAX,
            max_latency: Duration::from_secs(3600),
        };
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(table_task(sink, rx, limits, id(), Signal::Traces));
        let (neighbour, neighbour_ack) = batch_with_ack(sample_traces(1, 2));
        // Log records reaching the spans table: they can never convert there (a wiring bug stands in for any
        // data the table cannot take).
        let (broken, broken_ack) = batch_with_ack(sample_logs(1, 1));
        tx.send(neighbour).await.expect("send");
        tx.send(broken).await.expect("send");
        assert!(
            matches!(broken_ack.wait().await.outcome, Outcome::Rejected { .. }),
            "sending it again would fail again"
        );
        assert!(
            matches!(
                neighbour_ack.wait().await.outcome,
                Outcome::Retryable { .. }
            ),
            "its window was discarded, so it must be sent again"
        );
        let (later, later_ack) = batch_with_ack(sample_traces(1, 3));
        tx.send(later).await.expect("send");
        drop(tx);
        task.await.expect("task");
        assert_eq!(later_ack.wait().await.outcome, Outcome::Delivered);
        let location = dir.path().to_str().expect("utf-8");
        let spans = crate::inspect(location, "otel_spans", &HashMap::new())
            .await
            .expect("spans");
        assert_eq!(spans.rows, 3, "only the batch sent after the error");
    }
}
