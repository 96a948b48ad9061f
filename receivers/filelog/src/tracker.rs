//! [`Tracker`]: which files exist, who they are, how far each is read, emitted and delivered.
//!
//! A file is known by its **fingerprint**, its first `fingerprint_size` bytes (as the Collector does), not by its
//! path: a file renamed by rotation keeps its fingerprint and is read on from where it was; a file truncated in
//! place (copy-truncate) gets a new fingerprint and is read from its start, while its copy (if the include
//! patterns match it) carries the old fingerprint and is read on from the old offset. A file that vanishes
//! from the patterns (deleted, or rotated out of them) is read to its end through the handle opened before,
//! then forgotten once everything read from it is delivered.
//!
//! Three offsets per file, in this order: *delivered* ≤ *emitted* ≤ *read*. Read is where the next read
//! starts (the splitter's position). Emitted is the end of the last entry that left the operators into a
//! batch. Delivered (the checkpoint) is the start of the oldest batch range not yet acknowledged, or emitted if
//! none is in flight. A batch that fails rewinds its files to the start of its range: the splitter and the
//! operators start again from there and the lines are read again (at least once, never lost).
//!
//! Everything here is synchronous file I/O; the receiver runs [`Tracker::poll`] on a blocking thread.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use serde_json::{Map, Value};

use crate::batch::Builder;
use crate::checkpoint::{Checkpoint, from_hex, to_hex};
use crate::config::StartAt;
use crate::entry::Entry;
use crate::operators::{Chain, Compiled};
use crate::splitter::{Piece, SplitOptions, Splitter};

/// Bytes read from a file in one call.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes read from one file before the next file gets its turn (fairness between busy files).
const VISIT_BYTES: u64 = 1 << 20;
/// Polls a file may be missing from the patterns before it is forgotten (once nothing of it is in flight).
const FORGET_AFTER_POLLS: u32 = 3;

/// What the tracker needs from the configuration.
pub struct Settings {
    pub include: Vec<String>,
    pub exclude: Vec<glob::Pattern>,
    pub fingerprint_size: usize,
    pub start_at: StartAt,
    pub max_concurrent_files: usize,
    pub split: SplitOptions,
    pub operators: Compiled,
    pub force_flush: Duration,
    pub file_name: bool,
    pub file_path: bool,
    pub file_name_resolved: bool,
    pub file_path_resolved: bool,
    pub attributes: Map<String, Value>,
    pub resource: Map<String, Value>,
}

/// How much one poll may prepare.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub batches: usize,
    pub records: usize,
    pub bytes: usize,
}

/// A batch ready to send.
pub struct Prepared {
    pub id: u64,
    pub request: ExportLogsServiceRequest,
    pub records: usize,
    pub bytes: usize,
}

struct TrackedFile {
    fingerprint: Vec<u8>,
    path: PathBuf,
    handle: Option<File>,
    splitter: Splitter,
    chain: Chain,
    emitted: u64,
    /// Batch id → the range of offsets its entries of this file cover.
    inflight: BTreeMap<u64, (u64, u64)>,
    /// When bytes last arrived (for `force_flush_period`).
    last_read: Instant,
    /// Whether what is held has been force-flushed since the last bytes arrived.
    flushed: bool,
    /// Polls in a row this file was not among the matched files.
    unseen: u32,
    /// After a failed delivery: not read again before this.
    paused_until: Option<Instant>,
    /// Attributes every entry of this file gets (`log.file.*` and the configured ones).
    attributes: Map<String, Value>,
}

impl TrackedFile {
    fn delivered(&self) -> u64 {
        self.inflight
            .values()
            .map(|r| r.0)
            .min()
            .map_or(self.emitted, |s| s.min(self.emitted))
    }

    fn rewind(&mut self, offset: u64, operators: &Compiled) {
        self.splitter = Splitter::new(offset);
        self.chain = operators.chain();
        self.emitted = offset;
        self.flushed = false;
    }

    fn idle(&self) -> bool {
        self.inflight.is_empty() && !self.splitter.has_pending()
    }
}

