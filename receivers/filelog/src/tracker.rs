//! [`Tracker`]: which files exist, who they are, how far each is read, cut into batches and delivered.
//!
//! A file is known by its **fingerprint**, its first `fingerprint_size` bytes (as the Collector does), not by its
//! path: a file renamed by rotation keeps its fingerprint and is read on from where it was; a file truncated in
//! place (copy-truncate) gets a new fingerprint and is read from its start, while its copy (if the include
//! patterns match it) carries the old fingerprint and is read on from the old offset. A file that vanishes
//! from the patterns (deleted, or rotated out of them) is read to its end through the handle opened before,
//! then forgotten once everything read from it is delivered.
//!
//! Three offsets per file, in this order: *delivered* ≤ *cut* ≤ *read*. Read is where the next read starts
//! (the splitter's position). Cut is the end of the last range handed to a batch. Delivered (the checkpoint) is
//! the start of the oldest batch range not yet settled, or cut if none is.
//!
//! **Batches are rebuildable.** Entries enter a batch only at a *cut point* of their file: an offset where
//! every entry that left the operators ends, and where nothing an operator still holds (a Python record that a
//! traceback may follow, a partial container line) began earlier. Until then they wait in the file's `staged`.
//! So reading a batch's range `[start, end)` again with a fresh splitter and fresh operators, and flushing at
//! `end`, gives the same entries ([`Tracker::rebuild`]): what a fresh chain holds at a cut point is exactly
//! what the first reading emitted when the next line showed it complete. A batch that is not delivered is
//! rebuilt and sent again under its own number; after a crash its intent (`journal`) is rebuilt the same way
//! ([`Tracker::restore`]), finding a renamed file by its fingerprint.
//!
//! Everything here is synchronous file I/O; the receiver runs [`Tracker::poll`] on a blocking thread.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use otlake_core::Payload;
use serde_json::{Map, Value};

use crate::batch::{Builder, Finished};
use crate::checkpoint::{Checkpoint, Saved, from_hex, to_hex};
use crate::config::StartAt;
use crate::entry::Entry;
use crate::journal::{Intent, IntentRange};
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
    /// The batch's number (its sequence).
    pub id: u64,
    /// The export request, in wire form.
    pub payload: Payload,
    pub records: usize,
    /// Its encoded size.
    pub bytes: usize,
    /// What to write down before sending it, to rebuild it after a crash.
    pub intent: Intent,
}

/// The part of a file one batch covers.
struct Range {
    start: u64,
    end: u64,
    /// The file's path when the range began (its entries' `log.file.*` attributes).
    path: PathBuf,
}

/// A batch not yet settled.
struct Pending {
    /// The files it covers.
    keys: Vec<u64>,
    /// The observed time of its records.
    observed: u64,
}

struct TrackedFile {
    fingerprint: Vec<u8>,
    path: PathBuf,
    handle: Option<File>,
    splitter: Splitter,
    chain: Chain,
    /// The end of the last range handed to a batch: the next range starts here.
    cut: u64,
    /// The path when the range after `cut` began.
    range_path: PathBuf,
    /// Entries out of the operators after `cut`, waiting for a cut point (see the module docs).
    staged: Vec<Entry>,
    /// The highest end offset of the staged entries (`cut` when none).
    staged_end: u64,
    /// Batch id → the range of offsets it covers of this file.
    inflight: BTreeMap<u64, Range>,
    /// When bytes last arrived (for `force_flush_period`).
    last_read: Instant,
    /// Whether what is held has been force-flushed since the last bytes arrived.
    flushed: bool,
    /// Polls in a row this file was not among the matched files.
    unseen: u32,
    /// Attributes every entry of this file gets (`log.file.*` and the configured ones).
    attributes: Map<String, Value>,
}

impl TrackedFile {
    fn delivered(&self) -> u64 {
        self.inflight
            .values()
            .map(|r| r.start)
            .min()
            .map_or(self.cut, |s| s.min(self.cut))
    }

    /// Reads on from `offset` with fresh operators (what is staged or held is dropped).
    fn rewind(&mut self, offset: u64, operators: &Compiled) {
        self.splitter = Splitter::new(offset);
        self.chain = operators.chain();
        self.cut = offset;
        self.range_path = self.path.clone();
        self.staged.clear();
        self.staged_end = offset;
        self.flushed = false;
    }

