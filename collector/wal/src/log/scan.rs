//! Recovery's reading of one segment: every record checked (length, checksum, expected sequence). After a bad
//! record the scan resynchronises on the next intact one, so damage costs only the bytes that are damaged.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::error::{Result, WalError};
use crate::frame::{HEADER_LEN, Header, MAGIC, checksum};

use super::segment::{Location, RecoveredEntry, Segment};

/// The fewest bytes one record takes (a header and a body of at least one byte): how many sequences damaged
/// bytes can have held is bounded by their length over this.
const MIN_RECORD_LEN: u64 = HEADER_LEN as u64 + 1;

/// Bytes that recovery could not read and skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub segment: PathBuf,
    /// Where the damaged bytes start.
    pub offset: u64,
    /// Bytes skipped from `offset` to the next intact record (or the end of the segment).
    pub bytes_skipped: u64,
    pub reason: String,
}

pub(crate) struct Scan {
    pub(crate) entries: Vec<RecoveredEntry>,
    pub(crate) damage: Vec<Damage>,
    /// One past the highest sequence the segment's bytes may have held, damaged bytes included: the log
    /// numbers on from at least here, so a lost record's sequence is never issued again.
    pub(crate) end: u64,
}

/// Reads a segment from the start; keeps every intact record, skipping damaged bytes up to the next intact one.
pub(crate) fn scan_segment(segment: &Segment) -> Result<Scan> {
    let path = &segment.path;
    let file = File::open(path).map_err(WalError::io(path, "opening for recovery"))?;
    let mut scan = Scan {
        entries: Vec::new(),
        damage: Vec::new(),
        end: segment.first,
    };
    if segment.len < MAGIC.len() as u64 {
        // Created but never written (a crash right after creating it): nothing was in it.
        if segment.len > 0 {
            scan.damage.push(Damage {
                segment: path.clone(),
                offset: 0,
                bytes_skipped: segment.len,
                reason: "segment shorter than its header".into(),
            });
        }
        return Ok(scan);
    }
    let mut magic = [0u8; 8];
    file.read_exact_at(&mut magic, 0)
        .map_err(WalError::io(path, "reading"))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut offset = MAGIC.len() as u64;
    let mut expected = segment.first;
    if &magic != MAGIC {
        let reason = "not an otlake log segment (bad header)".to_owned();
        match skip_damage(&mut reader, segment, &mut scan, 0, expected, reason)? {
            Some((at, sequence)) => (offset, expected) = (at, sequence),
            None => return Ok(scan),
        }
    }
    reader
        .seek(SeekFrom::Start(offset))
        .map_err(WalError::io(path, "reading"))?;
    let mut body = Vec::new();
    while offset < segment.len {
        let problem = match read_record(&mut reader, segment, offset, expected, &mut body)? {
            Ok(header) => {
                scan.entries.push(RecoveredEntry {
                    sequence: header.sequence,
                    location: Location {
                        segment: segment.first,
                        offset,
                        body_len: header.body_len as u32,
                    },
                });
                offset += (HEADER_LEN + header.body_len) as u64;
                expected = header.sequence + 1;
                scan.end = expected;
                continue;
            }
            Err(problem) => problem,
        };
        match skip_damage(&mut reader, segment, &mut scan, offset, expected, problem)? {
            Some((at, sequence)) => {
                (offset, expected) = (at, sequence);
                reader
                    .seek(SeekFrom::Start(offset))
                    .map_err(WalError::io(path, "reading"))?;
            }
            None => break,
        }
    }
    Ok(scan)
}

/// Reads the record at `offset` (the reader is positioned there). `Ok(Err(reason))`: it is not intact.
fn read_record(
    reader: &mut BufReader<File>,
    segment: &Segment,
    offset: u64,
    expected: u64,
    body: &mut Vec<u8>,
) -> Result<Result<Header, String>> {
    let path = &segment.path;
    let remaining = segment.len - offset;
    if remaining < HEADER_LEN as u64 {
        return Ok(Err(format!("torn record header ({remaining} bytes)")));
    }
    let mut header = [0u8; HEADER_LEN];
    reader
        .read_exact(&mut header)
        .map_err(WalError::io(path, "reading"))?;
    let header = Header::parse(&header);
    let record_len = (HEADER_LEN + header.body_len) as u64;
    if header.body_len == 0 {
        return Ok(Err("empty record (zeroed bytes?)".to_owned()));
    }
    if record_len > remaining {
        return Ok(Err(format!(
            "torn record: {} body bytes announced, {} present",
            header.body_len,
            remaining - HEADER_LEN as u64
        )));
    }
    if header.sequence != expected {
        return Ok(Err(format!(
            "sequence {} where {expected} was expected",
            header.sequence
        )));
    }
    body.resize(header.body_len, 0);
    reader
        .read_exact(body)
        .map_err(WalError::io(path, "reading"))?;
    if header.crc != checksum(header.sequence, body) {
        return Ok(Err("checksum mismatch".to_owned()));
    }
    Ok(Ok(header))
}

/// Records the damage that starts at `from` and looks for the next intact record after it: one whose whole
/// length is in the file, whose checksum matches, and whose sequence is one the damaged bytes leave room for
/// (at least `expected`, and at most one per [`MIN_RECORD_LEN`] bytes skipped beyond it). Returns where it
/// starts and its sequence, or `None` if the damage runs to the end of the segment.
fn skip_damage(
    reader: &mut BufReader<File>,
    segment: &Segment,
    scan: &mut Scan,
    from: u64,
    expected: u64,
    reason: String,
) -> Result<Option<(u64, u64)>> {
    let path = &segment.path;
    // Only on damage: the rest of the segment (at most one segment's size) is read into memory to search it.
    let mut rest = Vec::new();
    reader
        .seek(SeekFrom::Start(from))
        .and_then(|_| reader.read_to_end(&mut rest))
        .map_err(WalError::io(path, "reading"))?;
    let found = (1..rest.len().saturating_sub(HEADER_LEN)).find_map(|at| {
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&rest[at..at + HEADER_LEN]);
        let header = Header::parse(&header);
        let most = expected.saturating_add(at as u64 / MIN_RECORD_LEN);
        let body = rest.get(at + HEADER_LEN..at + HEADER_LEN + header.body_len)?;
        (header.body_len > 0
            && (expected..=most).contains(&header.sequence)
            && header.crc == checksum(header.sequence, body))
        .then_some((at as u64, header.sequence))
    });
    let skipped = found.map_or(rest.len() as u64, |(at, _)| at);
    scan.damage.push(Damage {
        segment: path.clone(),
        offset: from,
        bytes_skipped: skipped,
        reason,
    });
    // The sequences the skipped bytes may have held are gone for good: never issue them again.
    scan.end = scan
        .end
        .max(expected.saturating_add(skipped.div_ceil(MIN_RECORD_LEN)));
    Ok(found.map(|(at, sequence)| (from + at, sequence)))
}