/// All files of one receiver. See the module docs.
pub struct Tracker {
    settings: Settings,
    files: BTreeMap<u64, TrackedFile>,
    next_key: u64,
    next_batch: u64,
    polls: u64,
    /// Checkpoints loaded at start-up not yet matched to a file, and the polls they have waited.
    saved: Vec<(Vec<u8>, u64, PathBuf)>,
    /// Batch id → the files it covers.
    batches: HashMap<u64, Vec<u64>>,
    /// Where the next window of paths starts when there are more than `max_concurrent_files`.
    window_start: usize,
    buffer: Vec<u8>,
    /// What the last checkpoints handed out said, in short (to skip building unchanged ones).
    last_saved: Vec<(u64, u64, usize)>,
}

impl Tracker {
    pub fn new(settings: Settings, saved: Vec<Checkpoint>) -> Self {
        let saved = saved
            .into_iter()
            .filter_map(|c| Some((from_hex(&c.fingerprint)?, c.offset, c.path)))
            .filter(|(fingerprint, _, _)| !fingerprint.is_empty())
            .collect();
        Tracker {
            settings,
            files: BTreeMap::new(),
            next_key: 0,
            next_batch: 0,
            polls: 0,
            saved,
            batches: HashMap::new(),
            window_start: 0,
            buffer: vec![0; READ_CHUNK],
            last_saved: Vec::new(),
        }
    }

    /// Files tracked now.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Bytes held in splitters (lines without their newline yet).
    pub fn held_bytes(&self) -> usize {
        self.files.values().map(|f| f.splitter.held_bytes()).sum()
    }

    /// Scans the patterns, reads what is new and prepares up to `limits.batches` batches.
    pub fn poll(&mut self, now: Instant, observed: u64, limits: Limits) -> Vec<Prepared> {
        self.polls += 1;
        let matched = self.discover(now);
        let mut out = Vec::new();
        if limits.batches == 0 {
            return out;
        }
        let mut builder = Builder::default();
        // Files to read: those matched now, and vanished ones still open (read to their end).
        let keys: Vec<u64> = self
            .files
            .iter()
            .filter(|(_, f)| f.handle.is_some())
            .map(|(k, _)| *k)
            .collect();
        // Start from another file each poll so a busy early file cannot starve the rest.
        let rotate = if keys.is_empty() {
            0
        } else {
            (self.polls as usize) % keys.len()
        };
        let mut full = false;
        let mut progress = true;
        while progress && !full {
            progress = false;
            for &key in keys[rotate..].iter().chain(&keys[..rotate]) {
                match self.read_file(key, now, observed, &mut builder, limits) {
                    Read::Progress => progress = true,
                    Read::Idle => {}
                    Read::Full => {
                        out.push(self.finish(std::mem::take(&mut builder)));
                        if out.len() >= limits.batches {
                            full = true;
                            break;
                        }
                        progress = true;
                    }
                }
            }
        }
        if !full {
            for &key in &keys {
                self.force_flush(key, now, observed, &mut builder);
            }
        }
        if !builder.is_empty() {
            out.push(self.finish(builder));
        }
        self.forget(&matched);
        out
    }

