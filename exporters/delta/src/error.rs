//! The one error type of this crate.
//!
//! Every variant carries the table (or location) it is about, so an operator reading a log line knows where to
//! look. [`DeltaError::is_retryable`] decides what a client is told: a failure that a later attempt may not hit
//! (storage unreachable, commit conflict, I/O) is retryable; data that can never be written as sent is not.

use deltalake::DeltaTableError;

/// What went wrong while opening, writing or maintaining an OTel table.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// The location or a table URL could not be understood.
    #[error("invalid table location `{location}`: {message}")]
    Location { location: String, message: String },

    /// The table exists with a schema other than the one otlake writes.
    #[error("table {table} exists with another schema: {difference}")]
    SchemaMismatch { table: String, difference: String },

    /// The table exists but is not an otlake OTel table of the configured schema version.
    #[error("table {table}: {message}")]
    Incompatible { table: String, message: String },

    /// Converting OTLP data into Arrow columns failed (a bug or a data shape we cannot represent).
    #[error("converting {signal} into Arrow for table {table}: {message}")]
    Convert {
        table: String,
        signal: &'static str,
        message: String,
    },

    /// delta-rs reported an error (storage, log, commit).
    #[error("{action} table {table}: {source}")]
    Delta {
        table: String,
        action: &'static str,
        #[source]
        source: Box<DeltaTableError>,
    },

    /// A sequence number went backwards or does not fit a Delta transaction version.
    #[error("table {table}: {message}")]
    Sequence { table: String, message: String },

    /// A compaction found files it rewrote already removed by a commit made since it read the table (another
    /// compaction, a delete): committing would have put their rows in the table twice.
    #[error(
        "table {table}: {files} of the files this compaction rewrote were removed since it read the table \
         (another compaction?); nothing committed, its new files are left for vacuum"
    )]
    CompactionConflict { table: String, files: usize },

    /// A background worker is gone (the exporter is shutting down).
    #[error("table {table}: writer stopped")]
    WriterStopped { table: String },
}

impl DeltaError {
    /// Wraps a delta-rs error with the table and what was being done.
    pub fn delta(table: &str, action: &'static str, source: DeltaTableError) -> Self {
        DeltaError::Delta {
            table: table.to_owned(),
            action,
            source: Box::new(source),
        }
    }

    /// Whether sending the same data again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeltaError::Delta { .. }
            | DeltaError::WriterStopped { .. }
            | DeltaError::CompactionConflict { .. } => true,
            DeltaError::Location { .. }
            | DeltaError::SchemaMismatch { .. }
            | DeltaError::Incompatible { .. }
            | DeltaError::Convert { .. }
            | DeltaError::Sequence { .. } => false,
        }
    }
}

pub type Result<T, E = DeltaError> = std::result::Result<T, E>;
