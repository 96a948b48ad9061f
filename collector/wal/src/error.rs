//! The errors of the write-ahead log, each with the file or setting it concerns.

use std::path::PathBuf;

/// What went wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// File-system I/O failed (disk full, permission, a vanished directory).
    #[error("write-ahead log {path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// Appending would take the log past `max_bytes`: the destination is behind.
    #[error(
        "write-ahead log {path} is full ({used} of {max_bytes} bytes used, {needed} more needed): the destination is behind"
    )]
    Full {
        path: PathBuf,
        used: u64,
        needed: u64,
        max_bytes: u64,
    },
    /// The log holds as many undelivered entries as it may index in memory: the destination is behind.
    #[error(
        "write-ahead log {path} holds {entries} entries, its most ({max_entries} entries): the destination is behind"
    )]
    TooManyEntries {
        path: PathBuf,
        entries: u64,
        max_entries: u64,
    },
    /// One record is larger than the whole log may ever be: it is refused for good (retrying cannot help).
    #[error(
        "write-ahead log {path}: a request of {record_bytes} bytes (as logged) is larger than the log's sending_queue.max_bytes of {max_bytes} bytes; send smaller requests or raise max_bytes"
    )]
    TooLarge {
        path: PathBuf,
        record_bytes: u64,
        max_bytes: u64,
    },
    /// Another process holds the log directory.
    #[error("write-ahead log {path} is in use by another otlake process")]
    Locked { path: PathBuf },
    /// The log's identity file is unreadable (see `identity`).
    #[error("write-ahead log identity {path}: {reason}")]
    Identity { path: PathBuf, reason: String },
    /// A record read back does not match what was written (checksum, sequence or framing).
    #[error("write-ahead log {path}: corrupt record at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl WalError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> WalError {
        let path = path.into();
        move |source| WalError::Io {
            path,
            action,
            source,
        }
    }

    /// Whether trying again later can succeed (space may free up, a transient I/O error may pass).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            WalError::Io { .. } | WalError::Full { .. } | WalError::TooManyEntries { .. }
        )
    }
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;
