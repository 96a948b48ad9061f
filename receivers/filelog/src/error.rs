//! The receiver's errors. Data never ends up here: a line that does not parse follows its operator's
//! `on_error`, and a batch that is not delivered is read again. What is here stops the receiver or is logged.

use std::path::{Path, PathBuf};

/// What can go wrong outside the data.
#[derive(Debug, thiserror::Error)]
pub enum FilelogError {
    /// File-system I/O on `path` failed while `context`.
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file cannot be read as checkpoints (it is never half-written: see `checkpoint`).
    #[error("the checkpoint file {path} is unreadable ({message}); move it away to start over")]
    Corrupt { path: PathBuf, message: String },
}

impl FilelogError {
    pub fn io(context: &'static str, path: &Path, source: std::io::Error) -> Self {
        FilelogError::Io {
            context,
            path: path.to_owned(),
            source,
        }
    }

    /// Whether trying again later may succeed (a full disk, a transient error), as opposed to a file that
    /// needs an operator.
    pub fn is_retryable(&self) -> bool {
        matches!(self, FilelogError::Io { .. })
    }
}
