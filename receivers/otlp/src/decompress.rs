//! Request body decompression (OTLP/HTTP `Content-Encoding`), bounded by the decompressed size.
//!
//! The limit applies to the output, so a small gzip "bomb" that would expand to gigabytes stops at
//! `limit + 1` bytes and is refused as too large. Decompression writes into a caller-provided buffer so the
//! HTTP path can reuse one per worker thread (see [`crate::http::body`]).

use std::io::Read;

use crate::error::Error;

/// A `Content-Encoding` the receiver understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
    /// HTTP `deflate`, which is the zlib format.
    Deflate,
}

impl Encoding {
    /// Parses a `Content-Encoding` value; `None` for one we do not support.
    pub fn from_header(value: &str) -> Option<Encoding> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Encoding::Identity),
            "gzip" | "x-gzip" => Some(Encoding::Gzip),
            "zstd" => Some(Encoding::Zstd),
            "deflate" => Some(Encoding::Deflate),
            _ => None,
        }
    }
}

/// Decompressed output is admitted against the memory budget in steps of this size (see [`decompress_into`]).
pub const ADMIT_STEP: usize = 1 << 20;

/// Decompresses `input` into `out` (cleared first), refusing output over `limit` bytes. Every
/// [`ADMIT_STEP`] bytes of output, `admit(bytes so far)` is asked whether the request may grow that far;
/// a `false` stops decompression with [`Error::OverBudget`] (the buffer is released), so a body that
/// inflates 100× cannot take more memory than the budget lets it.
pub fn decompress_into(
    encoding: Encoding,
    input: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
    mut admit: impl FnMut(usize) -> bool,
) -> Result<(), Error> {
    out.clear();
    let corrupt = |source| Error::Corrupt { encoding, source };
    if encoding == Encoding::Identity {
        out.extend_from_slice(input);
        return Ok(());
    }
    let mut reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity | Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Encoding::Deflate => Box::new(flate2::read::ZlibDecoder::new(input)),
        Encoding::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?)
        }
    };
    // One byte past the limit tells "exactly at the limit" from "over it".
    let cap = limit.saturating_add(1);
    loop {
        let step = ADMIT_STEP.min(cap - out.len()) as u64;
        let read = (&mut reader).take(step).read_to_end(out).map_err(corrupt)?;
        if out.len() > limit {
            *out = Vec::new();
            return Err(Error::TooLarge { limit });
        }
        if read == 0 {
            return Ok(());
        }
        if !admit(out.len()) {
            let decompressed = out.len();
            *out = Vec::new();
            return Err(Error::OverBudget(format!(
                "the collector's memory budget is spent ({decompressed} bytes decompressed so far)"
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).expect("write");
        encoder.finish().expect("finish")
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = b"otlp ".repeat(1000);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&data).expect("write");
        let cases = [
            (Encoding::Identity, data.clone()),
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Deflate, zlib.finish().expect("finish")),
            (
                Encoding::Zstd,
                zstd::encode_all(data.as_slice(), 1).expect("zstd"),
            ),
        ];
        let mut out = Vec::new();
        for (encoding, input) in cases {
            decompress_into(encoding, &input, data.len(), &mut out, |_| true)
                .expect("within the limit");
            assert_eq!(out, data, "{encoding:?}");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
        let mut out = Vec::new();
        let err = decompress_into(Encoding::Gzip, &bomb, 1 << 20, &mut out, |_| true)
            .expect_err("too large");
        assert!(matches!(err, Error::TooLarge { limit } if limit == 1 << 20));
        assert!(out.capacity() <= 4 << 20, "read far past the limit");
    }

    #[test]
    fn output_is_admitted_step_by_step_and_refused_when_the_budget_says_no() {
        let body = zstd::encode_all(vec![7u8; 10 << 20].as_slice(), 3).expect("zstd");
        let mut asked = Vec::new();
        let mut out = Vec::new();
        let err = decompress_into(Encoding::Zstd, &body, 30 << 20, &mut out, |bytes| {
            asked.push(bytes);
            bytes < 3 * ADMIT_STEP
        })
        .expect_err("over budget");
        assert!(
            matches!(&err, Error::OverBudget(message)
                if message.contains(&format!("({} bytes decompressed so far)", 3 * ADMIT_STEP))),
            "{err:?}"
        );
        assert_eq!(asked, [ADMIT_STEP, 2 * ADMIT_STEP, 3 * ADMIT_STEP]);
        assert_eq!(out.capacity(), 0, "the buffer is released");
    }

    #[test]
    fn garbage_is_corrupt() {
        let err = decompress_into(Encoding::Gzip, b"not gzip", 100, &mut Vec::new(), |_| true)
            .expect_err("bad");
        assert!(matches!(err, Error::Corrupt { .. }));
    }

    #[test]
    fn content_encoding_names() {
        assert_eq!(Encoding::from_header("GZIP"), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header("identity"), Some(Encoding::Identity));
        assert_eq!(Encoding::from_header("br"), None);
    }
}
