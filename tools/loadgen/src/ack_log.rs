//! The ack log: the ids of every acknowledged item, one lowercase hex id per line, for durability checks
//! ("every id the collector acknowledged is in the table").
//!
//! Senders format a request's ids into their own buffer and append it under a short lock. The file is
//! created (truncated) at start; [`AckLog::finish`] flushes and fsyncs it, so after a clean exit of the
//! generator the file holds every acknowledged id exactly once. An id is written only after the endpoint
//! acknowledged the whole request.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::ids::hex16;

#[derive(Debug)]
pub struct AckLog {
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
}

impl AckLog {
    pub fn create(path: &Path) -> std::io::Result<AckLog> {
        Ok(AckLog {
            path: path.to_owned(),
            file: Mutex::new(BufWriter::with_capacity(1 << 16, File::create(path)?)),
        })
    }

    /// Appends `ids`; `scratch` is the caller's reusable buffer.
    pub fn append(&self, ids: &[u64], scratch: &mut Vec<u8>) -> std::io::Result<()> {
        scratch.clear();
        let mut hex = [0u8; 16];
        for id in ids {
            hex16(*id, &mut hex);
            scratch.extend_from_slice(&hex);
            scratch.push(b'\n');
        }
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("ack log lock poisoned"))?;
        file.write_all(scratch)
    }

    /// Flushes and fsyncs the log.
    pub fn finish(&self) -> std::io::Result<()> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("ack log lock poisoned"))?;
        file.flush()?;
        file.get_ref().sync_all()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_one_hex_per_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("acks.txt");
        let log = AckLog::create(&path).expect("create");
        let mut scratch = Vec::new();
        log.append(&[1, 0xdead_beef], &mut scratch).expect("append");
        log.append(&[u64::MAX], &mut scratch).expect("append");
        log.finish().expect("finish");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "0000000000000001\n00000000deadbeef\nffffffffffffffff\n"
        );
    }
}
