//! The `checkpoint` file: the first sequence not yet delivered, as text, replaced atomically by rename.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Result, WalError};

const CHECKPOINT_FILE: &str = "checkpoint";

/// The checkpoint, if one was ever written (an unreadable one counts as none: replay then starts earlier,
/// which the destination deduplicates or takes twice, never loses).
pub(crate) fn read_checkpoint(dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(CHECKPOINT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(WalError::io(&path, "reading the checkpoint")(e)),
    }
}

pub(crate) fn write_checkpoint(dir: &Path, first_undelivered: u64, fsync: bool) -> Result<()> {
    let path = dir.join(CHECKPOINT_FILE);
    let tmp = dir.join("checkpoint.tmp");
    let write = || -> std::io::Result<()> {
        let file = File::create(&tmp)?;
        file.write_all_at(format!("{first_undelivered}\n").as_bytes(), 0)?;
        if fsync {
            file.sync_data()?;
        }
        std::fs::rename(&tmp, &path)
    };
    write().map_err(WalError::io(&path, "writing the checkpoint"))
}
