//! [`Journal`]: the receiver's numbered batches, each written down (an *intent*) before it is sent, and the
//! receiver's identity.
//!
//! An intent is a batch's sequence number and, for each file it read, the file's fingerprint, its path then
//! and the range `[start, end)` of offsets it covers, plus the observed time its records carry. Batch
//! boundaries fall only where no operator holds a record that began earlier (see `tracker`), so reading a
//! range again with fresh operators rebuilds the same entries: after a crash, or after a retryable verdict,
//! the batch is sent again under its own number, and the Delta exporter, which records each source's highest
//! committed sequence in its commits (a `txn`), skips it if it landed. Exactly once into Delta.
//!
//! One file per receiver, `<storage>/filelog-<id>.intents`, JSON lines appended and `fsync`ed before the batch
//! is sent. Intents below the checkpoint's `settled_below` are done with; once the journal has grown past
//! [`COMPACT_BYTES`] it is rewritten (temporary file, `fsync`, rename, directory `fsync`) with only the live
//! intents and the next number, so it stays small. A crash in the middle of an append leaves a torn last line:
//! that batch was never sent, and the line is dropped when the journal is opened (rewritten at every start).
//!
//! The identity (`filelog-<id>.identity`, generated once) is the app id of the receiver's Delta transactions.
//! It belongs to the storage directory, as the sequence numbers do, so a new host or pod name changes nothing,
//! and a fresh storage directory (new numbers from 0) never has its batches skipped as committed.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::file_stem;
use crate::error::FilelogError;

/// A journal longer than this is rewritten with only its live intents.
pub const COMPACT_BYTES: u64 = 1 << 20;
/// The identity's prefix (the rest is a UUID).
const IDENTITY_PREFIX: &str = "otlake-filelog-";

/// One batch, as written down before it was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The batch's number: increasing, never given to other data.
    pub sequence: u64,
    /// The observed time its records carry (nanoseconds since the epoch), so a rebuild is the same request.
    pub observed: u64,
    /// What it read, file by file.
    pub files: Vec<IntentRange>,
}

/// The part of one file a batch covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRange {
    /// The file's first bytes (hex) when the batch was made: a file renamed since is found by them.
    pub fingerprint: String,
    /// The file's path then (its entries' `log.file.*` attributes).
    pub path: PathBuf,
    /// Offset of the first byte covered.
    pub start: u64,
    /// Offset just past the last byte covered.
    pub end: u64,
}

/// One line of the journal.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    Intent(Intent),
    /// Written by a compaction: no number below this may be given again.
    Next {
        sequence: u64,
    },
}

/// The intent journal of one receiver. See the module docs.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    bytes: u64,
    /// Intents at or above `settled_below`, by sequence.
    live: BTreeMap<u64, Intent>,
    next: u64,
    settled_below: u64,
}