    fn idle(&self) -> bool {
        self.inflight.is_empty() && !self.splitter.has_pending() && self.staged.is_empty()
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
    /// Batches not yet settled, by id.
    batches: BTreeMap<u64, Pending>,
    /// Where the next window of paths starts when there are more than `max_concurrent_files`.
    window_start: usize,
    buffer: Vec<u8>,
    /// What the last checkpoints handed out said, in short (to skip building unchanged ones).
    last_saved: Vec<(u64, u64, usize)>,
}

impl Tracker {
    /// A tracker resuming from `saved` checkpoints, numbering its batches from `next_batch`.
    pub fn new(settings: Settings, saved: Vec<Checkpoint>, next_batch: u64) -> Self {
        let saved = saved
            .into_iter()
            .filter_map(|c| Some((from_hex(&c.fingerprint)?, c.offset, c.path)))
            .filter(|(fingerprint, _, _)| !fingerprint.is_empty())
            .collect();
        Tracker {
            settings,
            files: BTreeMap::new(),
            next_key: 0,
            next_batch,
            polls: 0,
            saved,
            batches: BTreeMap::new(),
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
            if file.staged.is_empty() && file.cut == file.splitter.position() {
                file.range_path = path.clone();
            }
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
                range_path: path.clone(),
                path,
                handle: Some(handle),
                splitter: Splitter::new(offset),
                chain: self.settings.operators.chain(),
                cut: offset,
                staged: Vec::new(),
                staged_end: offset,
                inflight: BTreeMap::new(),
                last_read: now,
                flushed: true,
                unseen: 0,
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
        // Taken out while reading so the file's other parts can be borrowed; put back below.
        let Some(handle) = file.handle.take() else {
            return Read::Idle;
        };
        let mut visited = 0;
        let mut pieces = Vec::new();
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
        emit(
            file,
            key,
            &mut pieces,
            builder,
            observed,
            &self.settings.resource,
        );
        let before = file.staged.len();
        file.chain.flush(&mut file.staged);
        stage_ends(file, before);
        // Nothing is held any more: everything read is one range.
        let position = file.splitter.position();
        cut(file, key, position, builder, observed);
    }

    fn finish(&mut self, builder: Builder) -> Prepared {
        let id = self.next_batch;
        self.next_batch += 1;
        let records = builder.records();
        let bytes = builder.bytes();
        let observed = builder.observed();
        let Finished {
            payload,
            ranges,
            paths,
        } = builder.finish();
        let mut keys = Vec::with_capacity(ranges.len());
        let mut files = Vec::with_capacity(ranges.len());
        for (key, (start, end)) in ranges {
            if let Some(file) = self.files.get_mut(&key) {
                let path = paths
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| file.path.clone());
                files.push(IntentRange {
                    fingerprint: to_hex(&file.fingerprint),
                    path: path.clone(),
                    start,
                    end,
                });
                file.inflight.insert(id, Range { start, end, path });
                keys.push(key);
            }
        }
        self.batches.insert(id, Pending { keys, observed });
        Prepared {
            id,
            payload,
            records,
            bytes,
            intent: Intent {
                sequence: id,
                observed,
                files,
            },
        }
    }

    /// Batch `batch` is done with (delivered, or refused for good): its files' checkpoints may pass it.
    pub fn settle(&mut self, batch: u64) {
        let Some(pending) = self.batches.remove(&batch) else {
            return;
        };
        for key in pending.keys {
            if let Some(file) = self.files.get_mut(&key) {
                file.inflight.remove(&batch);
            }
        }
    }

