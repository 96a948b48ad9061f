//! Body compression for OTLP/HTTP (gRPC compresses inside tonic). Fast levels: the exporter runs beside a
//! model server and its CPU is not ours to spend; OTLP data compresses well even at level 1.

use std::io::Write;

use otlake_core::config::Compression;

/// gzip level 1, as the Collector's HTTP client uses (`BestSpeed`).
const GZIP_LEVEL: u32 = 1;
/// zstd level 1: most of the ratio of the default level 3 at a fraction of the CPU.
const ZSTD_LEVEL: i32 = 1;

/// Compresses `body`; `None` returns it as is.
pub fn compress(compression: Compression, body: Vec<u8>) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(body),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::new(GZIP_LEVEL),
            );
            encoder.write_all(&body)?;
            encoder.finish()
        }
        Compression::Zstd => zstd::bulk::compress(&body, ZSTD_LEVEL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn both_codecs_round_trip() {
        let body = b"otlp ".repeat(1000);
        let gz = compress(Compression::Gzip, body.clone()).expect("gzip");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut out)
            .expect("gunzip");
        assert_eq!(out, body);
        let zs = compress(Compression::Zstd, body.clone()).expect("zstd");
        assert!(zs.len() < body.len());
        assert_eq!(zstd::decode_all(zs.as_slice()).expect("unzstd"), body);
    }
}
