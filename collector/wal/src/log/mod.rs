//! [`Wal`]: the log itself, a directory of segment files holding numbered records, with group commit,
//! recovery that skips torn or corrupt bytes and keeps every intact record, and truncation by whole segments.
//!
//! ```text
//!  <directory>/
//!    LOCK                         held (flock) while a process has the log open: one writer at a time
//!    checkpoint                   "first sequence not yet delivered" (text); entries below it are never replayed
//!    00000001763840000000001.wal  segment: MAGIC + records; named by the sequence of its first record
//!    00000001763840000004711.wal  the active segment (the last one): appends go here
//! ```
//! Lifecycle: [`Wal::open`] recovers what is on disk (reporting damage), then always starts a fresh active
//! segment, so bytes after a damaged record are never appended to; [`Wal::commit`] appends a [`Group`] of
//! records with one write and (with `fsync`) one `fdatasync`; [`Wal::truncate`] records the delivery
//! checkpoint and deletes segments whose every record is below it.
//!
//! Guarantees:
//! - a record returned by `commit` is on disk (fsynced when `fsync` is on, else in the page cache, which
//!   survives a killed process but not a power loss);
//! - a failed append leaves nothing behind: the segment is cut back to its length before the write, or, if
//!   even that fails, abandoned for a new one (the next recovery reports and skips its tail);
//! - sequences only grow, also across restarts and an emptied log; a new log starts at the current time in
//!   microseconds since the Unix epoch, so a log that is deleted and created again numbers above the old one
//!   (which is what makes the Delta exporter's `txn` skip-if-committed safe; see the README).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, WalError};
use crate::frame::{HEADER_LEN, MAGIC, MAX_BODY_LEN, seal};

mod checkpoint;
mod group;
mod reader;
mod recover;
mod scan;
mod segment;

use checkpoint::write_checkpoint;
pub use group::Group;
pub use reader::Reader;
pub use recover::{DAMAGED_DIR, Recovery};
use recover::{Recovered, recover};
pub use scan::Damage;
pub use segment::{Location, RecoveredEntry};
use segment::{Segment, new_segment_file, remove, segment_name};

const LOCK_FILE: &str = "LOCK";

/// Where and how the log keeps its data.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// The log's own directory (created if missing).
    pub dir: PathBuf,
    /// The most bytes all segment files together may take; appends beyond are refused ([`WalError::Full`]).
    pub max_bytes: u64,
    /// A segment is closed and a new one started once it holds this many bytes.
    pub segment_bytes: u64,
    /// `fdatasync` each group before `commit` returns (else the data is only in the page cache).
    pub fsync: bool,
}

/// The write-ahead log. See the module docs.
pub struct Wal {
    options: WalOptions,
    /// Oldest first; the last one is the active segment.
    segments: VecDeque<Segment>,
    active: File,
    /// The active segment could not be cut back after a failed write: start a new one before appending.
    active_broken: bool,
    next_sequence: u64,
    total_bytes: u64,
    /// First sequence not yet delivered, as last written to the checkpoint file.
    checkpoint: u64,
    /// Held open for the flock.
    _lock: File,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.options.dir)
            .field("segments", &self.segments.len())
            .field("next_sequence", &self.next_sequence)
            .field("total_bytes", &self.total_bytes)
            .finish()
    }
}

