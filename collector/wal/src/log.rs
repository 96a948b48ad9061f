//! [`Wal`]: the log itself, a directory of segment files holding numbered records, with group commit,
//! recovery that detects a torn or corrupt tail, and truncation by whole segments.
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
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, WalError};
use crate::frame::{HEADER_LEN, Header, MAGIC, MAX_BODY_LEN, checksum, seal};

const LOCK_FILE: &str = "LOCK";
const CHECKPOINT_FILE: &str = "checkpoint";
const SEGMENT_SUFFIX: &str = ".wal";

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

/// A record that recovery found intact and not yet delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveredEntry {
    pub sequence: u64,
    pub location: Location,
}

/// Bytes that recovery could not read and skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub segment: PathBuf,
    /// Where the first bad record starts.
    pub offset: u64,
    /// Bytes skipped from `offset` to the end of the segment.
    pub bytes_skipped: u64,
    pub reason: String,
}

/// What [`Wal::open`] found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Intact records not yet delivered, in sequence order: what must be replayed.
    pub entries: Vec<RecoveredEntry>,
    /// Damaged tails that were skipped (a torn write after a power loss, or corruption).
    pub damage: Vec<Damage>,
    /// Segments deleted because everything in them had been delivered.
    pub segments_removed: usize,
}

/// Records to append together (group commit). Bodies are written straight into one buffer: the only copy.
#[derive(Debug, Default)]
pub struct Group {
    buf: Vec<u8>,
    /// (header offset in `buf`) per record.
    starts: Vec<usize>,
}

impl Group {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one record whose body `write_body` appends to the buffer it is given.
    pub fn push(&mut self, write_body: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        self.buf.resize(start + HEADER_LEN, 0);
        write_body(&mut self.buf);
        self.starts.push(start);
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Bytes the group takes on disk.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    fn body_len(&self, i: usize) -> usize {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.buf.len());
        end - self.starts[i] - HEADER_LEN
    }
}

struct Segment {
    first: u64,
    path: PathBuf,
    len: u64,
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

fn segment_name(first: u64) -> String {
    format!("{first:020}{SEGMENT_SUFFIX}")
}

/// Microseconds since the Unix epoch: where a brand-new log starts numbering.
fn clock_base() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
        .unwrap_or(1)
        .max(1)
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
        let checkpoint = read_checkpoint(&dir)?;

