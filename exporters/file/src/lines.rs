//! Whole lines only: appends lines to the exporter's file so that a reader never sees a line cut short.
//!
//! A write that fails halfway (a full disk, an I/O error) may leave part of a line in the file; the next
//! line would be glued onto it and neither would parse. [`Lines`] remembers the length of the file after the
//! last whole line and cuts the file back to it after a failed write, and again before the next append if
//! that cut failed too (until it succeeds, nothing is appended and every batch is answered retryable). At
//! start-up a tail left by a crash halfway through a line (never acknowledged: acknowledgements follow the
//! fsync of the whole line) is cut off the same way.

use std::io::{self, SeekFrom};
use std::path::Path;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// The file operations [`Lines`] needs: the seam a test uses to fail a write halfway.
#[async_trait]
pub(crate) trait LineFile: Send {
    /// Writes all of `bytes` at the end of the file and flushes them to the OS.
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    async fn sync_data(&mut self) -> io::Result<()>;
    async fn set_len(&mut self, len: u64) -> io::Result<()>;
}

#[async_trait]
impl LineFile for tokio::fs::File {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        AsyncWriteExt::write_all(self, bytes).await?;
        self.flush().await
    }

    async fn sync_data(&mut self) -> io::Result<()> {
        tokio::fs::File::sync_data(self).await
    }

    async fn set_len(&mut self, len: u64) -> io::Result<()> {
        tokio::fs::File::set_len(self, len).await
    }
}

/// A file opened for appending whole lines (see the module docs).
pub(crate) struct Lines<F> {
    file: F,
    /// The file's length after the last whole line.
    whole: u64,
    /// A failed write may have left part of a line after `whole`: cut it before appending.
    torn: bool,
}

impl Lines<tokio::fs::File> {
    /// Takes `file` (opened for appending at `path`), cutting a partial last line left by a crash.
    pub(crate) async fn open(file: tokio::fs::File, path: &Path) -> io::Result<Self> {
        let whole = whole_lines_length(path).await?;
        let torn = whole < file.metadata().await?.len();
        let mut lines = Lines { file, whole, torn };
        if torn {
            lines.cut_now().await?;
        }
        Ok(lines)
    }
}

impl<F: LineFile> Lines<F> {
    #[cfg(test)]
    pub(crate) fn new(file: F, whole: u64) -> Self {
        Lines {
            file,
            whole,
            torn: false,
        }
    }

    /// Appends `line` (ending in a newline) and makes it durable; on error the file holds none of it, or
    /// the part left is cut before the next append.
    pub(crate) async fn append(&mut self, line: &[u8]) -> io::Result<()> {
        if self.torn {
            self.cut_now().await?;
        }
        let written = async {
            self.file.write_all(line).await?;
            self.file.sync_data().await
        }
        .await;
        match written {
            Ok(()) => {
                self.whole += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.torn = true;
                // Best effort now; if it fails, the next append tries again first.
                let _ = self.cut_now().await;
                Err(e)
            }
        }
    }

    async fn cut_now(&mut self) -> io::Result<()> {
        self.file.set_len(self.whole).await?;
        self.file.sync_data().await?;
        self.torn = false;
        Ok(())
    }
}

/// The length of `path` up to and including its last newline (the whole file when it ends in one).
async fn whole_lines_length(path: &Path) -> io::Result<u64> {
    const STEP: u64 = 64 * 1024;
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let mut end = len;
    let mut buf = vec![0u8; STEP as usize];
    while end > 0 {
        let start = end.saturating_sub(STEP);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).await?;
        file.read_exact(chunk).await?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// `create_dir_all`, then fsyncs each directory it created and the parent of the first one, so the new
/// entries survive a crash (a file's own fsync does not persist its directory entry).
pub(crate) async fn create_dir_all_durably(dir: &Path) -> io::Result<()> {
    let mut existing = dir;
    let mut created = Vec::new();
    while !tokio::fs::try_exists(existing).await? {
        created.push(existing.to_path_buf());
        match existing.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    tokio::fs::create_dir_all(dir).await?;
    for path in created.iter().rev() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).await?;
        }
    }
    Ok(())
}

/// Fsyncs a directory, which persists the entries created in it.
pub(crate) async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}
