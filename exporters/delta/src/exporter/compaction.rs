//! Background compaction of one table, next to its writer (compaction only rewrites committed files).

use std::collections::HashMap;
use std::sync::Arc;

use otlake_core::{ComponentId, MemoryBudget};
use tracing::{info, warn};

use crate::config::CompactionSchedule;
use crate::maintenance::{CompactOptions, compact_table};

/// Compacts one table on a schedule, next to the writer (compaction only rewrites committed files).
pub(super) async fn compaction_loop(
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
            // Inside the daemon: within its memory budget (see `maintenance`).
            memory: Some(Arc::clone(MemoryBudget::global())),
            ..CompactOptions::default()
        };
        match compact_table(&url, &table, &storage_options, &options).await {
            Ok(report) if report.files_removed > 0 || report.bins_deferred > 0 => {
                info!(exporter = %exporter, table, files_removed = report.files_removed,
                    files_added = report.files_added, bins_deferred = report.bins_deferred, "Compacted.");
            }
            Ok(_) => {}
            Err(e) => {
                warn!(exporter = %exporter, table, error = %e, "Compaction failed; will try again.")
            }
        }
    }
}