        let mut found = list_segments(&dir)?;
        found.sort_by_key(|s| s.first);
        let mut recovery = Recovery::default();
        let mut next_sequence = checkpoint.unwrap_or(0);
        let mut kept = VecDeque::new();
        for segment in found {
            let scan = scan_segment(&segment)?;
            if let Some(damage) = scan.damage {
                recovery.damage.push(damage);
            }
            // The end of what the segment holds: one past its last intact record.
            let end = scan
                .entries
                .last()
                .map_or(segment.first, |e| e.sequence + 1);
            next_sequence = next_sequence.max(end).max(segment.first);
            let delivered = checkpoint.unwrap_or(0);
            if end <= delivered || scan.entries.is_empty() {
                remove(&segment.path)?;
                recovery.segments_removed += 1;
                continue;
            }
            recovery
                .entries
                .extend(scan.entries.into_iter().filter(|e| e.sequence >= delivered));
            kept.push_back(segment);
        }
        if next_sequence == 0 {
            next_sequence = clock_base();
        }
        let total_bytes = kept.iter().map(|s| s.len).sum();
        let checkpoint = checkpoint.unwrap_or(
            next_sequence.min(
                recovery
                    .entries
                    .first()
                    .map_or(next_sequence, |e| e.sequence),
            ),
        );
        let mut wal = Wal {
            active: new_segment_file(&dir, next_sequence, options.fsync)?,
            options,
            segments: kept,
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

    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// Appends every record of `group` with one write and (with `fsync`) one sync; returns each record's
    /// sequence and location, in order. On error nothing of the group is in the log.
    pub fn commit(&mut self, mut group: Group) -> Result<Vec<RecoveredEntry>> {
        if group.is_empty() {
            return Ok(Vec::new());
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
            if body_len > MAX_BODY_LEN {
                return Err(WalError::Full {
                    path: self.options.dir.clone(),
                    used: self.total_bytes,
                    needed: body_len as u64,
                    max_bytes: MAX_BODY_LEN as u64,
                });
            }
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
        Reader {
            dir: self.options.dir.clone(),
            open: None,
        }
    }
}

/// Reads records back by [`Location`], checking them as recovery does.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    /// The segment last read from, kept open for the next read (replay reads segments in order).
    open: Option<(u64, File)>,
}

impl Reader {
    /// The body of record `sequence` at `location`.
    pub fn read(&mut self, sequence: u64, location: Location) -> Result<Vec<u8>> {
        let path = self.dir.join(segment_name(location.segment));
        if self
            .open
            .as_ref()
            .is_none_or(|(s, _)| *s != location.segment)
        {
            let file = File::open(&path).map_err(WalError::io(&path, "opening for replay"))?;
            self.open = Some((location.segment, file));
        }
        let Some((_, file)) = &self.open else {
            return Err(WalError::Corrupt {
                path,
                offset: location.offset,
                reason: "segment not open".into(),
            });
        };
        let mut record = vec![0u8; HEADER_LEN + location.body_len as usize];
        file.read_exact_at(&mut record, location.offset)
            .map_err(WalError::io(&path, "reading"))?;
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&record[..HEADER_LEN]);
        let header = Header::parse(&header);
        let body = record.split_off(HEADER_LEN);
        let reason = if header.sequence != sequence {
            Some(format!(
                "sequence {} where {sequence} was expected",
                header.sequence
            ))
        } else if header.body_len != body.len() || header.crc != checksum(sequence, &body) {
            Some("checksum mismatch".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(WalError::Corrupt {
                path,
                offset: location.offset,
                reason,
            }),
            None => Ok(body),
        }
    }
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io(path, "deleting a delivered segment")(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WalError::io(dir, "syncing the directory"))
}

fn new_segment_file(dir: &Path, first: u64, fsync: bool) -> Result<File> {
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

fn read_checkpoint(dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(CHECKPOINT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(WalError::io(&path, "reading the checkpoint")(e)),
    }
}

fn write_checkpoint(dir: &Path, first_undelivered: u64, fsync: bool) -> Result<()> {
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

fn list_segments(dir: &Path) -> Result<Vec<Segment>> {
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

struct Scan {
    entries: Vec<RecoveredEntry>,
    damage: Option<Damage>,
}

/// Reads a segment from the start and keeps every intact record up to the first bad one.
fn scan_segment(segment: &Segment) -> Result<Scan> {
    let path = &segment.path;
    let file = File::open(path).map_err(WalError::io(path, "opening for recovery"))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut entries = Vec::new();
    let damage_at = |offset: u64, reason: String| Damage {
        segment: path.clone(),
        offset,
        bytes_skipped: segment.len.saturating_sub(offset),
        reason,
    };
    if segment.len < MAGIC.len() as u64 {
        // Created but never written (a crash right after creating it): nothing was in it.
        let damage =
            (segment.len > 0).then(|| damage_at(0, "segment shorter than its header".into()));
        return Ok(Scan { entries, damage });
    }
    let mut magic = [0u8; 8];
    reader
        .read_exact(&mut magic)
        .map_err(WalError::io(path, "reading"))?;
    if &magic != MAGIC {
        return Ok(Scan {
            entries,
            damage: Some(damage_at(
                0,
                "not an otlake log segment (bad header)".into(),
            )),
        });
    }
    let mut offset = MAGIC.len() as u64;
    let mut expected = segment.first;
    let mut body = Vec::new();
    while offset < segment.len {
        let remaining = segment.len - offset;
        if remaining < HEADER_LEN as u64 {
            let damage = damage_at(offset, format!("torn record header ({remaining} bytes)"));
            return Ok(Scan {
                entries,
                damage: Some(damage),
            });
        }
        let mut header = [0u8; HEADER_LEN];
        reader
            .read_exact(&mut header)
            .map_err(WalError::io(path, "reading"))?;
        let header = Header::parse(&header);
        let record_len = (HEADER_LEN + header.body_len) as u64;
        let problem = if header.body_len == 0 {
            Some("empty record (zeroed bytes?)".to_owned())
        } else if record_len > remaining {
            Some(format!(
                "torn record: {} body bytes announced, {} present",
                header.body_len,
                remaining - HEADER_LEN as u64
            ))
        } else if header.sequence != expected {
            Some(format!(
                "sequence {} where {expected} was expected",
                header.sequence
            ))
        } else {
            body.resize(header.body_len, 0);
            reader
                .read_exact(&mut body)
                .map_err(WalError::io(path, "reading"))?;
            (header.crc != checksum(header.sequence, &body)).then(|| "checksum mismatch".to_owned())
        };
        if let Some(reason) = problem {
            return Ok(Scan {
                entries,
                damage: Some(damage_at(offset, reason)),
            });
        }
        entries.push(RecoveredEntry {
            sequence: header.sequence,
            location: Location {
                segment: segment.first,
                offset,
                body_len: header.body_len as u32,
            },
        });
        offset += record_len;
        expected += 1;
    }
    Ok(Scan {
        entries,
        damage: None,
    })
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