impl Journal {
    /// Opens receiver `id`'s journal in `dir` (created if missing), forgetting intents below `settled_below`
    /// (the checkpoint's); rewrites it at once, so a torn last line never gets appended to.
    pub fn open(dir: &Path, id: &str, settled_below: u64) -> Result<Self, FilelogError> {
        fs::create_dir_all(dir)
            .map_err(|e| FilelogError::io("creating the storage directory", dir, e))?;
        let path = dir.join(format!("{}.intents", file_stem(id)));
        let mut live = BTreeMap::new();
        let mut next = settled_below;
        match fs::read(&path) {
            Ok(bytes) => {
                let mut lines = bytes.split(|&b| b == b'\n').peekable();
                while let Some(line) = lines.next() {
                    if line.is_empty() {
                        continue;
                    }
                    let last = lines.peek().is_none_or(|rest| rest.is_empty());
                    match serde_json::from_slice::<Record>(line) {
                        Ok(Record::Intent(intent)) => {
                            next = next.max(intent.sequence + 1);
                            if intent.sequence >= settled_below {
                                live.insert(intent.sequence, intent);
                            }
                        }
                        Ok(Record::Next { sequence }) => next = next.max(sequence),
                        // Torn by a crash during the append: that batch was never sent.
                        Err(_) if last => {}
                        Err(e) => {
                            return Err(FilelogError::Corrupt {
                                path,
                                message: e.to_string(),
                            });
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(FilelogError::io("reading the intent journal", &path, e)),
        }
        let file = rewrite(&path, &live, next)?;
        let bytes = file
            .metadata()
            .map_err(|e| FilelogError::io("reading the intent journal", &path, e))?
            .len();
        Ok(Journal {
            path,
            file,
            bytes,
            live,
            next,
            settled_below,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The intents not known to be settled, in order: sent again at start-up.
    pub fn pending(&self) -> Vec<Intent> {
        self.live.values().cloned().collect()
    }

    /// The first number never written down.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// Writes `intent` down durably; only then may its batch be sent.
    pub fn append(&mut self, intent: &Intent) -> Result<(), FilelogError> {
        let mut line = serde_json::to_vec(&Record::Intent(intent.clone())).map_err(|e| {
            FilelogError::Corrupt {
                path: self.path.clone(),
                message: e.to_string(),
            }
        })?;
        line.push(b'\n');
        let mut write = || -> std::io::Result<()> {
            self.file.write_all(&line)?;
            self.file.sync_data()
        };
        write().map_err(|e| FilelogError::io("appending to the intent journal", &self.path, e))?;
        self.bytes += line.len() as u64;
        self.next = self.next.max(intent.sequence + 1);
        self.live.insert(intent.sequence, intent.clone());
        Ok(())
    }

    /// Every intent below `sequence` is settled and the checkpoint saying so is durable: forgets them, and
    /// rewrites the journal once it has grown past [`COMPACT_BYTES`].
    pub fn settled_below(&mut self, sequence: u64) -> Result<(), FilelogError> {
        if sequence <= self.settled_below {
            return Ok(());
        }
        self.settled_below = sequence;
        self.next = self.next.max(sequence);
        self.live = self.live.split_off(&sequence);
        if self.bytes > COMPACT_BYTES {
            self.file = rewrite(&self.path, &self.live, self.next)?;
            self.bytes = self
                .file
                .metadata()
                .map_err(|e| FilelogError::io("compacting the intent journal", &self.path, e))?
                .len();
        }
        Ok(())
    }
}

/// Replaces the journal with `live` and the next number, atomically; returns it open for appending.
fn rewrite(path: &Path, live: &BTreeMap<u64, Intent>, next: u64) -> Result<File, FilelogError> {
    let mut text = Vec::new();
    let mut line = |record: &Record| -> Result<(), FilelogError> {
        serde_json::to_writer(&mut text, record).map_err(|e| FilelogError::Corrupt {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        text.push(b'\n');
        Ok(())
    };
    line(&Record::Next { sequence: next })?;
    for intent in live.values() {
        line(&Record::Intent(intent.clone()))?;
    }
    let tmp = path.with_extension("intents.tmp");
    let write = || -> std::io::Result<File> {
        let mut file = File::create(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        OpenOptions::new().append(true).open(path)
    };
    write().map_err(|e| FilelogError::io("rewriting the intent journal", path, e))
}

/// Receiver `id`'s identity in `dir`, created (durably) on first use.
pub fn identity(dir: &Path, id: &str) -> Result<Arc<str>, FilelogError> {
    let path = dir.join(format!("{}.identity", file_stem(id)));
    match fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            let valid = id.len() > IDENTITY_PREFIX.len()
                && id.starts_with(IDENTITY_PREFIX)
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if valid {
                Ok(id.into())
            } else {
                Err(FilelogError::Corrupt {
                    path,
                    message: format!(
                        "`{}` is not a receiver identity (it names this receiver's Delta transactions: restore \
                         it rather than edit it)",
                        id.escape_debug()
                    ),
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir)
                .map_err(|e| FilelogError::io("creating the storage directory", dir, e))?;
            let id = format!("{IDENTITY_PREFIX}{}", uuid::Uuid::now_v7().simple());
            let tmp = path.with_extension("identity.tmp");
            let write = || -> std::io::Result<()> {
                let mut file = File::create(&tmp)?;
                file.write_all(format!("{id}\n").as_bytes())?;
                file.sync_all()?;
                fs::rename(&tmp, &path)?;
                File::open(dir)?.sync_all()
            };
            write().map_err(|e| FilelogError::io("writing the identity", &path, e))?;
            Ok(id.into())
        }
        Err(e) => Err(FilelogError::io("reading the identity", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(sequence: u64) -> Intent {
        Intent {
            sequence,
            observed: 7,
            files: vec![IntentRange {
                fingerprint: "61".into(),
                path: "/logs/app.log".into(),
                start: sequence * 10,
                end: sequence * 10 + 10,
            }],
        }
    }

    #[test]
    fn intents_survive_a_restart_until_settled_and_numbers_never_repeat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal = Journal::open(dir.path(), "filelog/a", 0).expect("open");
        assert_eq!(journal.next_sequence(), 0);
        for n in 0..3 {
            journal.append(&intent(n)).expect("append");
        }
        drop(journal);
        let mut journal = Journal::open(dir.path(), "filelog/a", 1).expect("reopen");
        assert_eq!(journal.pending(), vec![intent(1), intent(2)]);
        assert_eq!(journal.next_sequence(), 3);
        journal.settled_below(3).expect("settled");
        drop(journal);
        // Everything settled and compacted away at the start: the number goes on all the same.
        let journal = Journal::open(dir.path(), "filelog/a", 3).expect("reopen");
        assert!(journal.pending().is_empty());
        assert_eq!(journal.next_sequence(), 3);
        let text = fs::read_to_string(journal.path()).expect("read");
        assert_eq!(text.lines().count(), 1, "only the next number: {text}");
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_a_damaged_middle_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal = Journal::open(dir.path(), "filelog", 0).expect("open");
        journal.append(&intent(0)).expect("append");
        let path = journal.path().to_owned();
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(b"{\"kind\":\"intent\",\"seque")
            .expect("torn write");
        drop(file);
        let mut journal = Journal::open(dir.path(), "filelog", 0).expect("torn tail dropped");
        assert_eq!(journal.pending(), vec![intent(0)]);
        journal.append(&intent(1)).expect("append after the tear");
        drop(journal);
        assert_eq!(
            Journal::open(dir.path(), "filelog", 0)
                .expect("reopen")
                .pending(),
            vec![intent(0), intent(1)]
        );
        let text = fs::read_to_string(&path).expect("read");
        fs::write(&path, text.replacen("\"kind\":\"intent\"", "garbage", 1)).expect("damage");
        assert!(matches!(
            Journal::open(dir.path(), "filelog", 0),
            Err(FilelogError::Corrupt { .. })
        ));
    }

    #[test]
    fn the_journal_stays_small() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut journal = Journal::open(dir.path(), "filelog", 0).expect("open");
        let mut n = 0;
        while journal.bytes <= COMPACT_BYTES {
            journal.append(&intent(n)).expect("append");
            n += 1;
        }
        journal.settled_below(n - 2).expect("settle");
        let size = fs::metadata(journal.path()).expect("stat").len();
        assert!(size < 1000, "compacted to the live intents: {size} bytes");
        assert_eq!(journal.pending(), vec![intent(n - 2), intent(n - 1)]);
    }

    #[test]
    fn the_identity_is_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = identity(dir.path(), "filelog/app").expect("created");
        assert!(first.starts_with(IDENTITY_PREFIX), "{first}");
        assert_eq!(identity(dir.path(), "filelog/app").expect("read"), first);
        assert_ne!(identity(dir.path(), "filelog/other").expect("other"), first);
        fs::write(dir.path().join("filelog-filelog_app.identity"), "x y\n").expect("damage");
        assert!(identity(dir.path(), "filelog/app").is_err());
    }
}
