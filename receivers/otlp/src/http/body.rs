//! Reading and decoding an OTLP/HTTP request body, with the size limit enforced before any decoding:
//! a `Content-Length` over the limit is refused without reading a byte, a body without one is cut off as soon
//! as it passes the limit, and a compressed body is refused as soon as its decompressed size passes it.
//!
//! Buffers: an uncompressed protobuf body travels on as the bytes hyper received (a single chunk is not even
//! copied). A compressed body is decompressed into a per-thread buffer that is reused by the next request on
//! the same worker thread; decompression and decoding run without an `.await` in between, so the buffer is
//! never held across a suspension point. Buffers that grew past [`KEEP_BUFFER_BYTES`] are released, so one
//! large request does not pin its memory for good.

use std::cell::RefCell;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use otlake_core::{Payload, Signal};

use crate::decode::{Format, decode};
use crate::decompress::{DecompressError, Encoding, decompress_into};
use crate::http::RequestError;

/// Decompression buffers up to this size are kept for the next request.
pub const KEEP_BUFFER_BYTES: usize = 4 << 20;

thread_local! {
    static DECOMPRESSED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads the whole body, refusing it once it passes `limit` bytes.
pub async fn read_body(
    body: axum::body::Body,
    content_length: Option<u64>,
    limit: usize,
) -> Result<Bytes, RequestError> {
    if let Some(length) = content_length
        && length > limit as u64
    {
        return Err(too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(limit)),
        Err(err) => Err(RequestError::BadRequest(format!(
            "cannot read the request body: {err}"
        ))),
    }
}

/// Reads and drops up to `limit` bytes of a body that will not be decoded, one chunk at a time.
pub async fn discard(body: axum::body::Body, limit: usize) {
    let mut body = Limited::new(body, limit);
    while let Some(Ok(_frame)) = body.frame().await {}
}

fn too_large(limit: usize) -> RequestError {
    RequestError::TooLarge(format!(
        "the request is larger than max_request_bytes ({limit} bytes)"
    ))
}

/// Decompresses (if needed) and decodes one body.
pub fn decode_body(
    signal: Signal,
    format: Format,
    encoding: Encoding,
    body: &Bytes,
    limit: usize,
) -> Result<Payload, RequestError> {
    let bad = |err: crate::decode::DecodeError| RequestError::BadRequest(err.to_string());
    if encoding == Encoding::Identity {
        return decode(signal, format, body.clone()).map_err(bad);
    }
    DECOMPRESSED.with(|cell| {
        // Re-entrancy is impossible (no await, no callback into this module), but never panic on it.
        let mut fresh = Vec::new();
        let mut guard = cell.try_borrow_mut();
        let buffer = match guard.as_deref_mut() {
            Ok(buffer) => buffer,
            Err(_) => &mut fresh,
        };
        let result = match decompress_into(encoding, body, limit, buffer) {
            // A protobuf request travels on in wire form, so it leaves the reused buffer as a copy; JSON is
            // decoded from the buffer itself.
            Ok(()) => match format {
                Format::Protobuf => decode(signal, format, Bytes::copy_from_slice(buffer)),
                Format::Json => crate::json::decode_json(signal, buffer),
            }
            .map_err(bad),
            Err(DecompressError::TooLarge { limit }) => Err(too_large(limit)),
            Err(err @ DecompressError::Corrupt { .. }) => {
                Err(RequestError::BadRequest(err.to_string()))
            }
        };
        buffer.clear();
        if buffer.capacity() > KEEP_BUFFER_BYTES {
            *buffer = Vec::new();
        }
        result
    })
}
