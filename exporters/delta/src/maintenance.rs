//! Table maintenance for the CLI (`otlake table compact` / `otlake table vacuum`) and the exporter's optional
//! background compaction: [`compact`] rewrites small files into large ones, [`vacuum`] deletes files no
//! version references any more.
//!
//! Both are safe while a daemon appends to the table:
//! - compaction reads committed files only and commits one version that removes them and adds their rewrite
//!   (`dataChange = false`, so streaming readers skip it). Concurrent appends do not conflict with it. A
//!   concurrent compaction of the same files does: delta-rs 1.1 lets two `dataChange = false` removes of one
//!   file both commit (its conflict checker skips them, as Spark's does), which would put the rewritten rows in
//!   the table twice. So the commit is made only on top of a version in which every file it removes is still
//!   active (checked, then committed with no delta-rs rebase; a commit that lands in between makes it check
//!   again); otherwise it fails with [`DeltaError::CompactionConflict`] and the table is unchanged (the
//!   rewritten files become orphans for vacuum). [`prepare_compaction`] and [`PreparedCompaction::commit`]
//!   are its two steps, for a caller that acts between them (the tests append there, so the interleaving is
//!   certain rather than likely);
//! - vacuum only deletes files older than the retention period (default 7 days, at least 1 hour unless
//!   `enforce_retention` is off) that no table version within it references. A file being written by a daemon
//!   is seconds old, so it is never touched.
//!
//! Compaction works without DataFusion: it streams the Parquet files through the same `RecordBatchWriter` the
//! exporter uses and commits Remove + Add actions through the commit builder. Partitioned (v2) tables are
//! compacted partition by partition (files of different partitions are never merged).
//!
//! Memory: a bin is rewritten by reading one input file whole and buffering the output file until it is
//! flushed, so a bin costs about twice its bytes (plus one decoded row group). Given a [`MemoryBudget`]
//! (the exporter's background compaction passes the daemon's), bins are at most [`BUDGET_SHARE`] of the
//! budget's limit and each bin's twice-its-bytes is reserved in the budget while it is rewritten: receivers
//! see that memory as taken, and a bin that does not fit now (the budget is busy with requests) is left for
//! the next round ([`CompactReport::bins_deferred`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use deltalake::arrow::array::{ArrayRef, StringArray, new_null_array};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Remove};
use deltalake::logstore::object_store::ObjectStoreExt as _;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, Path};
use futures::TryStreamExt;
use otlake_core::MemoryBudget;
use url::Url;

use crate::config::DEFAULT_COMPRESSION_LEVEL;
use crate::error::{DeltaError, Result};
use crate::location::resolve_table_url;
use crate::table::load_table;

/// The share of a memory budget's limit one compaction bin may take: bins are at most `limit / BUDGET_SHARE`
/// bytes of input, and hold twice that while rewritten.
pub const BUDGET_SHARE: u64 = 4;

/// How [`compact`] chooses and writes files.
#[derive(Clone, Debug)]
pub struct CompactOptions {
    /// Files smaller than this are rewritten, into files of about this size.
    pub target_file_size: u64,
    /// Do nothing unless at least this many small files exist (in one partition).
    pub min_files: usize,
    /// zstd level of the new files.
    pub compression_level: i32,
    /// Rows per row group of the new files.
    pub row_group_size: usize,
    /// Only report what would be done.
    pub dry_run: bool,
    /// The memory budget to rewrite within (see the module docs); `None`: bins of `target_file_size` with no
    /// accounting (the CLI, a process of its own).
    pub memory: Option<Arc<MemoryBudget>>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            target_file_size: crate::config::DEFAULT_COMPACTION_TARGET_SIZE,
            min_files: 2,
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            row_group_size: crate::config::DEFAULT_ROW_GROUP_SIZE,
            dry_run: false,
            memory: None,
        }
    }
}

/// What [`compact`] did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    pub table: String,
    /// The table version compacted.
    pub read_version: u64,
    /// The version that committed the compaction, if one was made.
    pub committed_version: Option<u64>,
    pub files_removed: usize,
    pub bytes_removed: u64,
    pub files_added: usize,
    pub bytes_added: u64,
    pub rows_rewritten: u64,
    /// Bins left for the next round because the memory budget could not hold them now.
    pub bins_deferred: usize,
    pub dry_run: bool,
}

/// Compacts table `table` under `location` (a local path or object store URI, as in the exporter config).
pub async fn compact(
    location: &str,
    table: &str,
    storage_options: &HashMap<String, String>,
    options: &CompactOptions,
) -> Result<CompactReport> {
    let url = resolve_table_url(location, table)?;
    compact_table(&url, table, storage_options, options).await
}

