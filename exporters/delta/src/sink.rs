//! [`TableSink`]: appends OTLP data to one OTel table in all-or-nothing commit windows, each commit carrying an
//! application transaction, which makes commits idempotent.
//!
//! ```text
//!   open ──► append* ──► commit(sequence) ──► append* ──► commit(sequence') ...
//!              │                │
//!              └─ error ────────┴─ error ──► window discarded (nothing of it becomes visible), ready again
//! ```
//! A window is everything appended since the last commit. `append` converts to Arrow and streams full chunks
//! into a Parquet file; `commit` finishes the file(s), uploads them and commits one Delta version that adds
//! them together with the transaction `(app_id, sequence)`. Readers see a window entirely or not at all: the
//! Parquet files are invisible until the commit that adds them, and a failed window leaves at most orphan
//! files (removed by `vacuum`).
//!
//! Commit identity. The table records, per app id, the highest transaction version committed. Two kinds of
//! app id reach a commit:
//! - *sources*: a write-ahead log or a file journal numbers its batches and replays them after a crash under
//!   the same numbers ([`TableSink::append_positioned`]). A window's commit records each source's highest
//!   sequence, and a replayed batch at or below what the table holds is skipped: exactly once into Delta.
//! - the sink's *own* app id (`spec.app_id`, the writer id) numbers windows holding data of no source
//!   (`committed + 1`, ...).
//!
//! Every commit also carries a fresh `otlake.commit_id` in its `commitInfo`. After a commit error (a lost
//! answer, a failed post-commit checkpoint) the sink reads the table again and counts the window as committed
//! only if a version written since carries that id: a commit of another writer with the same app id is never
//! mistaken for ours. When the table cannot be read either, the outcome is unknown: the window is reported
//! failed, its own sequence is never used again, and the table is read again before the next commit.

use std::collections::{BTreeMap, HashMap};

use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Transaction};
use deltalake::logstore::LogStoreRef;
use deltalake::parquet::basic::ZstdLevel;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::state::DeltaTableState;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use otlake_core::Payload;
use serde_json::json;
use tracing::{debug, warn};
use url::Url;

use crate::config::{SchemaVersion, SeverityNumberFormat};
use crate::convert::Rows;
use crate::error::{DeltaError, Result};
use crate::parquet_layout::{ColumnRules, writer_properties};
use crate::schema::TableSchema;
use crate::table::open_or_create;
use otlake_core::Signal;

/// How Parquet files are written and values encoded.
#[derive(Clone, Debug)]
pub struct SinkOptions {
    /// zstd level, 1..=22.
    pub compression_level: i32,
    /// Rows per Parquet row group.
    pub row_group_size: usize,
    /// How `severity_number` is written (logs only).
    pub severity_number_format: SeverityNumberFormat,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            compression_level: crate::config::DEFAULT_COMPRESSION_LEVEL,
            row_group_size: crate::config::DEFAULT_ROW_GROUP_SIZE,
            severity_number_format: SeverityNumberFormat::default(),
        }
    }
}

/// Which table to open and how to write it.
#[derive(Clone, Debug)]
pub struct TableSpec {
    /// Table name (for messages; the URL decides where it is).
    pub name: String,
    /// The table's directory URL.
    pub url: Url,
    pub signal: Signal,
    pub version: SchemaVersion,
    /// Object store options (credentials); never logged.
    pub storage_options: HashMap<String, String>,
    /// The application id of this writer's transactions. One writer per app id at a time.
    pub app_id: String,
    pub options: SinkOptions,
}

/// What a commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// A new table version adds the window's rows.
    Committed { table_version: u64, rows: usize },
    /// The table already holds this source's sequence (found when the table was read again after a commit of
    /// unknown outcome): nothing was added and the window was discarded.
    AlreadyCommitted { app_id: String, committed: u64 },
    /// The window held no rows: nothing to commit.
    Empty,
}

/// Appends to one OTel table. See the module docs.
pub struct TableSink {
    spec: TableSpec,
    schema: TableSchema,
    log_store: LogStoreRef,
    state: DeltaTableState,
    writer: RecordBatchWriter,
    rows: Rows,
    /// Rows in the current window (converted and not yet committed).
    window_rows: usize,
    /// Per app id (the own one and every source seen): the highest transaction version in the table.
    committed: HashMap<String, Option<u64>>,
    /// Per source app id: the highest sequence appended to the current window.
    window_sources: BTreeMap<String, u64>,
    /// Whether the current window holds rows of no source (numbered by the own app id).
    window_unpositioned: bool,
    /// Own sequences at or below this were used by a commit whose outcome is unknown: never used again.
    burned: u64,
    /// A commit's outcome could not be checked: the table is read again before the next commit.
    stale: bool,
}