    /// Matches the paths of this poll to tracked files; returns the keys seen.
    fn discover(&mut self, now: Instant) -> HashSet<u64> {
        let mut paths = self.scan();
        let all: HashSet<PathBuf> = paths.iter().cloned().collect();
        let windowed = paths.len() > self.settings.max_concurrent_files;
        if windowed {
            // More files than may be open: a window of them per poll, taking turns.
            let start = self.window_start % paths.len();
            paths.rotate_left(start);
            paths.truncate(self.settings.max_concurrent_files);
            self.window_start = start + self.settings.max_concurrent_files;
        }
        let mut opened = Vec::new();
        for path in paths {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let fingerprint = self.fingerprint(&file);
            if fingerprint.is_empty() {
                continue; // an empty file cannot be told apart from others yet
            }
            opened.push((path, file, fingerprint));
        }
        // Two files with the same first bytes in one scan are a copy being made (copy-truncate before the
        // truncation): read only the one at a tracked path this time, as the Collector does; once the original
        // is truncated the copy is told apart and read on from the old offset.
        let tracked_paths: HashSet<&Path> = self.files.values().map(|f| f.path.as_path()).collect();
        opened.sort_by_key(|(path, _, _)| !tracked_paths.contains(path.as_path()));
        let mut fingerprints = HashSet::new();
        opened.retain(|(_, _, fingerprint)| fingerprints.insert(fingerprint.clone()));
        opened.sort_by(|a, b| a.0.cmp(&b.0));
        let mut matched = HashSet::new();
        let mut unmatched = Vec::new();
        // First the files still at their path, then the renamed ones, so two files that share their first
        // bytes do not swap identities.
        for (path, file, fingerprint) in opened {
            match self.find(&fingerprint, Some(&path), &matched) {
                Some(key) => {
                    self.claim(key, path, file, fingerprint);
                    matched.insert(key);
                }
                None => unmatched.push((path, file, fingerprint)),
            }
        }
        for (path, file, fingerprint) in unmatched {
            let key = match self.find(&fingerprint, None, &matched) {
                Some(key) => {
                    self.claim(key, path, file, fingerprint);
                    key
                }
                None => self.track(path, file, fingerprint, now),
            };
            matched.insert(key);
        }
        for (key, file) in &mut self.files {
            if matched.contains(key) {
                file.unseen = 0;
            } else if windowed && all.contains(&file.path) {
                // Still there, outside this poll's window: close it until its turn (the open-file bound).
                if file.inflight.is_empty() {
                    file.handle = None;
                }
            } else {
                file.unseen += 1;
            }
        }
        matched
    }

    fn scan(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self
            .settings
            .include
            .iter()
            .filter_map(|pattern| glob::glob(pattern).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .filter(|p| !self.settings.exclude.iter().any(|e| e.matches_path(p)))
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }

    fn fingerprint(&self, file: &File) -> Vec<u8> {
        let mut fingerprint = vec![0; self.settings.fingerprint_size];
        let mut filled = 0;
        while filled < fingerprint.len() {
            match file.read_at(&mut fingerprint[filled..], filled as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => filled += n,
            }
        }
        fingerprint.truncate(filled);
        fingerprint
    }

    /// A tracked file this fingerprint belongs to: its fingerprint is a prefix of the new one (the file grew).
    fn find(&self, fingerprint: &[u8], path: Option<&Path>, taken: &HashSet<u64>) -> Option<u64> {
        self.files
            .iter()
            .filter(|(key, _)| !taken.contains(key))
            .filter(|(_, f)| path.is_none_or(|p| f.path == p))
            .find(|(_, f)| !f.fingerprint.is_empty() && fingerprint.starts_with(&f.fingerprint))
            .map(|(key, _)| *key)
    }

    fn claim(&mut self, key: u64, path: PathBuf, handle: File, fingerprint: Vec<u8>) {
        let moved = self.files.get(&key).is_some_and(|f| f.path != path);
        let attributes = moved.then(|| self.file_attributes(&path));
        let Some(file) = self.files.get_mut(&key) else {
            return;
        };
        let length = handle.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        if length < file.splitter.position() {
            // Shorter than what was read, yet the same first bytes: truncated and written again.
            tracing::info!(path = %path.display(), "File was truncated; reading it from its start.");
            file.rewind(0, &self.settings.operators);
        }
        if fingerprint.len() > file.fingerprint.len() {
            file.fingerprint = fingerprint;
        }
        if let Some(attributes) = attributes {
            file.attributes = attributes;
            file.path = path;
        }
        file.handle = Some(handle);
    }

    fn track(&mut self, path: PathBuf, handle: File, fingerprint: Vec<u8>, now: Instant) -> u64 {
        let saved = self
            .saved
            .iter()
            .position(|(saved, _, _)| fingerprint.starts_with(saved))
            .map(|i| self.saved.swap_remove(i));
        let length = handle.metadata().map(|m| m.len()).unwrap_or(0);
        let offset = match saved {
            Some((_, offset, _)) if offset <= length => offset,
            Some(_) => 0,
            None if self.polls == 1 && self.settings.start_at == StartAt::End => length,
            None => 0,
        };
        tracing::debug!(path = %path.display(), offset, "Tracking a file.");
        let key = self.next_key;
        self.next_key += 1;
        let attributes = self.file_attributes(&path);
        self.files.insert(
            key,
            TrackedFile {
                fingerprint,
                path,
                handle: Some(handle),
                splitter: Splitter::new(offset),
                chain: self.settings.operators.chain(),
                emitted: offset,
                inflight: BTreeMap::new(),
                last_read: now,
                flushed: true,
                unseen: 0,
                paused_until: None,
                attributes,
            },
        );
        key
    }

    fn file_attributes(&self, path: &Path) -> Map<String, Value> {
        let mut attributes = self.settings.attributes.clone();
        let text = |p: &Path| Value::String(p.display().to_string());
        let name = |p: &Path| {
            Value::String(
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        };
        if self.settings.file_name {
            attributes.insert("log.file.name".into(), name(path));
        }
        if self.settings.file_path {
            attributes.insert("log.file.path".into(), text(path));
        }
        if self.settings.file_name_resolved || self.settings.file_path_resolved {
            let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
            if self.settings.file_name_resolved {
                attributes.insert("log.file.name_resolved".into(), name(&resolved));
            }
            if self.settings.file_path_resolved {
                attributes.insert("log.file.path_resolved".into(), text(&resolved));
            }
        }
        attributes
    }

    fn read_file(
        &mut self,
        key: u64,
        now: Instant,
        observed: u64,
        builder: &mut Builder,
        limits: Limits,
    ) -> Read {
        let Some(file) = self.files.get_mut(&key) else {
            return Read::Idle;
        };
        if file.paused_until.is_some_and(|until| now < until) {
            return Read::Idle;
        }
        file.paused_until = None;
        // Taken out while reading so the file's other parts can be borrowed; put back below.
        let Some(handle) = file.handle.take() else {
            return Read::Idle;
        };
        let mut visited = 0;
        let mut pieces = Vec::new();
        let mut entries = Vec::new();
        let mut full = false;
        while visited < VISIT_BYTES {
            if builder.records() >= limits.records || builder.bytes() >= limits.bytes {
                full = true;
                break;
            }
            let n = match handle.read_at(&mut self.buffer, file.splitter.position()) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(path = %file.path.display(), error = %e, "Reading a file failed; will try again.");
                    break;
                }
            };
            visited += n as u64;
            file.last_read = now;
            file.flushed = false;
            file.splitter
                .push(&self.settings.split, &self.buffer[..n], &mut pieces);
            emit(
                file,
                key,
                &mut pieces,
                &mut entries,
                builder,
                observed,
                &self.settings.resource,
            );
        }
        file.handle = Some(handle);
        match (full, visited) {
            (true, _) => Read::Full,
            (false, 0) => Read::Idle,
            (false, _) => Read::Progress,
        }
    }