/// The first step of [`compact`]: reads the table and writes the new files, commits nothing.
pub async fn prepare_compaction(
    location: &str,
    table: &str,
    storage_options: &HashMap<String, String>,
    options: &CompactOptions,
) -> Result<PreparedCompaction> {
    let url = resolve_table_url(location, table)?;
    prepare_table(&url, table, storage_options, options).await
}

/// A compaction whose files are written but not committed: [`PreparedCompaction::commit`] makes it one table
/// version (on top of whatever was committed since it was prepared); dropping it leaves the new files as
/// orphans for vacuum.
pub struct PreparedCompaction {
    table: DeltaTable,
    name: String,
    actions: Vec<Action>,
    target_file_size: u64,
    report: CompactReport,
}

impl PreparedCompaction {
    /// What was rewritten (`committed_version` is still `None`).
    pub fn report(&self) -> &CompactReport {
        &self.report
    }

    /// Commits the rewrite as one version on top of the latest one, provided every file it removes is still
    /// active there (see the module docs); a dry run or a table with nothing to compact commits nothing.
    pub async fn commit(self) -> Result<CompactReport> {
        let PreparedCompaction {
            mut table,
            name,
            actions,
            target_file_size,
            mut report,
        } = self;
        if report.dry_run || actions.is_empty() {
            return Ok(report);
        }
        let removed: HashSet<String> = actions
            .iter()
            .filter_map(|action| match action {
                Action::Remove(remove) => Some(remove.path.clone()),
                _ => None,
            })
            .collect();
        let operation = DeltaOperation::Optimize {
            predicate: None,
            target_size: i64::try_from(target_file_size).unwrap_or(i64::MAX),
        };
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let snapshot = table
                .snapshot()
                .map_err(|e| DeltaError::delta(&name, "reading", e))?;
            let base = snapshot.version();
            let active: HashSet<String> = snapshot
                .snapshot()
                .file_views(table.log_store().as_ref(), None)
                .map_ok(|view| view.path().into_owned())
                .try_collect()
                .await
                .map_err(|e| DeltaError::delta(&name, "listing the files of", e))?;
            let gone = removed.difference(&active).count();
            if gone > 0 {
                return Err(DeltaError::CompactionConflict {
                    table: name,
                    files: gone,
                });
            }
            // No rebase by delta-rs (max_retries 0): a commit made since `base` fails this one instead of
            // passing its conflict check, and the loop checks the files again on top of it.
            let committed = CommitBuilder::from(CommitProperties::default().with_max_retries(0))
                .with_actions(actions.clone())
                .build(Some(snapshot), table.log_store(), operation.clone())
                .await;
            match committed {
                Ok(finalized) => {
                    report.committed_version = Some(finalized.version());
                    return Ok(report);
                }
                Err(e) => {
                    table
                        .update_state()
                        .await
                        .map_err(|e| DeltaError::delta(&name, "reading", e))?;
                    let latest = table
                        .snapshot()
                        .map_err(|e| DeltaError::delta(&name, "reading", e))?
                        .version();
                    if latest == base {
                        return Err(DeltaError::delta(&name, "committing the compaction of", e));
                    }
                }
            }
        }
        Err(DeltaError::Incompatible {
            table: name,
            message: format!(
                "compaction not committed: the table changed during each of {MAX_COMMIT_ATTEMPTS} attempts"
            ),
        })
    }
}

/// Commit attempts of one compaction while other writers keep committing before it.
const MAX_COMMIT_ATTEMPTS: usize = 20;

struct Candidate {
    /// The path as the log records it (the key of its Remove action).
    path: String,
    /// The path in the table's object store.
    location: Path,
    size: u64,
}

/// [`compact`] for a table URL.
pub async fn compact_table(
    url: &Url,
    name: &str,
    storage_options: &HashMap<String, String>,
    options: &CompactOptions,
) -> Result<CompactReport> {
    prepare_table(url, name, storage_options, options)
        .await?
        .commit()
        .await
}

