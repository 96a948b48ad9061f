//! The exporter's unit tests: factory, lifecycle, acknowledgements after the commit, write-ahead-log replay.

use super::*;
use crate::DeltaExporterFactory;
use crate::config::SchemaVersion;
use crate::sink::TableSpec;
use futures::TryStreamExt;
use otlake_core::batch::channel;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::test_util::{batch_with_ack, build_exporter, sample_logs, sample_traces};
use otlake_core::{DynExporterFactory, Payload};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn id() -> ComponentId {
    "delta/test".parse().expect("id")
}

/// A `delta` exporter of `config` for `signals`, running in a task, fed through a channel of `capacity`.
fn start(
    config: serde_json::Value,
    signals: &[Signal],
    capacity: usize,
) -> (
    otlake_core::BatchSender,
    tokio::task::JoinHandle<otlake_core::Result<()>>,
) {
    let exporter = build_exporter(&DeltaExporterFactory, &config, signals).expect("builds");
    let (tx, rx) = channel("delta/test", capacity);
    let run = tokio::spawn(exporter.run(rx, ExporterContext { id: id() }));
    (tx, run)
}

/// Closes the exporter's input and waits for its clean end.
async fn finish(
    tx: otlake_core::BatchSender,
    run: tokio::task::JoinHandle<otlake_core::Result<()>>,
) {
    drop(tx);
    run.await.expect("task").expect("clean run");
}

/// The metadata of a batch that is entry `position` of a write-ahead log.
fn logged_at(position: otlake_core::SourcePosition) -> std::sync::Arc<otlake_core::RequestMeta> {
    std::sync::Arc::new(otlake_core::RequestMeta::default().with_source(position))
}

/// A v1 table named `otel_spans` of `kind` under a new location `dir`.
fn otel_spans_spec(dir: &Path, signal: Signal) -> TableSpec {
    let location = Location::parse(dir.to_str().expect("utf-8")).expect("location");
    location.prepare().expect("prepare");
    TableSpec {
        name: "otel_spans".to_owned(),
        url: location.table_url("otel_spans").expect("url"),
        signal,
        version: SchemaVersion::V1,
        storage_options: HashMap::new(),
        app_id: "x".to_owned(),
        options: SinkOptions::default(),
    }
}

/// The spans table's Delta log under `dir` made unwritable (a file where its directory was; chmod does not
/// stop root), until [`BlockedLog::unblock`].
struct BlockedLog {
    log: std::path::PathBuf,
    parked: std::path::PathBuf,
}

impl BlockedLog {
    fn new(dir: &Path) -> BlockedLog {
        let log = dir.join("otel_spans/_delta_log");
        let parked = dir.join("otel_spans/_delta_log.parked");
        std::fs::rename(&log, &parked).expect("park");
        std::fs::write(&log, b"unwritable").expect("block");
        BlockedLog { log, parked }
    }

    fn unblock(self) {
        std::fs::remove_file(&self.log).expect("unblock");
        std::fs::rename(&self.parked, &self.log).expect("restore");
    }
}

/// Entry `sequence` of a write-ahead log.
fn wal_position(sequence: u64) -> otlake_core::SourcePosition {
    otlake_core::SourcePosition {
        app_id: "otlake-wal-test".into(),
        sequence,
        first_undelivered: None,
    }
}

/// `n` spans whose span and trace ids are `first`, `first + 1`, ...: requests built from distinct `first`s share
/// no id, so what lands can be checked by identity, not by a row count that a lost and a doubled request can
/// add up to.
fn traces_from(first: u64, n: usize) -> ExportTraceServiceRequest {
    let mut request = sample_traces(1, n);
    for (i, span) in request.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .enumerate()
    {
        let id = first + i as u64;
        span.span_id = id.to_be_bytes().to_vec();
        span.trace_id = id.to_be_bytes().repeat(2);
    }
    request
}

/// Each span id of `traces_from(first, n)` for every `(first, n)`, once: what the table must hold.
fn once(requests: &[(u64, usize)]) -> BTreeMap<String, usize> {
    requests
        .iter()
        .flat_map(|&(first, n)| first..first + n as u64)
        .map(|id| (format!("{id:016x}"), 1))
        .collect()
}

