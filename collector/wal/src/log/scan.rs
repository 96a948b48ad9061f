//! Recovery's reading of one segment: every record checked (length, checksum, expected sequence).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use crate::error::{Result, WalError};
use crate::frame::{HEADER_LEN, Header, MAGIC, checksum};

use super::segment::{Location, RecoveredEntry, Segment};

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

pub(crate) struct Scan {
    pub(crate) entries: Vec<RecoveredEntry>,
    pub(crate) damage: Option<Damage>,
}

/// Reads a segment from the start and keeps every intact record up to the first bad one.
pub(crate) fn scan_segment(segment: &Segment) -> Result<Scan> {
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