/// [`prepare_compaction`] for a table URL.
async fn prepare_table(
    url: &Url,
    name: &str,
    storage_options: &HashMap<String, String>,
    options: &CompactOptions,
) -> Result<PreparedCompaction> {
    let table = load_table(name, url, storage_options)
        .await?
        .ok_or_else(|| DeltaError::Incompatible {
            table: name.to_owned(),
            message: format!("no Delta table at {}", crate::table::redact(url)),
        })?;
    let snapshot = table
        .snapshot()
        .map_err(|e| DeltaError::delta(name, "reading", e))?;
    let mut report = CompactReport {
        table: name.to_owned(),
        read_version: snapshot.version(),
        dry_run: options.dry_run,
        ..CompactReport::default()
    };

    // Small files, grouped by partition (a rewrite never mixes partitions).
    let mut groups: BTreeMap<Vec<(String, Option<String>)>, Vec<Candidate>> = BTreeMap::new();
    let log_store = table.log_store();
    let views: Vec<_> = snapshot
        .snapshot()
        .file_views(log_store.as_ref(), None)
        .try_collect()
        .await
        .map_err(|e| DeltaError::delta(name, "listing the files of", e))?;
    let mut removes: HashMap<String, Remove> = HashMap::new();
    for view in &views {
        let size = u64::try_from(view.size()).unwrap_or(0);
        if size >= options.target_file_size {
            continue;
        }
        let mut partition: Vec<_> = view.partition_values_map().into_iter().collect();
        partition.sort();
        let path = view.path().into_owned();
        removes.insert(path.clone(), view.remove_action(false));
        groups.entry(partition).or_default().push(Candidate {
            path,
            location: view.object_store_path(),
            size,
        });
    }

    let bin_size = match &options.memory {
        Some(budget) => options.target_file_size.min(budget.limit() / BUDGET_SHARE),
        None => options.target_file_size,
    };
    let mut actions = Vec::new();
    for (partition, mut files) in groups {
        if files.len() < options.min_files.max(2) {
            continue;
        }
        files.sort_by_key(|f| f.size);
        for bin in bins(files, bin_size) {
            let bytes = bin.iter().map(|f| f.size).sum::<u64>();
            let _held = match &options.memory {
                Some(budget) if !options.dry_run => {
                    match budget.try_reserve(bytes.saturating_mul(2)) {
                        Some(reservation) => Some(reservation),
                        None => {
                            report.bins_deferred += 1;
                            continue;
                        }
                    }
                }
                _ => None,
            };
            report.files_removed += bin.len();
            report.bytes_removed += bytes;
            if options.dry_run {
                continue;
            }
            let (adds, rows) = rewrite(&table, name, &bin, &partition, options).await?;
            report.rows_rewritten += rows;
            for mut add in adds {
                add.data_change = false;
                report.files_added += 1;
                report.bytes_added += u64::try_from(add.size).unwrap_or(0);
                actions.push(Action::Add(add));
            }
            for file in &bin {
                if let Some(remove) = removes.remove(&file.path) {
                    actions.push(Action::Remove(remove));
                }
            }
        }
    }
    Ok(PreparedCompaction {
        table,
        name: name.to_owned(),
        actions,
        target_file_size: options.target_file_size,
        report,
    })
}

/// Groups files (smallest first) into bins of about `target` bytes; a bin of one file is left alone.
fn bins(files: Vec<Candidate>, target: u64) -> Vec<Vec<Candidate>> {
    let mut bins = Vec::new();
    let mut current: Vec<Candidate> = Vec::new();
    let mut size = 0;
    for file in files {
        if !current.is_empty() && size + file.size > target {
            bins.push(std::mem::take(&mut current));
            size = 0;
        }
        size += file.size;
        current.push(file);
    }
    bins.push(current);
    bins.retain(|b| b.len() > 1);
    bins
}

/// Streams the files of `bin` into new files; returns their Add actions (not yet committed) and the rows.
async fn rewrite(
    table: &DeltaTable,
    name: &str,
    bin: &[Candidate],
    partition: &[(String, Option<String>)],
    options: &CompactOptions,
) -> Result<(Vec<deltalake::kernel::Add>, u64)> {
    let level =
        ZstdLevel::try_new(options.compression_level).map_err(|e| DeltaError::Incompatible {
            table: name.to_owned(),
            message: format!("compression level: {e}"),
        })?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(options.row_group_size.max(1)))
        .build();
    let mut writer = RecordBatchWriter::for_table(table)
        .map_err(|e| DeltaError::delta(name, "preparing a writer for", e))?
        .with_writer_properties(properties);
    let store = table.object_store();
    let mut rows = 0u64;
    for file in bin {
        // Only small files are compacted: reading one whole into memory is fine and keeps this simple.
        let bytes = store
            .get(&file.location)
            .await
            .map_err(|e| DeltaError::delta(name, "reading", e.into()))?
            .bytes()
            .await
            .map_err(|e| DeltaError::delta(name, "reading", e.into()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| DeltaError::delta(name, "reading", e.into()))?;
        for batch in reader {
            let batch = batch.map_err(|e| DeltaError::delta(name, "reading", e.into()))?;
            let batch = with_partition_columns(batch, &writer.arrow_schema(), partition)
                .map_err(|e| DeltaError::delta(name, "rewriting", e.into()))?;
            rows += batch.num_rows() as u64;
            if let Err(e) = writer.write(batch).await {
                writer.reset();
                return Err(DeltaError::delta(name, "rewriting", e));
            }
        }
    }
    let adds = writer
        .flush()
        .await
        .map_err(|e| DeltaError::delta(name, "rewriting", e))?;
    Ok((adds, rows))
}