/// How many rows of the spans table under `dir` carry each span id, read from the Parquet files of its latest
/// version.
async fn span_id_counts(dir: &Path) -> BTreeMap<String, usize> {
    use deltalake::arrow::array::AsArray;
    use deltalake::arrow::datatypes::DataType;
    use deltalake::logstore::object_store::ObjectStoreExt as _;
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let location = dir.to_str().expect("utf-8");
    let url = crate::location::resolve_table_url(location, "otel_spans").expect("url");
    let table = crate::table::load_table("otel_spans", &url, &HashMap::new())
        .await
        .expect("load")
        .expect("a spans table");
    let log_store = table.log_store();
    let views: Vec<_> = table
        .snapshot()
        .expect("snapshot")
        .snapshot()
        .file_views(log_store.as_ref(), None)
        .try_collect()
        .await
        .expect("files");
    let mut counts = BTreeMap::new();
    for view in views {
        let bytes = table
            .object_store()
            .get(&view.object_store_path())
            .await
            .expect("get")
            .bytes()
            .await
            .expect("read");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .expect("parquet");
        for batch in reader {
            let batch = batch.expect("batch");
            let column = batch.column_by_name("span_id").expect("span_id");
            let ids = deltalake::arrow::compute::cast(column, &DataType::Utf8).expect("text");
            for id in ids.as_string::<i32>().iter() {
                *counts.entry(id.expect("a span id").to_owned()).or_default() += 1;
            }
        }
    }
    counts
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
    let (tx, run) = start(
        json!({"location": dir.path(), "max_latency": "50ms"}),
        &Signal::ALL,
        4,
    );
    let (traces, traces_ack) = batch_with_ack(sample_traces(2, 3));
    let (logs, logs_ack) = batch_with_ack(sample_logs(1, 4));
    tx.send(traces).await.expect("send");
    tx.send(logs).await.expect("send");
    assert_eq!(traces_ack.wait().await.outcome, Outcome::Delivered);
    assert_eq!(logs_ack.wait().await.outcome, Outcome::Delivered);
    finish(tx, run).await;
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
        batch.meta = logged_at(wal_position(sequence));
        (batch, ack)
    };
    let run_once = |entries: Vec<(Payload, u64)>| {
        let config = json!({"location": dir.path(), "max_latency": "50ms"});
        async move {
            let (tx, run) = start(config, &[Signal::Traces], 8);
            for (payload, sequence) in entries {
                let (batch, ack) = numbered(payload, sequence);
                tx.send(batch).await.expect("send");
                assert_eq!(ack.wait().await.outcome, Outcome::Delivered);
            }
            finish(tx, run).await;
        }
    };
    let traces = |first, n| Payload::from(traces_from(first, n));
    run_once(vec![(traces(100, 2), 1_000), (traces(200, 3), 1_001)]).await;
    // A crash after the commit but before the log was truncated: the log replays both, then goes on.
    run_once(vec![
        (traces(100, 2), 1_000),
        (traces(200, 3), 1_001),
        (traces(300, 4), 1_002),
    ])
    .await;
    assert_eq!(
        span_id_counts(dir.path()).await,
        once(&[(100, 2), (200, 3), (300, 4)]),
        "each entry exactly once"
    );
}

#[tokio::test]
async fn after_a_failed_commit_later_log_entries_wait_for_the_failed_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, run) = start(
        json!({"location": dir.path(), "max_latency": "50ms"}),
        &[Signal::Traces],
        8,
    );
    // Entry `sequence` holds `n` spans with ids from `sequence * 100`.
    let send = |n: usize, sequence: u64| {
        let (mut batch, ack) = batch_with_ack(traces_from(sequence * 100, n));
        batch.meta = logged_at(wal_position(sequence));
        let tx = tx.clone();
        async move {
            tx.send(batch).await.expect("send");
            ack.wait().await.outcome
        }
    };
    assert_eq!(send(1, 10).await, Outcome::Delivered);
    let blocked = BlockedLog::new(dir.path());
    assert!(matches!(send(2, 11).await, Outcome::Retryable { .. }));
    blocked.unblock();
    // Committing 12 now would make 11 look committed on its resend: 12 waits until 11 came again.
    assert!(matches!(
        send(4, 12).await,
        Outcome::Retryable { reason, .. } if reason.contains("sent again first")
    ));
    assert_eq!(send(2, 11).await, Outcome::Delivered);
    assert_eq!(send(4, 12).await, Outcome::Delivered);
    finish(tx, run).await;
    assert_eq!(
        span_id_counts(dir.path()).await,
        once(&[(1_000, 1), (1_100, 2), (1_200, 4)]),
        "each entry once, none skipped"
    );
}