    /// Emits what a file holds once it has been quiet for `force_flush_period`.
    fn force_flush(&mut self, key: u64, now: Instant, observed: u64, builder: &mut Builder) {
        let period = self.settings.force_flush;
        let Some(file) = self.files.get_mut(&key) else {
            return;
        };
        let gone = file.unseen > 0;
        if file.flushed
            || (!gone && (period.is_zero() || now.duration_since(file.last_read) < period))
        {
            return;
        }
        file.flushed = true;
        let mut pieces = Vec::new();
        file.splitter.flush(&self.settings.split, &mut pieces);
        let mut entries = Vec::new();
        emit(
            file,
            key,
            &mut pieces,
            &mut entries,
            builder,
            observed,
            &self.settings.resource,
        );
        file.chain.flush(&mut entries);
        for entry in entries.drain(..) {
            push_entry(file, key, entry, builder, observed);
        }
    }

    fn finish(&mut self, builder: Builder) -> Prepared {
        let id = self.next_batch;
        self.next_batch += 1;
        let records = builder.records();
        let bytes = builder.bytes();
        let (request, ranges) = builder.finish();
        let mut keys = Vec::with_capacity(ranges.len());
        for (key, range) in ranges {
            if let Some(file) = self.files.get_mut(&key) {
                file.inflight.insert(id, range);
                keys.push(key);
            }
        }
        self.batches.insert(id, keys);
        Prepared {
            id,
            request,
            records,
            bytes,
        }
    }