/// Data files of a partitioned table do not hold the partition columns: put them back (constant per file, from
/// the partition values of its Add action) so the writer sees whole rows and partitions them again.
fn with_partition_columns(
    batch: RecordBatch,
    table_schema: &SchemaRef,
    partition: &[(String, Option<String>)],
) -> std::result::Result<RecordBatch, ArrowError> {
    if partition.is_empty() {
        return Ok(batch);
    }
    let rows = batch.num_rows();
    let columns = table_schema
        .fields()
        .iter()
        .map(|field| {
            if let Some(column) = batch.column_by_name(field.name()) {
                return Ok(column.clone());
            }
            match partition.iter().find(|(k, _)| k == field.name()) {
                Some((_, Some(value))) => {
                    let text: ArrayRef = Arc::new(StringArray::from(vec![value.as_str(); rows]));
                    cast(&text, field.data_type())
                }
                Some((_, None)) => Ok(new_null_array(field.data_type(), rows)),
                None => Err(ArrowError::SchemaError(format!(
                    "a data file lacks column `{}`",
                    field.name()
                ))),
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(table_schema), columns)
}

/// How [`vacuum`] runs.
#[derive(Clone, Debug)]
pub struct VacuumOptions {
    /// Files unreferenced for longer than this are deleted. Default: the table's
    /// `delta.deletedFileRetentionDuration`, else 7 days.
    pub retention: Option<Duration>,
    /// Refuse a retention below the table's configured one (delta-rs' safety check).
    pub enforce_retention: bool,
    /// Only report what would be deleted.
    pub dry_run: bool,
}

impl Default for VacuumOptions {
    fn default() -> Self {
        VacuumOptions {
            retention: None,
            enforce_retention: true,
            dry_run: false,
        }
    }
}

/// What [`vacuum`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VacuumReport {
    pub table: String,
    /// Files deleted (or, in a dry run, that would be).
    pub files_deleted: Vec<String>,
    pub dry_run: bool,
}

/// Deletes files of table `table` under `location` that no version within the retention period references.
pub async fn vacuum(
    location: &str,
    table: &str,
    storage_options: &HashMap<String, String>,
    options: &VacuumOptions,
) -> Result<VacuumReport> {
    let url = resolve_table_url(location, table)?;
    let loaded = load_table(table, &url, storage_options)
        .await?
        .ok_or_else(|| DeltaError::Incompatible {
            table: table.to_owned(),
            message: format!("no Delta table at {}", crate::table::redact(&url)),
        })?;
    let mut builder = loaded
        .vacuum()
        .with_dry_run(options.dry_run)
        .with_enforce_retention_duration(options.enforce_retention);
    if let Some(retention) = options.retention {
        let retention =
            chrono::Duration::from_std(retention).map_err(|e| DeltaError::Incompatible {
                table: table.to_owned(),
                message: format!("retention: {e}"),
            })?;
        builder = builder.with_retention_period(retention);
    }
    let (_, metrics) = builder
        .await
        .map_err(|e| DeltaError::delta(table, "vacuuming", e))?;
    Ok(VacuumReport {
        table: table.to_owned(),
        files_deleted: metrics.files_deleted,
        dry_run: metrics.dry_run,
    })
}

/// What a table holds, from its log (no data file is read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableInfo {
    pub table: String,
    /// The latest table version.
    pub version: u64,
    /// Active data files and their total size.
    pub files: usize,
    pub bytes: u64,
    /// Rows, from the files' statistics.
    pub rows: u64,
}

/// Reads the latest state of table `table` under `location`.
pub async fn inspect(
    location: &str,
    table: &str,
    storage_options: &HashMap<String, String>,
) -> Result<TableInfo> {
    let url = resolve_table_url(location, table)?;
    let loaded = load_table(table, &url, storage_options)
        .await?
        .ok_or_else(|| DeltaError::Incompatible {
            table: table.to_owned(),
            message: format!("no Delta table at {}", crate::table::redact(&url)),
        })?;
    let snapshot = loaded
        .snapshot()
        .map_err(|e| DeltaError::delta(table, "reading", e))?;
    let log_store = loaded.log_store();
    let views: Vec<_> = snapshot
        .snapshot()
        .file_views(log_store.as_ref(), None)
        .try_collect()
        .await
        .map_err(|e| DeltaError::delta(table, "listing the files of", e))?;
    Ok(TableInfo {
        table: table.to_owned(),
        version: snapshot.version(),
        files: views.len(),
        bytes: views
            .iter()
            .map(|v| u64::try_from(v.size()).unwrap_or(0))
            .sum(),
        rows: views
            .iter()
            .map(|v| v.num_records().unwrap_or(0) as u64)
            .sum(),
    })
}