#[tokio::test]
async fn a_failed_entry_the_log_dropped_does_not_hold_the_table_forever() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, run) = start(
        json!({"location": dir.path(), "max_latency": "50ms"}),
        &[Signal::Traces],
        8,
    );
    // Entry `sequence` holds `n` spans with ids from `sequence * 100`.
    let send = |n: usize, sequence: u64, first_undelivered: u64| {
        let (mut batch, ack) = batch_with_ack(traces_from(sequence * 100, n));
        batch.meta = logged_at(otlake_core::SourcePosition {
            first_undelivered: Some(first_undelivered),
            ..wal_position(sequence)
        });
        let tx = tx.clone();
        async move {
            tx.send(batch).await.expect("send");
            ack.wait().await.outcome
        }
    };
    assert_eq!(send(1, 10, 10).await, Outcome::Delivered);
    let blocked = BlockedLog::new(dir.path());
    assert!(matches!(send(2, 11, 11).await, Outcome::Retryable { .. }));
    blocked.unblock();
    // While the log still holds 11, 12 waits for it.
    assert!(matches!(
        send(4, 12, 11).await,
        Outcome::Retryable { reason, .. } if reason.contains("sent again first")
    ));
    // 11 turned out damaged on disk and the log dropped it: it will never come again, so 12 goes ahead.
    assert_eq!(send(4, 12, 12).await, Outcome::Delivered);
    assert_eq!(send(3, 13, 13).await, Outcome::Delivered);
    finish(tx, run).await;
    assert_eq!(
        span_id_counts(dir.path()).await,
        once(&[(1_000, 1), (1_200, 4), (1_300, 3)]),
        "10, 12 and 13 once each; the dropped 11 never landed"
    );
}

#[tokio::test]
async fn a_logged_entry_of_a_signal_without_a_table_is_kept_for_later_not_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A log written while a logs pipeline existed, replayed by a configuration with traces only.
    let (tx, run) = start(
        json!({"location": dir.path(), "max_latency": "50ms"}),
        &[Signal::Traces],
        8,
    );
    let (mut logged, logged_ack) = batch_with_ack(sample_logs(1, 2));
    logged.meta = logged_at(wal_position(5));
    tx.send(logged).await.expect("send");
    let outcome = logged_ack.wait().await.outcome;
    assert!(
        matches!(&outcome, Outcome::Retryable { reason, .. } if reason.contains("no table for logs")),
        "the log keeps it until a configuration writes logs again: {outcome:?}"
    );
    // Without a log there is nothing to keep it: the client hears the refusal, as before.
    let (plain, plain_ack) = batch_with_ack(sample_logs(1, 2));
    tx.send(plain).await.expect("send");
    assert!(matches!(
        plain_ack.wait().await.outcome,
        Outcome::Rejected { .. }
    ));
    finish(tx, run).await;
}

#[tokio::test]
async fn a_table_with_another_schema_stops_startup_naming_the_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A logs table where the spans table should be.
    let spec = otel_spans_spec(dir.path(), Signal::Logs);
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
    // What the daemon prints: the error with its causes.
    let message = otlake_core::Chain(&err).to_string();
    assert!(
        message.contains("otel_spans") && message.contains("column `"),
        "{message}"
    );
}

#[tokio::test]
async fn data_that_does_not_convert_is_refused_and_its_window_neighbours_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = TableSink::open(otel_spans_spec(dir.path(), Signal::Traces))
        .await
        .expect("create");
    let limits = Limits {
        max_rows: usize::MAX,
        max_bytes: usize::MAX,
        max_latency: Duration::from_secs(3600),
    };
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(table_task(sink, rx, limits, id(), Signal::Traces));
    let (neighbour, neighbour_ack) = batch_with_ack(traces_from(100, 2));
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
    let (later, later_ack) = batch_with_ack(traces_from(200, 3));
    tx.send(later).await.expect("send");
    drop(tx);
    task.await.expect("task");
    assert_eq!(later_ack.wait().await.outcome, Outcome::Delivered);
    assert_eq!(
        span_id_counts(dir.path()).await,
        once(&[(200, 3)]),
        "only the batch sent after the error"
    );
}