    /// A batch's verdict: delivered moves the files' checkpoints on; anything else rewinds them to the batch's
    /// start and pauses them for `retry_after`.
    pub fn settle(&mut self, batch: u64, delivered: bool, now: Instant, retry_after: Duration) {
        let Some(keys) = self.batches.remove(&batch) else {
            return;
        };
        for key in keys {
            let Some(file) = self.files.get_mut(&key) else {
                continue;
            };
            let Some((start, _)) = file.inflight.remove(&batch) else {
                continue;
            };
            if !delivered && start < file.emitted {
                tracing::debug!(path = %file.path.display(), offset = start, "Delivery failed; reading again.");
                file.rewind(start, &self.settings.operators);
                file.paused_until = Some(now + retry_after);
            }
        }
    }

    /// [`Tracker::checkpoints`] if a delivered offset, a fingerprint or the set of files changed since the last
    /// call (building them hex-encodes every fingerprint: not something to do on every verdict for nothing).
    pub fn changed_checkpoints(&mut self) -> Option<Vec<Checkpoint>> {
        let mut summary: Vec<(u64, u64, usize)> = self
            .files
            .iter()
            .map(|(key, f)| (*key, f.delivered(), f.fingerprint.len()))
            .collect();
        summary.push((u64::MAX, self.saved.len() as u64, 0));
        if summary == self.last_saved {
            return None;
        }
        self.last_saved = summary;
        Some(self.checkpoints())
    }

    /// The last checkpoints handed out were not saved: hand them out again next time.
    pub fn unsaved(&mut self) {
        self.last_saved.clear();
    }

    /// Every file's delivered offset, and the saved ones not matched yet.
    pub fn checkpoints(&self) -> Vec<Checkpoint> {
        let mut checkpoints: Vec<Checkpoint> = self
            .files
            .values()
            .map(|f| Checkpoint {
                fingerprint: to_hex(&f.fingerprint),
                offset: f.delivered(),
                path: f.path.clone(),
            })
            .collect();
        checkpoints.extend(
            self.saved
                .iter()
                .map(|(fingerprint, offset, path)| Checkpoint {
                    fingerprint: to_hex(fingerprint),
                    offset: *offset,
                    path: path.clone(),
                }),
        );
        checkpoints
    }

    /// Drops files gone for a while whose every entry is delivered, and closes the handles of vanished files
    /// read to their end.
    fn forget(&mut self, matched: &HashSet<u64>) {
        self.files.retain(|key, file| {
            if matched.contains(key) {
                return true;
            }
            let at_end = file
                .handle
                .as_ref()
                .and_then(|h| h.metadata().ok())
                .is_none_or(|m| m.len() <= file.splitter.position());
            if at_end && file.idle() {
                file.handle = None;
                return file.unseen < FORGET_AFTER_POLLS;
            }
            true
        });
        // Saved checkpoints whose file did not come back within a few polls of each window are forgotten.
        let windows = 1 + self.files.len() / self.settings.max_concurrent_files.max(1);
        if self.polls > (u64::from(FORGET_AFTER_POLLS) * windows as u64).max(10) {
            self.saved.clear();
        }
    }

    /// Whether nothing is in flight (every batch settled).
    pub fn settled(&self) -> bool {
        self.batches.is_empty()
    }
}

enum Read {
    Progress,
    Idle,
    Full,
}

/// Runs pieces through the file's operators into the batch.
fn emit(
    file: &mut TrackedFile,
    key: u64,
    pieces: &mut Vec<Piece>,
    entries: &mut Vec<Entry>,
    builder: &mut Builder,
    observed: u64,
    resource: &Map<String, Value>,
) {
    for piece in pieces.drain(..) {
        let mut entry = Entry::line(piece.text, piece.start, piece.end);
        entry.attributes = file.attributes.clone();
        entry.resource = resource.clone();
        if let Some(size) = piece.truncated_from {
            entry.mark_truncated(size);
        }
        file.chain.process(entry, entries);
    }
    for entry in entries.drain(..) {
        push_entry(file, key, entry, builder, observed);
    }
}

fn push_entry(
    file: &mut TrackedFile,
    key: u64,
    entry: Entry,
    builder: &mut Builder,
    observed: u64,
) {
    let end = entry.end_offset;
    builder.cover(key, file.emitted.min(end), end);
    file.emitted = end;
    builder.push(entry, observed);
}
