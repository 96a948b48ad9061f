//! Request bytes → [`Payload`]: the one place a request is decoded, for both encodings OTLP/HTTP allows.
//!
//! - Protobuf: validated, not decoded ([`otlake_core::wire`]): the request travels on in its wire form and only
//!   a stage that reads the data decodes it. Validation refuses exactly what prost's decoder refuses (invalid
//!   UTF-8 in a string field included, as the protobuf spec requires), so a later decode cannot fail.
//! - JSON (OTLP/JSON): see [`crate::json`].
//!
//! Errors name the signal's message and, from prost or serde, the field that was wrong.

use bytes::Bytes;
use otlake_core::{Payload, Signal};

use crate::error::{Error, message_name};

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

/// Decodes one export request of `signal` in `format`.
pub fn decode(signal: Signal, format: Format, bytes: Bytes) -> Result<Payload, Error> {
    match format {
        Format::Protobuf => decode_protobuf(signal, bytes),
        Format::Json => crate::json::decode_json(signal, &bytes),
    }
}

/// Validates an OTLP protobuf export request and keeps it in wire form (the hot path: see the module docs).
pub fn decode_protobuf(signal: Signal, bytes: Bytes) -> Result<Payload, Error> {
    Payload::from_wire(signal, bytes).map_err(|source| Error::Protobuf {
        message: message_name(signal),
        source,
    })
}

/// Requests from this size on are decoded under `block_in_place`: decoding a large request takes long enough
/// (about 100 ms for 30 MB) to stall the other connections served by the same worker thread.
pub const LONG_DECODE_BYTES: usize = 1 << 20;

/// Runs `decode` for a request of `bytes` bytes, under `block_in_place` when it is large and the runtime allows
/// it (the daemon's multi-thread runtime; a current-thread runtime, as in unit tests, decodes in place).
pub fn decode_off_reactor<T>(bytes: usize, decode: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if bytes >= LONG_DECODE_BYTES && multi_thread {
        tokio::task::block_in_place(decode)
    } else {
        decode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::test_util::{sample_logs, sample_metrics, sample_traces};

    #[test]
    fn protobuf_of_every_signal_decodes_to_the_same_payload() {
        for payload in [
            Payload::from(sample_traces(2, 3)),
            Payload::from(sample_logs(2, 3)),
            Payload::from(sample_metrics(2)),
        ] {
            let decoded =
                decode(payload.signal(), Format::Protobuf, payload.encoded()).expect("decodes");
            assert!(decoded.is_wire(), "validated, not decoded");
            assert_eq!(decoded.item_count(), payload.item_count());
            assert_eq!(decoded, payload);
        }
    }

    #[test]
    fn malformed_protobuf_names_the_message() {
        let err = decode(
            Signal::Logs,
            Format::Protobuf,
            Bytes::from_static(b"\x0a\xff\xff\xff"),
        )
        .expect_err("malformed");
        let text = err.to_string();
        assert!(
            text.contains("invalid protobuf in ExportLogsServiceRequest"),
            "{text}"
        );
    }

    #[test]
    fn invalid_utf8_in_a_string_field_is_refused() {
        let bytes = otlake_core::test_util::traces_with_invalid_utf8();
        let err =
            decode(Signal::Traces, Format::Protobuf, bytes.into()).expect_err("invalid UTF-8");
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }
}
