//! What one log record holds: a batch's signal, its request metadata and its OTLP payload as protobuf.
//!
//! ```text
//! body = signal: u8 (1 traces, 2 logs, 3 metrics) | pairs: u16 LE | (key_len: u16 LE, key, value_len: u32 LE, value)*
//!        | ExportTraceServiceRequest / ExportLogsServiceRequest / ExportMetricsServiceRequest (protobuf)
//! ```
//! The payload is written straight into the log's write buffer (the one copy on the hot path: a payload still in
//! its wire form is copied, not re-encoded) and read back, validated but not decoded, only when an entry must come
//! from disk (replay, or a retry after the in-memory copy was let go).

use std::collections::BTreeMap;

use bytes::Bytes;
use otlake_core::{Payload, RequestMeta, Signal};

fn signal_code(signal: Signal) -> u8 {
    match signal {
        Signal::Traces => 1,
        Signal::Logs => 2,
        Signal::Metrics => 3,
    }
}

/// Appends the body of a record for `payload` and `meta` to `buf`.
pub fn encode(payload: &Payload, meta: &RequestMeta, buf: &mut Vec<u8>) {
    buf.push(signal_code(payload.signal()));
    // Keys and values come from request headers, far below these limits; longer ones are left out.
    let pairs: Vec<(&String, &String)> = meta
        .metadata
        .iter()
        .filter(|(k, v)| k.len() <= u16::MAX as usize && v.len() <= u32::MAX as usize)
        .take(u16::MAX as usize)
        .collect();
    buf.extend_from_slice(&(pairs.len() as u16).to_le_bytes());
    for (key, value) in pairs {
        buf.extend_from_slice(&(key.len() as u16).to_le_bytes());
        buf.extend_from_slice(key.as_bytes());
        buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        buf.extend_from_slice(value.as_bytes());
    }
    payload.write_to(buf);
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("undecodable log entry: {0}")]
pub struct DecodeError(String);

/// Reads a record body back into the payload and metadata it was written from.
pub fn decode(body: &[u8]) -> Result<(Payload, RequestMeta), DecodeError> {
    let mut rest = body;
    let mut take = |n: usize| -> Result<&[u8], DecodeError> {
        if rest.len() < n {
            return Err(DecodeError(format!("{} bytes missing", n - rest.len())));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let signal = take(1)?[0];
    let pairs = u16::from_le_bytes([take(1)?[0], take(1)?[0]]);
    let mut metadata = BTreeMap::new();
    for _ in 0..pairs {
        let key_len = take(2)?;
        let key_len = u16::from_le_bytes([key_len[0], key_len[1]]) as usize;
        let key = String::from_utf8_lossy(take(key_len)?).into_owned();
        let value_len = take(4)?;
        let value_len =
            u32::from_le_bytes([value_len[0], value_len[1], value_len[2], value_len[3]]) as usize;
        let value = String::from_utf8_lossy(take(value_len)?).into_owned();
        metadata.insert(key, value);
    }
    let signal = match signal {
        1 => Signal::Traces,
        2 => Signal::Logs,
        3 => Signal::Metrics,
        other => return Err(DecodeError(format!("unknown signal code {other}"))),
    };
    // Kept in wire form: a replay that only forwards never decodes.
    let payload = Payload::from_wire(signal, Bytes::copy_from_slice(rest))
        .map_err(|e| DecodeError(e.to_string()))?;
    Ok((payload, RequestMeta::from_metadata(metadata)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::test_util::{sample_logs, sample_metrics, sample_traces};

    #[test]
    fn every_signal_and_its_metadata_round_trip() {
        let mut meta = RequestMeta::default();
        meta.metadata.insert("x-tenant".into(), "a".into());
        for payload in [
            Payload::from(sample_traces(2, 3)),
            Payload::from(sample_logs(1, 4)),
            Payload::from(sample_metrics(2)),
        ] {
            let mut buf = Vec::new();
            encode(&payload, &meta, &mut buf);
            let (back, back_meta) = decode(&buf).expect("decodes");
            assert_eq!(back, payload);
            assert_eq!(back_meta, meta);
        }
    }

    #[test]
    fn a_cut_body_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        encode(
            &Payload::from(sample_logs(1, 4)),
            &RequestMeta::default(),
            &mut buf,
        );
        for cut in [0, 1, 2, 5, buf.len() / 2] {
            let _ = decode(&buf[..cut]);
        }
        assert!(decode(&[9, 0, 0]).is_err());
    }
}