/// A log store in front of a table's log whose first commit lands but answers an error (a lost response),
/// after which the next read of the table's latest version fails once (the same outage).
struct LostAnswer {
    inner: deltalake::logstore::LogStoreRef,
    writes: std::sync::atomic::AtomicUsize,
    fail_next_read: std::sync::atomic::AtomicBool,
}

impl LostAnswer {
    fn read_fails(&self) -> deltalake::DeltaResult<()> {
        if self
            .fail_next_read
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(deltalake::DeltaTableError::Generic(
                "the table cannot be read (test outage)".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl deltalake::logstore::LogStore for LostAnswer {
    fn name(&self) -> String {
        // delta-rs chooses how to hand over a commit by this name: keep the wrapped store's.
        self.inner.name()
    }

    async fn refresh(&self) -> deltalake::DeltaResult<()> {
        self.read_fails()?;
        self.inner.refresh().await
    }

    async fn read_commit_entry(
        &self,
        version: deltalake::kernel::Version,
    ) -> deltalake::DeltaResult<Option<bytes::Bytes>> {
        self.inner.read_commit_entry(version).await
    }

    async fn write_commit_entry(
        &self,
        version: deltalake::kernel::Version,
        commit: deltalake::logstore::CommitOrBytes,
        operation_id: uuid::Uuid,
    ) -> Result<(), deltalake::kernel::transaction::TransactionError> {
        self.inner
            .write_commit_entry(version, commit, operation_id)
            .await?;
        if self
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            == 0
        {
            self.fail_next_read
                .store(true, std::sync::atomic::Ordering::SeqCst);
            return Err(
                deltalake::kernel::transaction::TransactionError::LogStoreError {
                    msg: "connection reset (test: the commit landed)".into(),
                    source: "lost answer".into(),
                },
            );
        }
        Ok(())
    }

    async fn abort_commit_entry(
        &self,
        version: deltalake::kernel::Version,
        commit: deltalake::logstore::CommitOrBytes,
        operation_id: uuid::Uuid,
    ) -> Result<(), deltalake::kernel::transaction::TransactionError> {
        self.inner
            .abort_commit_entry(version, commit, operation_id)
            .await
    }

    async fn get_latest_version(
        &self,
        start: deltalake::kernel::Version,
    ) -> deltalake::DeltaResult<deltalake::kernel::Version> {
        self.read_fails()?;
        self.inner.get_latest_version(start).await
    }

    fn object_store(
        &self,
        operation_id: Option<uuid::Uuid>,
    ) -> std::sync::Arc<dyn deltalake::ObjectStore> {
        self.inner.object_store(operation_id)
    }

    fn root_object_store(
        &self,
        operation_id: Option<uuid::Uuid>,
    ) -> std::sync::Arc<dyn deltalake::ObjectStore> {
        self.inner.root_object_store(operation_id)
    }

    fn config(&self) -> &deltalake::logstore::LogStoreConfig {
        self.inner.config()
    }
}

#[tokio::test]
async fn a_commit_whose_answer_is_lost_never_makes_the_next_window_count_as_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sink = TableSink::open(otel_spans_spec(dir.path(), Signal::Traces))
        .await
        .expect("create");
    sink.wrap_log_store(|inner| {
        std::sync::Arc::new(LostAnswer {
            inner,
            writes: Default::default(),
            fail_next_read: Default::default(),
        })
    });
    let limits = Limits {
        max_rows: 1,
        max_bytes: usize::MAX,
        max_latency: Duration::from_secs(3600),
    };
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(table_task(sink, rx, limits, id(), Signal::Traces));
    // Batch A lands, but its client hears an error (it will send A again: at least once).
    let (a, a_ack) = batch_with_ack(traces_from(100, 2));
    tx.send(a).await.expect("send");
    assert!(matches!(
        a_ack.wait().await.outcome,
        Outcome::Retryable { .. }
    ));
    // Batch B is other data: if its client hears Delivered, its rows must be in the table.
    let (b, b_ack) = batch_with_ack(traces_from(200, 3));
    tx.send(b).await.expect("send");
    let b_outcome = b_ack.wait().await.outcome;
    drop(tx);
    task.await.expect("task");
    if b_outcome == Outcome::Delivered {
        assert_eq!(
            span_id_counts(dir.path()).await,
            once(&[(100, 2), (200, 3)]),
            "B was answered Delivered: A's and B's spans, once each"
        );
    }
    assert_eq!(
        b_outcome,
        Outcome::Delivered,
        "B commits once the table reads again"
    );
}

#[tokio::test]
async fn a_write_ahead_log_replayed_under_another_host_name_commits_nothing_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = Location::parse(dir.path().to_str().expect("utf-8"))
        .expect("location")
        .table_url("otel_spans")
        .expect("url");
    let traces = |first, n| Payload::from(traces_from(first, n));
    // The pod comes back under a new name with its persistent log: the default writer id changes, and the log
    // replays the entries it had not yet checkpointed.
    for (host, entries) in [
        (
            "pod-a",
            vec![(traces(100, 2), 1_000), (traces(200, 3), 1_001)],
        ),
        (
            "pod-b",
            vec![
                (traces(100, 2), 1_000),
                (traces(200, 3), 1_001),
                (traces(300, 4), 1_002),
            ],
        ),
    ] {
        let writer_id = crate::location::writer_id_on_host(&url, &id().to_string(), host);
        let config = json!({"location": dir.path(), "max_latency": "50ms", "writer_id": writer_id});
        let (tx, run) = start(config, &[Signal::Traces], 8);
        for (payload, sequence) in entries {
            let (mut batch, ack) = batch_with_ack(payload);
            batch.meta = logged_at(wal_position(sequence));
            tx.send(batch).await.expect("send");
            assert_eq!(ack.wait().await.outcome, Outcome::Delivered);
        }
        finish(tx, run).await;
    }
    assert_eq!(
        span_id_counts(dir.path()).await,
        once(&[(100, 2), (200, 3), (300, 4)]),
        "each entry exactly once"
    );
}

/// One resource group of `spans` spans whose resource carries a 1 MiB attribute, in wire form as a receiver
/// hands it on: about 1.1 MB on the wire, but every row repeats the resource.
fn heavy_resource_traces(spans: usize) -> Payload {
    use prost::Message;
    let mut request = sample_traces(1, spans);
    let resource = request.resource_spans[0]
        .resource
        .get_or_insert_with(Default::default);
    resource.attributes.push(otlake_core::test_util::kv(
        "k8s.pod.annotations",
        &"x".repeat(1 << 20),
    ));
    Payload::from_wire(Signal::Traces, request.encode_to_vec().into()).expect("valid OTLP")
}

#[tokio::test]
async fn a_request_repeating_a_huge_resource_on_every_row_is_refused_and_later_requests_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, run) = start(
        json!({"location": dir.path(), "max_latency": "50ms"}),
        &[Signal::Traces],
        4,
    );
    let wait = Duration::from_secs(60);