impl Wal {
    /// Opens (or creates) the log in `options.dir`, recovers it and starts a fresh active segment.
    pub fn open(options: WalOptions) -> Result<(Wal, Recovery)> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir).map_err(WalError::io(&dir, "creating the directory"))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(WalError::io(&lock_path, "opening the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(WalError::Locked { path: dir }),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(WalError::io(&lock_path, "locking")(e));
            }
        }
        let Recovered {
            segments,
            recovery,
            next_sequence,
            checkpoint,
        } = recover(&dir)?;
        let total_bytes = segments.iter().map(|s| s.len).sum();
        let mut wal = Wal {
            active: new_segment_file(&dir, next_sequence, options.fsync)?,
            options,
            segments,
            active_broken: false,
            next_sequence,
            total_bytes,
            checkpoint,
            _lock: lock,
        };
        wal.push_active(next_sequence);
        Ok((wal, recovery))
    }

    fn push_active(&mut self, first: u64) {
        self.segments.push_back(Segment {
            first,
            path: self.options.dir.join(segment_name(first)),
            len: MAGIC.len() as u64,
        });
        self.total_bytes += MAGIC.len() as u64;
    }

    /// The sequence the next record will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Bytes all segment files take.
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The largest record (header and body) the log can ever hold: all of `max_bytes` but one segment's
    /// format header, and no more than the framing can describe.
    pub fn record_capacity(&self) -> u64 {
        self.options
            .max_bytes
            .saturating_sub(MAGIC.len() as u64)
            .min((HEADER_LEN + MAX_BODY_LEN) as u64)
    }

    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// Appends every record of `group` with one write and (with `fsync`) one sync; returns each record's
    /// sequence and location, in order. On error nothing of the group is in the log.
    pub fn commit(&mut self, mut group: Group) -> Result<Vec<RecoveredEntry>> {
        if group.is_empty() {
            return Ok(Vec::new());
        }
        // A record that could not fit even into an empty log is refused for good, not "full" for ever.
        let capacity = self.record_capacity();
        if let Some(too_large) = (0..group.len())
            .map(|i| (HEADER_LEN + group.body_len(i)) as u64)
            .find(|&len| len > capacity)
        {
            return Err(WalError::TooLarge {
                path: self.options.dir.clone(),
                record_bytes: too_large,
                max_bytes: self.options.max_bytes,
            });
        }
        let needed = group.bytes() as u64;
        if self.total_bytes + needed > self.options.max_bytes {
            return Err(WalError::Full {
                path: self.options.dir.clone(),
                used: self.total_bytes,
                needed,
                max_bytes: self.options.max_bytes,
            });
        }
        let active_len = self.segments.back().map_or(0, |s| s.len);
        if self.active_broken || active_len >= self.options.segment_bytes {
            self.roll()?;
        }
        let Some(active) = self.segments.back() else {
            return Err(WalError::Corrupt {
                path: self.options.dir.clone(),
                offset: 0,
                reason: "no active segment".into(),
            });
        };
        let (segment, offset, path) = (active.first, active.len, active.path.clone());
        let mut entries = Vec::with_capacity(group.len());
        for i in 0..group.len() {
            let body_len = group.body_len(i);
            let sequence = self.next_sequence + i as u64;
            let start = group.starts[i];
            seal(
                &mut group.buf[..start + HEADER_LEN + body_len],
                start,
                sequence,
            );
            entries.push(RecoveredEntry {
                sequence,
                location: Location {
                    segment,
                    offset: offset + start as u64,
                    body_len: body_len as u32,
                },
            });
        }
        let written = self
            .active
            .write_all_at(&group.buf, offset)
            .map_err(WalError::io(&path, "appending"))
            .and_then(|()| {
                if self.options.fsync {
                    self.active
                        .sync_data()
                        .map_err(WalError::io(&path, "syncing"))
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            // Leave nothing half-written behind: cut the segment back, or give it up if even that fails.
            if self.active.set_len(offset).is_err() {
                self.active_broken = true;
                // Records of the group may have landed intact: their numbers are never given out again.
                self.next_sequence += group.len() as u64;
            }
            return Err(e);
        }
        if let Some(active) = self.segments.back_mut() {
            active.len += needed;
        }
        self.total_bytes += needed;
        self.next_sequence += group.len() as u64;
        Ok(entries)
    }

    /// Closes the active segment and starts a new one at the next sequence.
    fn roll(&mut self) -> Result<()> {
        let file = new_segment_file(&self.options.dir, self.next_sequence, self.options.fsync)?;
        self.active = file;
        self.active_broken = false;
        self.push_active(self.next_sequence);
        Ok(())
    }

    /// Records that every sequence below `first_undelivered` reached the destination: writes the checkpoint
    /// and deletes the segments holding only such records. Returns how many segments were deleted.
    pub fn truncate(&mut self, first_undelivered: u64) -> Result<usize> {
        let first_undelivered = first_undelivered.min(self.next_sequence);
        if first_undelivered > self.checkpoint {
            write_checkpoint(&self.options.dir, first_undelivered, self.options.fsync)?;
            self.checkpoint = first_undelivered;
        }
        let mut removed = 0;
        // A segment's records all lie below the next segment's first sequence; the active one always stays.
        while self.segments.len() > 1 && self.segments[1].first <= first_undelivered {
            if let Some(segment) = self.segments.pop_front() {
                remove(&segment.path)?;
                self.total_bytes -= segment.len;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A reader for this log's records (it opens the segment files on its own).
    pub fn reader(&self) -> Reader {
        Reader::new(self.options.dir.clone())
    }
}

#[cfg(test)]
mod tests;