    /// Batch `batch` again, read from its files with fresh operators: the same entries as when it was made
    /// (see the module docs). A range that can no longer be read whole (its file was truncated or is gone) is
    /// rebuilt from what is left, with a warning. `None` if the batch is not pending.
    pub fn rebuild(&mut self, batch: u64) -> Option<Prepared> {
        let pending = self.batches.get(&batch)?;
        let observed = pending.observed;
        let mut builder = Builder::default();
        let mut files = Vec::new();
        for &key in &pending.keys {
            let Some(file) = self.files.get(&key) else {
                continue;
            };
            let Some(range) = file.inflight.get(&batch) else {
                continue;
            };
            let attributes = self.file_attributes(&range.path);
            let mut splitter = Splitter::new(range.start);
            let mut chain = self.settings.operators.chain();
            let mut pieces = Vec::new();
            let mut entries = Vec::new();
            let mut position = range.start;
            while position < range.end {
                let want =
                    READ_CHUNK.min(usize::try_from(range.end - position).unwrap_or(READ_CHUNK));
                let read = file
                    .handle
                    .as_ref()
                    .map(|h| h.read_at(&mut self.buffer[..want], position));
                let n = match read {
                    Some(Ok(n)) if n > 0 => n,
                    other => {
                        let error = match other {
                            Some(Err(e)) => e.to_string(),
                            Some(Ok(_)) => "the file is shorter than the range".to_owned(),
                            None => "the file is closed".to_owned(),
                        };
                        tracing::warn!(path = %range.path.display(), batch, start = position, end = range.end,
                            error, "A batch's range cannot be read again whole; it is sent with what is left.");
                        break;
                    }
                };
                position += n as u64;
                splitter.push(&self.settings.split, &self.buffer[..n], &mut pieces);
                for piece in pieces.drain(..) {
                    chain.process(
                        new_entry(piece, &attributes, &self.settings.resource),
                        &mut entries,
                    );
                }
            }
            splitter.flush(&self.settings.split, &mut pieces);
            for piece in pieces.drain(..) {
                chain.process(
                    new_entry(piece, &attributes, &self.settings.resource),
                    &mut entries,
                );
            }
            chain.flush(&mut entries);
            builder.cover(key, range.start, range.end, &range.path);
            for entry in entries {
                builder.push(entry, observed);
            }
            files.push(IntentRange {
                fingerprint: to_hex(&file.fingerprint),
                path: range.path.clone(),
                start: range.start,
                end: range.end,
            });
        }
        let records = builder.records();
        let bytes = builder.bytes();
        let payload = builder.finish().payload;
        Some(Prepared {
            id: batch,
            payload,
            records,
            bytes,
            intent: Intent {
                sequence: batch,
                observed,
                files,
            },
        })
    }

    /// Takes up the batches written down before a restart (`journal`), to be rebuilt and sent again under their
    /// numbers; returns their ids. Scans the files (the first poll's scan: `start_at` applies to files no
    /// checkpoint or intent names), finds each range's file by its fingerprint, and moves each file's reading
    /// past every range, so no line is read again under a new number. A range whose file is gone is lost,
    /// with a warning.
    pub fn restore(&mut self, now: Instant, intents: Vec<Intent>) -> Vec<u64> {
        // A file an intent read is known: read from its first range on, never skipped by `start_at: end`.
        for range in intents.iter().flat_map(|i| &i.files) {
            let Some(fingerprint) = from_hex(&range.fingerprint) else {
                continue;
            };
            let known = self.saved.iter().any(|(saved, _, _)| {
                fingerprint.starts_with(saved) || saved.starts_with(&fingerprint)
            });
            if !known && !fingerprint.is_empty() {
                self.saved
                    .push((fingerprint, range.start, range.path.clone()));
            }
        }
        self.polls += 1;
        self.discover(now);
        let mut restored = Vec::with_capacity(intents.len());
        for intent in intents {
            let mut keys = Vec::new();
            for range in intent.files {
                let found = from_hex(&range.fingerprint).and_then(|fingerprint| {
                    self.files
                        .iter()
                        .find(|(_, f)| {
                            !fingerprint.is_empty() && f.fingerprint.starts_with(&fingerprint)
                        })
                        .map(|(key, _)| *key)
                });
                let Some(key) = found else {
                    tracing::warn!(path = %range.path.display(), batch = intent.sequence, start = range.start,
                        end = range.end, "The file of a batch sent before the restart is gone; its lines are lost.");
                    continue;
                };
                let Some(file) = self.files.get_mut(&key) else {
                    continue;
                };
                if file.splitter.position() < range.end {
                    file.rewind(range.end, &self.settings.operators);
                }
                file.inflight.insert(
                    intent.sequence,
                    Range {
                        start: range.start,
                        end: range.end,
                        path: range.path,
                    },
                );
                keys.push(key);
            }
            self.next_batch = self.next_batch.max(intent.sequence + 1);
            self.batches.insert(
                intent.sequence,
                Pending {
                    keys,
                    observed: intent.observed,
                },
            );
            restored.push(intent.sequence);
        }
        restored
    }

    /// The lowest batch not yet settled (or the next number): every batch below it is settled.
    pub fn settled_below(&self) -> u64 {
        self.batches
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_batch)
    }