    // 2,100 rows × 1 MiB: past Arrow's 2 GiB string offsets (the writer used to panic there).
    let (heavy, heavy_ack) = batch_with_ack(heavy_resource_traces(2_100));
    tx.send(heavy).await.expect("send");
    match tokio::time::timeout(wait, heavy_ack.wait())
        .await
        .expect("answered")
        .outcome
    {
        Outcome::Rejected { reason } => {
            assert!(reason.contains("64 MiB"), "the limit is named: {reason}")
        }
        other => panic!("expected the request refused, got {other:?}"),
    }
    // A few rows with the same resource are fine.
    let (light, light_ack) = batch_with_ack(heavy_resource_traces(3));
    let (good, good_ack) = batch_with_ack(traces_from(100, 5));
    tx.send(light).await.expect("send");
    tx.send(good).await.expect("send");
    for ack in [light_ack, good_ack] {
        let verdict = tokio::time::timeout(wait, ack.wait())
            .await
            .expect("answered");
        assert_eq!(verdict.outcome, Outcome::Delivered);
    }
    finish(tx, run).await;
    // The light request's spans (ids 1..=3) and the good one's, once each.
    assert_eq!(span_id_counts(dir.path()).await, once(&[(1, 3), (100, 5)]));
}

/// Sends `payload` as a client would: again after each retryable answer, for at most 30 s.
async fn send_until_answered(tx: &otlake_core::BatchSender, payload: Payload) -> Outcome {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (batch, ack) = batch_with_ack(payload.clone());
        tx.send(batch).await.expect("send");
        let outcome = tokio::time::timeout(Duration::from_secs(30), ack.wait())
            .await
            .expect("answered")
            .outcome;
        if !matches!(outcome, Outcome::Retryable { .. }) || tokio::time::Instant::now() > deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_table_task_that_panics_is_started_again_and_later_requests_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, run) = start(
        json!({"location": dir.path(), "max_latency": "50ms"}),
        &[Signal::Traces, Signal::Logs],
        4,
    );
    let (doomed, doomed_ack) = batch_with_ack(sample_traces(1, table_task::PANIC_ON_ITEMS));
    tx.send(doomed).await.expect("send");
    let outcome = tokio::time::timeout(Duration::from_secs(30), doomed_ack.wait())
        .await
        .expect("answered")
        .outcome;
    assert!(matches!(outcome, Outcome::Retryable { .. }), "{outcome:?}");

    let outcome = send_until_answered(&tx, Payload::from(traces_from(100_000, 5))).await;
    assert_eq!(outcome, Outcome::Delivered, "the spans table works again");
    let outcome = send_until_answered(&tx, Payload::from(sample_logs(1, 2))).await;
    assert_eq!(outcome, Outcome::Delivered, "the other table never stopped");
    finish(tx, run).await;
    assert_eq!(
        span_id_counts(dir.path()).await,
        once(&[(100_000, 5)]),
        "the later request once, nothing of the batch that panicked"
    );
}