impl TableSink {
    /// Opens (or creates) the table and reads back the last committed sequence of `spec.app_id`.
    pub async fn open(spec: TableSpec) -> Result<TableSink> {
        let schema = TableSchema::new(spec.signal, spec.version)?;
        let table = open_or_create(&spec.name, &spec.url, &spec.storage_options, &schema).await?;
        let state = table
            .snapshot()
            .map_err(|e| DeltaError::delta(&spec.name, "reading", e))?
            .clone();
        let log_store = table.log_store();
        let own = read_committed(&spec.name, &spec.app_id, &state, &log_store).await?;
        let writer = new_writer(&spec, &schema, &table)?;
        let rows = Rows::new(
            spec.signal,
            spec.version,
            spec.options.severity_number_format,
        );
        debug!(table = %spec.name, app_id = %spec.app_id, committed = ?own, "Table sink opened.");
        let committed = HashMap::from([(spec.app_id.clone(), own)]);
        Ok(TableSink {
            spec,
            schema,
            log_store,
            state,
            writer,
            rows,
            window_rows: 0,
            committed,
            window_sources: BTreeMap::new(),
            window_unpositioned: false,
            burned: 0,
            stale: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn app_id(&self) -> &str {
        &self.spec.app_id
    }

    pub fn url(&self) -> &Url {
        &self.spec.url
    }

    pub fn signal(&self) -> Signal {
        self.spec.signal
    }

    /// The object store options the table was opened with (credentials: never log them).
    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.spec.storage_options
    }

    /// The highest sequence committed by this sink's own app id (read at open, advanced by each commit).
    pub fn committed_sequence(&self) -> Option<u64> {
        self.committed.get(&self.spec.app_id).copied().flatten()
    }

    /// The highest sequence source `app_id` has committed to the table (read from the table on first use).
    pub async fn committed_source(&mut self, app_id: &str) -> Result<Option<u64>> {
        if let Some(committed) = self.committed.get(app_id) {
            return Ok(*committed);
        }
        let committed =
            read_committed(&self.spec.name, app_id, &self.state, &self.log_store).await?;
        self.committed.insert(app_id.to_owned(), committed);
        Ok(committed)
    }

    /// The own sequence the next commit of unpositioned rows uses: above the committed one and above any whose
    /// outcome was unknown.
    fn next_own_sequence(&self) -> u64 {
        self.committed_sequence().unwrap_or(0).max(self.burned) + 1
    }

    /// Rows in the current (uncommitted) window.
    pub fn window_rows(&self) -> usize {
        self.window_rows
    }

    /// The Delta version of the table as this sink last saw it.
    pub fn table_version(&self) -> u64 {
        self.state.version()
    }

    /// Converts `payload` into the current window; returns the number of rows added. On error the whole
    /// window is discarded (see the module docs).
    ///
    /// A payload still in its wire form is converted straight from its bytes (every table has a wire path):
    /// no decoded copy is made, nor kept in the payload. A payload some stage decoded is converted from
    /// prost's types.
    pub async fn append(&mut self, payload: &Payload) -> Result<usize> {
        let added = match self.convert(payload) {
            Ok(added) => added,
            Err(message) => {
                self.discard_broken();
                return Err(DeltaError::Convert {
                    table: self.spec.name.clone(),
                    signal: payload.signal().as_str(),
                    message,
                });
            }
        };
        self.window_rows += added;
        self.window_unpositioned = true;
        if self.rows.is_full() {
            self.write_chunk().await?;
        }
        Ok(added)
    }

    fn convert(&mut self, payload: &Payload) -> std::result::Result<usize, String> {
        if payload.signal() != self.spec.signal {
            return Err(format!("this table takes {}", self.spec.signal));
        }
        let signal = payload.signal();
        if payload.is_wire() && self.rows.takes_wire(signal) {
            // Chunk by chunk (each a whole request; merged requests are their concatenation), so a batch of
            // merged requests is not copied into one buffer first. On an error the caller discards the window.
            let mut added = 0;
            for chunk in payload.wire_chunks().unwrap_or_default() {
                added += self
                    .rows
                    .append_wire(signal, chunk)
                    .map_err(|e| e.to_string())?
                    .unwrap_or(0);
            }
            return Ok(added);
        }
        let request = payload.request().map_err(|e| e.to_string())?;
        self.rows
            .append(request)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("this table takes {}", self.spec.signal))
    }

    /// Like [`append`](Self::append), for a batch that source `app_id` numbered `sequence` (a write-ahead log
    /// entry, a file journal's batch): a batch the table already holds is skipped (`Ok(None)`); otherwise the
    /// window's commit records the source's highest sequence.
    pub async fn append_positioned(
        &mut self,
        app_id: &str,
        sequence: u64,
        payload: &Payload,
    ) -> Result<Option<usize>> {
        if self
            .committed_source(app_id)
            .await?
            .is_some_and(|c| sequence <= c)
        {
            return Ok(None);
        }
        let unpositioned = self.window_unpositioned;
        let added = self.append(payload).await?;
        self.window_unpositioned = unpositioned;
        let last = self
            .window_sources
            .entry(app_id.to_owned())
            .or_insert(sequence);
        *last = (*last).max(sequence);
        Ok(Some(added))
    }

    /// Streams the converted rows into the open Parquet file.
    async fn write_chunk(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = match self.rows.finish(&self.schema.arrow) {
            Ok(batch) => batch,
            Err(e) => {
                let err = DeltaError::Convert {
                    table: self.spec.name.clone(),
                    signal: self.spec.signal.as_str(),
                    message: e.to_string(),
                };
                self.discard();
                return Err(err);
            }
        };
        if let Err(e) = self.writer.write(batch).await {
            // delta-rs has already discarded the window's files on an I/O error; keep our count in step.
            self.discard();
            return Err(DeltaError::delta(&self.spec.name, "writing Parquet for", e));
        }
        Ok(())
    }

    /// Drops the current window: nothing of it will be committed.
    pub fn discard(&mut self) {
        // Finishing against our own schema cannot fail in a way that matters here: the rows are dropped.
        let _ = self.rows.finish(&self.schema.arrow);
        self.writer.reset();
        self.clear_window();
    }

    fn clear_window(&mut self) {
        self.window_rows = 0;
        self.window_sources.clear();
        self.window_unpositioned = false;
    }

    /// Drops the current window after a conversion error, which may have left the builders with part of a
    /// request: they are replaced rather than finished.
    fn discard_broken(&mut self) {
        self.rows = Rows::new(
            self.spec.signal,
            self.spec.version,
            self.spec.options.severity_number_format,
        );
        self.writer.reset();
        self.clear_window();
    }

    /// Commits the current window: one Delta version adding its files, with one `txn` per source in the window
    /// (its highest sequence) and, when the window holds rows of no source, one for the own app id. After an
    /// error the window is discarded and the table holds none of it (or all of it, when the commit landed and
    /// only its answer was lost: see the module docs).
    pub async fn commit(&mut self) -> Result<CommitOutcome> {
        if self.window_rows == 0 {
            self.discard();
            return Ok(CommitOutcome::Empty);
        }
        if self.stale
            && let Err(e) = self.refresh().await
        {
            self.discard();
            return Err(e);
        }
        let mut txns = Vec::new();
        for (app_id, &sequence) in &self.window_sources {
            if let Some(committed) = self.committed.get(app_id).copied().flatten()
                && sequence <= committed
            {
                // Read again after an unknown outcome: the window's data is in the table already.
                let app_id = app_id.clone();
                self.discard();
                return Ok(CommitOutcome::AlreadyCommitted { app_id, committed });
            }
            txns.push((app_id.clone(), sequence));
        }
        let own_sequence = self.window_unpositioned.then(|| self.next_own_sequence());
        if let Some(sequence) = own_sequence {
            txns.push((self.spec.app_id.clone(), sequence));
        }
        let mut transactions = Vec::with_capacity(txns.len());
        for (app_id, sequence) in &txns {
            let version = i64::try_from(*sequence).map_err(|_| DeltaError::Sequence {
                table: self.spec.name.clone(),
                message: format!("sequence {sequence} does not fit a Delta transaction version"),
            })?;
            transactions.push(Transaction::new(app_id, version));
        }
        self.write_chunk().await?;
        let adds = match self.writer.flush().await {
            Ok(adds) => adds,
            Err(e) => {
                self.discard();
                return Err(DeltaError::delta(
                    &self.spec.name,
                    "finishing Parquet for",
                    e,
                ));
            }
        };
        let rows = self.window_rows;
        self.clear_window();
        let commit_id = uuid::Uuid::now_v7().to_string();
        let properties = CommitProperties::default()
            .with_application_transactions(transactions)
            .with_metadata([
                ("otlake.rows".to_owned(), json!(rows)),
                (COMMIT_ID_KEY.to_owned(), json!(commit_id)),
                (
                    "otlake.transactions".to_owned(),
                    json!(
                        txns.iter()
                            .map(|(a, s)| json!({"app_id": a, "version": s}))
                            .collect::<Vec<_>>()
                    ),
                ),
            ]);
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!self.schema.partition_columns.is_empty())
                .then(|| self.schema.partition_columns.clone()),
            predicate: None,
        };
        let read_version = self.state.version();
        let result = CommitBuilder::from(properties)
            .with_actions(adds.into_iter().map(Action::Add).collect())
            .build(Some(&self.state), self.log_store.clone(), operation)
            .await;
        match result {
            Ok(finalized) => {
                self.state = finalized.snapshot();
                self.record_committed(&txns);
                Ok(CommitOutcome::Committed {
                    table_version: finalized.version(),
                    rows,
                })
            }
            Err(e) => {
                // Whatever happened, this own sequence was offered to the table: it is never offered again.
                if let Some(sequence) = own_sequence {
                    self.burned = self.burned.max(sequence);
                }
                match self.find_commit(read_version, &commit_id).await {
                    Ok(Some(table_version)) => {
                        warn!(table = %self.spec.name, table_version, error = %e,
                            "Commit reported an error but is in the table; counting it as committed.");
                        self.record_committed(&txns);
                        Ok(CommitOutcome::Committed {
                            table_version,
                            rows,
                        })
                    }
                    Ok(None) => Err(DeltaError::delta(&self.spec.name, "committing to", e)),
                    Err(unknown) => {
                        self.stale = true;
                        warn!(table = %self.spec.name, error = %unknown,
                            "Cannot tell whether the failed commit landed; reading the table again before the next one.");
                        Err(DeltaError::delta(&self.spec.name, "committing to", e))
                    }
                }
            }
        }
    }

    fn record_committed(&mut self, txns: &[(String, u64)]) {
        for (app_id, sequence) in txns {
            let committed = self.committed.entry(app_id.clone()).or_default();
            *committed = Some(committed.map_or(*sequence, |c| c.max(*sequence)));
        }
    }

    /// Reads the table again and looks for the version, after `read_version`, whose `commitInfo` carries
    /// `commit_id`. `Err` when the table cannot be read (the outcome is unknown).
    async fn find_commit(&mut self, read_version: u64, commit_id: &str) -> Result<Option<u64>> {
        self.refresh().await?;
        for version in read_version + 1..=self.state.version() {
            let entry = self
                .log_store
                .read_commit_entry(version)
                .await
                .map_err(|e| DeltaError::delta(&self.spec.name, "reading the log of", e))?;
            if entry.is_some_and(|bytes| carries_commit_id(&bytes, commit_id)) {
                return Ok(Some(version));
            }
        }
        Ok(None)
    }

    /// Reads the table's latest state and the committed sequence of every app id seen again.
    pub async fn refresh(&mut self) -> Result<()> {
        self.state
            .update(self.log_store.as_ref(), None)
            .await
            .map_err(|e| DeltaError::delta(&self.spec.name, "refreshing", e))?;
        let app_ids: Vec<String> = self.committed.keys().cloned().collect();
        for app_id in app_ids {
            let committed =
                read_committed(&self.spec.name, &app_id, &self.state, &self.log_store).await?;
            self.committed.insert(app_id, committed);
        }
        self.stale = false;
        Ok(())
    }

    /// Replaces the log store (tests inject faults between the sink and the table's log).
    #[cfg(test)]
    pub(crate) fn wrap_log_store(&mut self, wrap: impl FnOnce(LogStoreRef) -> LogStoreRef) {
        self.log_store = wrap(self.log_store.clone());
    }
}

