//! The on-disk framing of one log record, and its checksum.
//!
//! ```text
//! segment file = MAGIC (8 bytes) record*
//! record       = body_len: u32 LE | crc32c: u32 LE | sequence: u64 LE | body (body_len bytes)
//! crc32c       = CRC-32C over sequence (8 bytes LE) and body
//! ```
//! A record is valid only if its whole length is in the file, its checksum matches and its sequence is the one
//! expected next. That catches a torn write (power loss mid-append: the length runs past the end or the
//! checksum fails), bit rot, and stale bytes from an earlier life of the file (a wrong sequence).

use crc::{Crc, Table};

/// First bytes of every segment file: the format and its version.
pub const MAGIC: &[u8; 8] = b"OTLWAL01";
/// Bytes before a record's body.
pub const HEADER_LEN: usize = 16;
/// A body larger than this is refused on append and treated as corruption on read.
pub const MAX_BODY_LEN: usize = u32::MAX as usize;

static CRC32C: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&crc::CRC_32_ISCSI);

/// The checksum a record of `sequence` with `body` carries.
pub fn checksum(sequence: u64, body: &[u8]) -> u32 {
    let mut digest = CRC32C.digest();
    digest.update(&sequence.to_le_bytes());
    digest.update(body);
    digest.finalize()
}

/// Writes a record header for `body` (already in `buf` from `body_start`) in the 16 bytes before it.
pub fn seal(buf: &mut [u8], header_start: usize, sequence: u64) {
    let body_start = header_start + HEADER_LEN;
    let body_len = (buf.len() - body_start) as u32;
    let crc = checksum(sequence, &buf[body_start..]);
    buf[header_start..header_start + 4].copy_from_slice(&body_len.to_le_bytes());
    buf[header_start + 4..header_start + 8].copy_from_slice(&crc.to_le_bytes());
    buf[header_start + 8..body_start].copy_from_slice(&sequence.to_le_bytes());
}

/// A record header as read from disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub body_len: usize,
    pub crc: u32,
    pub sequence: u64,
}

impl Header {
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Header {
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[8..16]);
        Header {
            body_len: u32_at(0) as usize,
            crc: u32_at(4),
            sequence: u64::from_le_bytes(seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_parses_back_and_its_checksum_covers_the_sequence() {
        let mut buf = vec![0u8; HEADER_LEN];
        buf.extend_from_slice(b"hello");
        seal(&mut buf, 0, 42);
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&buf[..HEADER_LEN]);
        let header = Header::parse(&header);
        assert_eq!(header.body_len, 5);
        assert_eq!(header.sequence, 42);
        assert_eq!(header.crc, checksum(42, b"hello"));
        assert_ne!(header.crc, checksum(43, b"hello"));
        // CRC-32C check value of "123456789".
        let mut digest = CRC32C.digest();
        digest.update(b"123456789");
        assert_eq!(digest.finalize(), 0xE306_9283);
    }
}
