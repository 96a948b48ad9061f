//! Segment files on disk: their names, creation (with the format header), listing and deletion, and where a
//! record sits in one ([`Location`]). The lowest level of the log: nothing here knows about sequences beyond
//! a segment's first one, which is its name.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, WalError};
use crate::frame::MAGIC;

const SEGMENT_SUFFIX: &str = ".wal";

/// Where one record is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The segment's first sequence (its file name).
    pub segment: u64,
    /// Offset of the record's header in the segment file.
    pub offset: u64,
    /// Length of the record's body.
    pub body_len: u32,
}

/// A record that recovery found intact and not yet delivered (or that an append just wrote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveredEntry {
    pub sequence: u64,
    pub location: Location,
}

/// One segment file of the log.
pub(crate) struct Segment {
    pub(crate) first: u64,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
}

pub(crate) fn segment_name(first: u64) -> String {
    format!("{first:020}{SEGMENT_SUFFIX}")
}

/// Every segment file in `dir` (unsorted); other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<Segment>> {
    let mut segments = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(WalError::io(dir, "listing"))?;
    for entry in entries {
        let entry = entry.map_err(WalError::io(dir, "listing"))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let path = entry.path();
        let len = entry
            .metadata()
            .map_err(WalError::io(&path, "reading the size of"))?
            .len();
        segments.push(Segment { first, path, len });
    }
    Ok(segments)
}

/// Creates segment `first` holding only the format header (synced, with its directory entry, under `fsync`).
pub(crate) fn new_segment_file(dir: &Path, first: u64, fsync: bool) -> Result<File> {
    let path = dir.join(segment_name(first));
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(WalError::io(&path, "creating a segment"))?;
    let written = file
        .write_all_at(MAGIC, 0)
        .and_then(|()| if fsync { file.sync_data() } else { Ok(()) });
    if let Err(e) = written {
        // Do not leave an empty file that looks like a log.
        let _ = std::fs::remove_file(&path);
        return Err(WalError::io(&path, "creating a segment")(e));
    }
    if fsync {
        sync_dir(dir)?;
    }
    Ok(file)
}

pub(crate) fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io(path, "deleting a delivered segment")(e)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WalError::io(dir, "syncing the directory"))
}