    /// [`Tracker::checkpoints`] and [`Tracker::settled_below`] if a delivered offset, a fingerprint, the set of
    /// files or the settled number changed since the last call (building them hex-encodes every fingerprint:
    /// not something to do on every verdict for nothing).
    pub fn changed_checkpoints(&mut self) -> Option<Saved> {
        let mut summary: Vec<(u64, u64, usize)> = self
            .files
            .iter()
            .map(|(key, f)| (*key, f.delivered(), f.fingerprint.len()))
            .collect();
        summary.push((u64::MAX, self.saved.len() as u64, 0));
        summary.push((u64::MAX, self.settled_below(), 1));
        if summary == self.last_saved {
            return None;
        }
        self.last_saved = summary;
        Some(Saved {
            files: self.checkpoints(),
            settled_below: self.settled_below(),
        })
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

/// A piece of a file as an entry, before the operators.
fn new_entry(
    piece: Piece,
    attributes: &Map<String, Value>,
    resource: &Map<String, Value>,
) -> Entry {
    let mut entry = Entry::line(piece.text, piece.start, piece.end);
    entry.attributes = attributes.clone();
    entry.resource = resource.clone();
    if let Some(size) = piece.truncated_from {
        entry.mark_truncated(size);
    }
    entry
}

/// Runs pieces through the file's operators; at each cut point what came out goes into the batch.
fn emit(
    file: &mut TrackedFile,
    key: u64,
    pieces: &mut Vec<Piece>,
    builder: &mut Builder,
    observed: u64,
    resource: &Map<String, Value>,
) {
    for piece in pieces.drain(..) {
        let end = piece.end;
        let before = file.staged.len();
        file.chain.process(
            new_entry(piece, &file.attributes, resource),
            &mut file.staged,
        );
        stage_ends(file, before);
        // A cut point: where every staged entry ends, and no held entry began earlier.
        let point = file.chain.holds_from().map_or(end, |held| held.min(end));
        if file.staged_end <= point {
            cut(file, key, point, builder, observed);
        }
    }
}

/// Takes the end offsets of the entries staged from `before` on into `staged_end`.
fn stage_ends(file: &mut TrackedFile, before: usize) {
    for entry in &file.staged[before..] {
        file.staged_end = file.staged_end.max(entry.end_offset);
    }
}

/// Ends the file's current range at `point` (a cut point): its staged entries go into the batch.
fn cut(file: &mut TrackedFile, key: u64, point: u64, builder: &mut Builder, observed: u64) {
    if point <= file.cut && file.staged.is_empty() {
        return;
    }
    builder.cover(key, file.cut, point, &file.range_path);
    for entry in file.staged.drain(..) {
        builder.push(entry, observed);
    }
    file.cut = point;
    file.staged_end = point;
    file.range_path = file.path.clone();
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use otlake_core::proto::logs::v1::LogRecord;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::FilelogConfig;

    fn settings(dir: &Path, extra: &Value) -> Settings {
        let mut config = json!({
            "include": [format!("{}/*.log", dir.display())],
            "start_at": "beginning",
            "fingerprint_size": "16",
            "force_flush_period": "1s",
            "include_file_path": true,
        });
        if let (Some(c), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        let config: FilelogConfig = otlake_core::parse_config(&config).expect("valid config");
        crate::settings(&config).expect("settings")
    }

    fn records(batches: &[Prepared]) -> Vec<LogRecord> {
        batches
            .iter()
            .flat_map(|b| match b.payload.request().expect("decodes") {
                otlake_core::ExportRequest::Logs(request) => request.resource_logs.clone(),
                _ => Vec::new(),
            })
            .flat_map(|r| r.scope_logs)
            .flat_map(|s| s.log_records)
            .collect()
    }

    /// Asserts two lists of records are the same, naming the first that differs.
    fn same_records(got: &[LogRecord], want: &[LogRecord]) {
        if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
            panic!(
                "record {i} differs (of {} and {}):\n{:?}\n{:?}",
                got.len(),
                want.len(),
                got.get(i),
                want.get(i)
            );
        }
    }

    /// Polls until a poll makes no batch.
    fn drain(tracker: &mut Tracker, at: Instant, limits: Limits, out: &mut Vec<Prepared>) {
        loop {
            let batches = tracker.poll(at, 42, limits);
            if batches.is_empty() {
                return;
            }
            out.extend(batches);
        }
    }

    /// Writes `text` in uneven pieces (cutting lines and records anywhere), polling after each with batches of
    /// at most two entries, so batches end wherever the tracker allows. Then every batch rebuilt from its
    /// ranges, in the same process and after a restart from its intent, must be the same request; and the
    /// batches together must be what reading the whole file at once gives.
    fn rebuilds_identically(extra: Value, text: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        let mut file = std::fs::File::create(&path).expect("create");
        let mut tracker = Tracker::new(settings(dir.path(), &extra), Vec::new(), 0);
        let small = Limits {
            batches: 3,
            records: 2,
            bytes: 1 << 20,
        };
        let now = Instant::now();
        let mut batches = Vec::new();
        let bytes = text.as_bytes();
        let (mut written, mut step) = (0, 0);
        while written < bytes.len() {
            let n = [7, 30, 61, 13, 90][step % 5].min(bytes.len() - written);
            file.write_all(&bytes[written..written + n]).expect("write");
            written += n;
            step += 1;
            batches.extend(tracker.poll(now, 42, small));
        }
        // Quiet for longer than force_flush_period: what is held comes out.
        drain(
            &mut tracker,
            now + Duration::from_secs(5),
            small,
            &mut batches,
        );
        assert!(batches.len() > 5, "many small batches: {}", batches.len());

        let mut whole = Tracker::new(settings(dir.path(), &extra), Vec::new(), 0);
        let big = Limits {
            batches: 8,
            records: 100_000,
            bytes: 1 << 30,
        };
        let mut at_once = Vec::new();
        drain(&mut whole, now, big, &mut at_once);
        drain(&mut whole, now + Duration::from_secs(5), big, &mut at_once);
        // The same records; in another order only where a request groups them by scope (a blank line after a
        // traceback is a record of no logger).
        let sorted = |batches: &[Prepared]| {
            let mut records = records(batches);
            records.sort_by_key(|r| format!("{r:?}"));
            records
        };
        same_records(&sorted(&batches), &sorted(&at_once));

        for batch in &batches {
            let rebuilt = tracker.rebuild(batch.id).expect("pending");
            assert_eq!(rebuilt.payload, batch.payload, "batch {} rebuilt", batch.id);
            assert_eq!(rebuilt.intent, batch.intent);
        }
        let mut restarted = Tracker::new(settings(dir.path(), &extra), Vec::new(), 0);
        let ids = restarted.restore(now, batches.iter().map(|b| b.intent.clone()).collect());
        assert_eq!(ids, batches.iter().map(|b| b.id).collect::<Vec<_>>());
        for batch in &batches {
            let rebuilt = restarted.rebuild(batch.id).expect("restored");
            assert_eq!(
                rebuilt.payload, batch.payload,
                "batch {} rebuilt after a restart",
                batch.id
            );
        }
        let mut again = Vec::new();
        drain(
            &mut restarted,
            now + Duration::from_secs(5),
            small,
            &mut again,
        );
        assert!(again.is_empty(), "nothing is read again under a new number");
        assert!(restarted.next_batch > batches.last().map_or(0, |b| b.id));
    }

    #[test]
    fn python_records_and_tracebacks_rebuild_identically() {
        let mut text = String::new();
        for n in 0..40 {
            text.push_str(&format!(
                "2024-12-01 10:00:{:02},123 - model.server - INFO - msg {n}\n",
                n % 60
            ));
            if n % 7 == 3 {
                text.push_str("    a continuation line\n");
            }
            if n % 9 == 4 {
                text.push_str(&format!(
                    "2024-12-01 10:00:00,000 - model.server - ERROR - failed {n}\n\
                     Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n    \
                     raise KeyError('k')\nKeyError: 'k'\n\nDuring handling of the above exception, another \
                     exception occurred:\n\nTraceback (most recent call last):\n  File \"app.py\", line 5\n\
                     ValueError: bad {n}\n\n"
                ));
            }
        }
        text.push_str("INFO:     a last line without its newline");
        rebuilds_identically(json!({"operators": [{"type": "python"}]}), &text);
    }

    #[test]
    fn container_partial_lines_rebuild_identically() {
        let mut text = String::new();
        for n in 0..40 {
            text.push_str(&format!(
                "2024-12-01T10:00:{:02}.000000001Z stdout P part one of {n} \n",
                n % 60
            ));
            text.push_str(&format!("2024-12-01T10:00:00Z stderr F meanwhile {n}\n"));
            if n % 3 == 0 {
                text.push_str(&format!("2024-12-01T10:00:00Z stdout P part two of {n} \n"));
            }
            text.push_str(&format!("2024-12-01T10:00:00Z stdout F end of {n}\n"));
        }
        rebuilds_identically(json!({"operators": [{"type": "container"}]}), &text);
    }

    #[test]
    fn multiline_entries_rebuild_identically() {
        let mut text = String::new();
        for n in 0..40 {
            text.push_str(&format!("START {n}\n"));
            for k in 0..(n % 4) {
                text.push_str(&format!("  detail {k} of {n}\n"));
            }
        }
        rebuilds_identically(
            json!({"multiline": {"line_start_pattern": "^START"}, "operators": [
                {"type": "regex_parser", "regex": "^START (?P<n>\\d+)"}]}),
            &text,
        );
    }
}
