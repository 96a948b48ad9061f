//! Checkpoints: for each file (known by its fingerprint), the offset up to which every entry was delivered.
//!
//! One JSON file per receiver, `<storage>/filelog-<receiver id>.json`, replaced atomically: written to a
//! temporary file, `fsync`ed, renamed over the old one, and the directory `fsync`ed, so after a crash at any
//! moment the file holds either the old or the new checkpoints, never a mix or nothing. The receiver only ever
//! records offsets whose entries every exporter acknowledged, so a restart reads again at most what was in
//! flight (at least once), never less. With the checkpoints goes `settled_below`, the number below which every
//! batch is settled: the intents at or above it (`journal`) are sent again at start-up under their numbers,
//! and saved in the same file as the offsets, the two always agree.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::FilelogError;

/// The format of the file; another version is refused rather than misread.
const VERSION: u32 = 1;

/// One file's checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The file's first bytes (hex), as long as they were when the checkpoint was taken.
    pub fingerprint: String,
    /// Every entry before this offset was delivered.
    pub offset: u64,
    /// Where the file was last seen (for people reading the file; identity is the fingerprint).
    pub path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    files: Vec<Checkpoint>,
    /// Every batch numbered below this is settled (see `journal`); absent in files written before numbering.
    #[serde(default)]
    settled_below: u64,
}

/// What the checkpoint file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// Each file's checkpoint.
    pub files: Vec<Checkpoint>,
    /// Every batch numbered below this is settled: its intent is not sent again.
    pub settled_below: u64,
}

/// The checkpoint file of one receiver.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    last: Option<Saved>,
}

impl CheckpointStore {
    /// The store of receiver `id` in `dir` (created if missing).
    pub fn open(dir: &Path, id: &str) -> Result<Self, FilelogError> {
        fs::create_dir_all(dir)
            .map_err(|e| FilelogError::io("creating the storage directory", dir, e))?;
        Ok(CheckpointStore {
            path: dir.join(format!("{}.json", file_stem(id))),
            last: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved checkpoints; none if the file does not exist yet.
    pub fn load(&mut self) -> Result<Saved, FilelogError> {
        let text = match fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
            Err(e) => return Err(FilelogError::io("reading checkpoints", &self.path, e)),
        };
        let stored: Stored = serde_json::from_slice(&text).map_err(|e| FilelogError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        if stored.version != VERSION {
            return Err(FilelogError::Corrupt {
                path: self.path.clone(),
                message: format!("version {} (this otlake writes {VERSION})", stored.version),
            });
        }
        let saved = Saved {
            files: stored.files,
            settled_below: stored.settled_below,
        };
        self.last = Some(saved.clone());
        Ok(saved)
    }

    /// Replaces the saved checkpoints with `saved` (atomically); does nothing if they did not change.
    pub fn save(&mut self, saved: Saved) -> Result<(), FilelogError> {
        if self.last.as_ref() == Some(&saved) {
            return Ok(());
        }
        let stored = Stored {
            version: VERSION,
            files: saved.files,
            settled_below: saved.settled_below,
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| FilelogError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            // The rename is durable only once the directory entry is.
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| FilelogError::io("saving checkpoints", &self.path, e))?;
        self.last = Some(Saved {
            files: stored.files,
            settled_below: stored.settled_below,
        });
        Ok(())
    }
}

/// `filelog-<id>` with every character but ASCII letters, digits, `-` and `_` replaced by `_`: the name of
/// receiver `id`'s files in its storage directory.
pub(crate) fn file_stem(id: &str) -> String {
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("filelog-{name}")
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lower-case hex; `None` if it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store =
            CheckpointStore::open(&dir.path().join("nested"), "filelog/app").expect("open");
        assert!(store.path().ends_with("filelog-filelog_app.json"));
        assert_eq!(store.load().expect("empty"), Saved::default());
        let saved = Saved {
            files: vec![Checkpoint {
                fingerprint: to_hex(b"first line\n"),
                offset: 42,
                path: "/var/log/app.log".into(),
            }],
            settled_below: 9,
        };
        store.save(saved.clone()).expect("save");
        let mut again =
            CheckpointStore::open(&dir.path().join("nested"), "filelog/app").expect("open");
        assert_eq!(again.load().expect("load"), saved);
        assert!(!store.path().with_extension("json.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_silent_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = CheckpointStore::open(dir.path(), "filelog").expect("open");
        std::fs::write(store.path(), b"{not json").expect("write");
        assert!(matches!(store.load(), Err(FilelogError::Corrupt { .. })));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            from_hex(&to_hex(b"\x00\xffab")),
            Some(b"\x00\xffab".to_vec())
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
