//! Names of the daemon's own metrics, in one place so that every component reports under the same names.
//! The service exposes them in Prometheus format (`service.telemetry.metrics.address`).

/// Items a receiver accepted (acknowledged as delivered), labels `receiver`, `signal`.
pub const RECEIVER_ACCEPTED: &str = "otlake_receiver_accepted_items_total";
/// Items a receiver refused or answered with a retryable error, labels `receiver`, `signal`, `reason`.
pub const RECEIVER_REFUSED: &str = "otlake_receiver_refused_items_total";
/// Items an exporter made durable, labels `exporter`, `signal`.
pub const EXPORTER_SENT: &str = "otlake_exporter_sent_items_total";
/// Items an exporter failed to deliver, labels `exporter`, `signal`.
pub const EXPORTER_FAILED: &str = "otlake_exporter_failed_items_total";
/// Batches waiting in front of a stage, label `stage`.
pub const QUEUE_DEPTH: &str = "otlake_queue_depth_batches";
/// Items a processor dropped or changed on purpose, labels `processor`, `signal`, `reason`.
pub const PROCESSOR_DROPPED: &str = "otlake_processor_dropped_items_total";
pub const PROCESSOR_TRUNCATED: &str = "otlake_processor_truncated_items_total";
/// Bytes an exporter's write-ahead log takes on disk, label `exporter`.
pub const WAL_BYTES: &str = "otlake_wal_bytes";
/// Entries in an exporter's write-ahead log not yet delivered, label `exporter`.
pub const WAL_ENTRIES: &str = "otlake_wal_entries";
/// Bytes of a write-ahead log skipped as damaged at start-up (torn or corrupt tail), label `exporter`.
pub const WAL_DAMAGED_BYTES: &str = "otlake_wal_damaged_bytes_total";
/// Entries dropped from a write-ahead log without delivery (refused for good, or unreadable), label `exporter`.
pub const WAL_DROPPED: &str = "otlake_wal_dropped_entries_total";
/// Failed write-ahead log operations that are tried again (nothing is lost yet), labels `exporter`, `operation`
/// (`read_back`: an entry could not be read back to be sent; `truncate`: delivered entries could not be cut).
pub const WAL_IO_ERRORS: &str = "otlake_wal_io_errors_total";

use crate::{ComponentId, Outcome, Signal};

/// Counts an exporter's result for `items` items of `signal`.
pub fn record_export(exporter: &ComponentId, signal: Signal, items: usize, outcome: &Outcome) {
    let name = match outcome {
        Outcome::Delivered => EXPORTER_SENT,
        _ => EXPORTER_FAILED,
    };
    metrics::counter!(name, "exporter" => exporter.to_string(), "signal" => signal.as_str())
        .increment(items as u64);
}