#[tokio::test]
async fn a_table_task_that_keeps_panicking_fails_the_exporter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, run) = start(json!({"location": dir.path()}), &[Signal::Traces], 1);
    let doomed = Payload::from(sample_traces(1, table_task::PANIC_ON_ITEMS));
    // A write-ahead log would send the same entry again and again, until the exporter stops taking it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        let (batch, _ack) = batch_with_ack(doomed.clone());
        if tx.send(batch).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the exporter gives up")
        .expect("no panic");
    let error = ended.expect_err("the exporter fails");
    let error = otlake_core::Chain(&error).to_string();
    assert!(error.contains("otel_spans"), "{error}");
}

#[tokio::test]
async fn a_slow_table_does_not_hold_up_the_other_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, run) = start(
        json!({"location": dir.path(), "max_latency": "50ms"}),
        &[Signal::Traces, Signal::Logs],
        8,
    );
    let wait = Duration::from_secs(20);
    let (stall, stall_ack) = batch_with_ack(sample_traces(1, table_task::STALL_ON_ITEMS));
    tx.send(stall).await.expect("send");
    tokio::time::timeout(wait, table_task::STALLED.acquire())
        .await
        .expect("the spans table stalls")
        .expect("open")
        .forget();
    // The spans table's queue fills, and one more spans batch waits in front of it.
    let mut span_acks = vec![stall_ack];
    for spans in 1..=3 {
        let (batch, ack) = batch_with_ack(traces_from(100_000 * spans as u64, spans));
        tx.send(batch).await.expect("send");
        span_acks.push(ack);
    }
    let (logs, logs_ack) = batch_with_ack(sample_logs(1, 2));
    tx.send(logs).await.expect("send");
    let verdict = tokio::time::timeout(wait, logs_ack.wait())
        .await
        .expect("the logs table is not held up by the stalled spans table");
    assert_eq!(verdict.outcome, Outcome::Delivered);

    table_task::RELEASE_STALL.add_permits(1);
    for ack in span_acks {
        let verdict = tokio::time::timeout(wait, ack.wait())
            .await
            .expect("answered");
        assert_eq!(verdict.outcome, Outcome::Delivered);
    }
    finish(tx, run).await;
    assert_eq!(
        span_id_counts(dir.path()).await,
        once(&[
            (1, table_task::STALL_ON_ITEMS),
            (100_000, 1),
            (200_000, 2),
            (300_000, 3)
        ])
    );
}