/// The `commitInfo` key holding a commit attempt's id.
const COMMIT_ID_KEY: &str = "otlake.commit_id";

/// Whether a commit file (newline-delimited actions) has a `commitInfo` with `commit_id`.
fn carries_commit_id(commit: &[u8], commit_id: &str) -> bool {
    commit
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .any(|action| {
            action
                .get("commitInfo")
                .and_then(|info| info.get(COMMIT_ID_KEY))
                .and_then(|id| id.as_str())
                == Some(commit_id)
        })
}

async fn read_committed(
    table: &str,
    app_id: &str,
    state: &DeltaTableState,
    log_store: &LogStoreRef,
) -> Result<Option<u64>> {
    let version = state
        .transaction_version(log_store.as_ref(), app_id)
        .await
        .map_err(|e| DeltaError::delta(table, "reading the transactions of", e))?;
    Ok(version.and_then(|v| u64::try_from(v).ok()))
}

fn new_writer(
    spec: &TableSpec,
    schema: &TableSchema,
    table: &deltalake::DeltaTable,
) -> Result<RecordBatchWriter> {
    // Validated by the config; checked again here so a bad level is a start-up error, not a silent default.
    ZstdLevel::try_new(spec.options.compression_level).map_err(|e| DeltaError::Incompatible {
        table: spec.name.clone(),
        message: format!("compression level: {e}"),
    })?;
    let properties = writer_properties(
        &schema.arrow,
        spec.options.compression_level,
        spec.options.row_group_size,
        ColumnRules::default(),
    );
    Ok(RecordBatchWriter::for_table(table)
        .map_err(|e| DeltaError::delta(&spec.name, "preparing a writer for", e))?
        .with_writer_properties(properties))
}
