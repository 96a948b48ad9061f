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
//! Exactly-once: the table records, per app id, the highest sequence committed. [`TableSink::commit`] refuses
//! to commit a sequence at or below it ([`CommitOutcome::AlreadyCommitted`]), and after a commit error it reads
//! the table again to tell "failed" from "succeeded but the answer was lost", so retrying a commit never adds
//! the same window twice. A write-ahead log that numbers its entries and replays them after a crash gets
//! exactly-once delivery into Delta by committing with the number of the last entry of each window and
//! skipping entries at or below [`TableSink::committed_sequence`] (see [`TableSink::append_sequenced`]).

use std::collections::HashMap;

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

use crate::config::{SchemaVersion, SeverityNumberFormat, TableKind};
use crate::convert::Rows;
use crate::error::{DeltaError, Result};
use crate::parquet_layout::{ColumnRules, writer_properties};
use crate::schema::TableSchema;
use crate::table::open_or_create;

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
    pub kind: TableKind,
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
    /// The table already holds this sequence (a replay or a retried commit): nothing was added and the
    /// window was discarded.
    AlreadyCommitted { committed: u64 },
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
    /// The highest sequence this app id has committed to the table.
    committed: Option<u64>,
}

impl TableSink {
    /// Opens (or creates) the table and reads back the last committed sequence of `spec.app_id`.
    pub async fn open(spec: TableSpec) -> Result<TableSink> {
        let schema = TableSchema::new(spec.kind, spec.version)?;
        let table = open_or_create(&spec.name, &spec.url, &spec.storage_options, &schema).await?;
        let state = table
            .snapshot()
            .map_err(|e| DeltaError::delta(&spec.name, "reading", e))?
            .clone();
        let log_store = table.log_store();
        let committed = read_committed(&spec, &state, &log_store).await?;
        let writer = new_writer(&spec, &schema, &table)?;
        let rows = Rows::new(spec.kind, spec.version, spec.options.severity_number_format);
        debug!(table = %spec.name, app_id = %spec.app_id, committed = ?committed, "Table sink opened.");
        Ok(TableSink {
            spec,
            schema,
            log_store,
            state,
            writer,
            rows,
            window_rows: 0,
            committed,
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

    pub fn spec_kind(&self) -> TableKind {
        self.spec.kind
    }

    /// The object store options the table was opened with (credentials: never log them).
    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.spec.storage_options
    }

    /// The highest sequence committed by this sink's app id (read at open, advanced by each commit).
    pub fn committed_sequence(&self) -> Option<u64> {
        self.committed
    }

    /// The sequence the next commit of this writer would normally use.
    pub fn next_sequence(&self) -> u64 {
        self.committed.map_or(1, |c| c + 1)
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
    /// A payload still in its wire form is converted straight from its bytes where the table has a wire path
    /// (spans, logs): no decoded copy is made, nor kept in the payload. Otherwise it is decoded (once, cached
    /// in the payload) and converted from prost's types.
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
        if self.rows.is_full() {
            self.write_chunk().await?;
        }
        Ok(added)
    }

    fn convert(&mut self, payload: &Payload) -> std::result::Result<usize, String> {
        if payload.signal() != self.spec.kind.signal() {
            return Err(format!("this table takes {}", self.spec.kind.signal()));
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
            .ok_or_else(|| format!("this table takes {}", self.spec.kind.signal()))
    }

    /// Like [`append`](Self::append), for a write-ahead log replaying numbered entries: an entry whose
    /// `sequence` is already committed is skipped (`Ok(None)`).
    pub async fn append_sequenced(
        &mut self,
        sequence: u64,
        payload: &Payload,
    ) -> Result<Option<usize>> {
        if self.committed.is_some_and(|c| sequence <= c) {
            return Ok(None);
        }
        self.append(payload).await.map(Some)
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
                    signal: self.spec.kind.signal().as_str(),
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
        self.window_rows = 0;
    }

    /// Drops the current window after a conversion error, which may have left the builders with part of a
    /// request: they are replaced rather than finished.
    fn discard_broken(&mut self) {
        self.rows = Rows::new(
            self.spec.kind,
            self.spec.version,
            self.spec.options.severity_number_format,
        );
        self.writer.reset();
        self.window_rows = 0;
    }

    /// Commits the current window as `sequence` (which must be above every committed one). After an error the
    /// window is discarded and the table holds none of it.
    pub async fn commit(&mut self, sequence: u64) -> Result<CommitOutcome> {
        if let Some(committed) = self.committed
            && sequence <= committed
        {
            self.discard();
            return Ok(CommitOutcome::AlreadyCommitted { committed });
        }
        let txn_version = i64::try_from(sequence).map_err(|_| DeltaError::Sequence {
            table: self.spec.name.clone(),
            message: format!("sequence {sequence} does not fit a Delta transaction version"),
        })?;
        if self.window_rows == 0 {
            self.discard();
            return Ok(CommitOutcome::Empty);
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
        self.window_rows = 0;
        let properties = CommitProperties::default()
            .with_application_transaction(Transaction::new(&self.spec.app_id, txn_version))
            .with_metadata([
                ("otlake.rows".to_owned(), json!(rows)),
                ("otlake.sequence".to_owned(), json!(sequence)),
            ]);
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!self.schema.partition_columns.is_empty())
                .then(|| self.schema.partition_columns.clone()),
            predicate: None,
        };
        let result = CommitBuilder::from(properties)
            .with_actions(adds.into_iter().map(Action::Add).collect())
            .build(Some(&self.state), self.log_store.clone(), operation)
            .await;
        match result {
            Ok(finalized) => {
                self.state = finalized.snapshot();
                self.committed = Some(sequence);
                Ok(CommitOutcome::Committed {
                    table_version: finalized.version(),
                    rows,
                })
            }
            Err(e) => {
                // The commit may have landed even though we got an error (a lost response): the table knows.
                if self.refresh().await.is_ok() && self.committed.is_some_and(|c| c >= sequence) {
                    warn!(table = %self.spec.name, sequence, error = %e,
                        "Commit reported an error but is in the table; counting it as committed.");
                    return Ok(CommitOutcome::Committed {
                        table_version: self.state.version(),
                        rows,
                    });
                }
                Err(DeltaError::delta(&self.spec.name, "committing to", e))
            }
        }
    }

    /// Reads the table's latest state and this app id's committed sequence again.
    pub async fn refresh(&mut self) -> Result<()> {
        self.state
            .update(self.log_store.as_ref(), None)
            .await
            .map_err(|e| DeltaError::delta(&self.spec.name, "refreshing", e))?;
        self.committed = read_committed(&self.spec, &self.state, &self.log_store).await?;
        Ok(())
    }
}

async fn read_committed(
    spec: &TableSpec,
    state: &DeltaTableState,
    log_store: &LogStoreRef,
) -> Result<Option<u64>> {
    let version = state
        .transaction_version(log_store.as_ref(), &spec.app_id)
        .await
        .map_err(|e| DeltaError::delta(&spec.name, "reading the transactions of", e))?;
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
