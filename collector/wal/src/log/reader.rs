//! [`Reader`]: reads records back by [`Location`] for the dispatcher, checking them as recovery does.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::error::{Result, WalError};
use crate::frame::{HEADER_LEN, Header, checksum};

use super::segment::{Location, segment_name};

/// Reads records back by [`Location`], checking them as recovery does.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    /// The segment last read from, kept open for the next read (replay reads segments in order).
    open: Option<(u64, File)>,
}

impl Reader {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Reader { dir, open: None }
    }

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
