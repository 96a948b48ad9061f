//! Reading and decoding an OTLP/HTTP request body, with the size limit enforced before any decoding:
//! a `Content-Length` over the limit is refused without keeping a byte, a body without one is refused as soon
//! as it passes the limit, and a compressed body is refused as soon as its decompressed size passes it.
//!
//! A refused body is still read and thrown away ([`drain`], up to [`DRAIN_MAX_BYTES`] and for at most
//! [`DRAIN_DEADLINE`]) before the answer: an HTTP/1.1 client is usually still writing it, and a server that
//! closes on an unread body resets the connection, so `urllib`/`requests` (the Python SDK) report a broken pipe
//! instead of the 413 or 503. Past the bound or the deadline the connection is closed as before.
//!
//! Buffers: an uncompressed protobuf body travels on as the bytes hyper received (a single chunk is not even
//! copied). A compressed body is decompressed into a per-thread buffer that is reused by the next request on
//! the same worker thread; decompression and decoding run without an `.await` in between, so the buffer is
//! never held across a suspension point. Buffers that grew past [`KEEP_BUFFER_BYTES`] are released, so one
//! large request does not pin its memory for good.

use std::cell::RefCell;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Limited};
use otlake_core::{Payload, Signal};

use crate::decode::{Format, decode};
use crate::decompress::{Encoding, decompress_into};
use crate::error::Error;
use crate::ingest::Answer;

/// Decompression buffers up to this size are kept for the next request.
pub const KEEP_BUFFER_BYTES: usize = 4 << 20;

thread_local! {
    static DECOMPRESSED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A refused body is read and dropped up to this many bytes before the answer (see the module docs).
pub const DRAIN_MAX_BYTES: usize = 64 << 20;
/// ... and for at most this long, so a slow client cannot hold the connection with a refused body.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Reads the whole body, refusing it once it passes `limit` bytes (the rest is drained). `admit(bytes read
/// so far)` is asked after each chunk, so a body without `Content-Length` is admitted against the memory
/// budget as it arrives; a refusal drains the rest and is [`Error::OverBudget`].
pub async fn read_body(
    mut body: axum::body::Body,
    content_length: Option<u64>,
    limit: usize,
    mut admit: impl FnMut(usize) -> Result<(), Answer>,
) -> Result<Bytes, Error> {
    if let Some(length) = content_length
        && length > limit as u64
    {
        drain(body).await;
        return Err(Error::TooLarge { limit });
    }
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Error::BodyUnreadable)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total > limit {
            drop(chunks);
            drain(body).await;
            return Err(Error::TooLarge { limit });
        }
        if let Err(refused) = admit(total) {
            drop(chunks);
            drain(body).await;
            return Err(over_budget(refused));
        }
        chunks.push(data);
    }
    Ok(concat(chunks, total))
}

/// One buffer of `chunks` (a single chunk is passed on as hyper received it).
fn concat(mut chunks: Vec<Bytes>, total: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut whole = BytesMut::with_capacity(total);
    for chunk in chunks {
        whole.extend_from_slice(&chunk);
    }
    whole.freeze()
}

/// Reads and drops what is left of a refused body, one chunk at a time (nothing kept), within
/// [`DRAIN_MAX_BYTES`] and [`DRAIN_DEADLINE`].
pub async fn drain(body: axum::body::Body) {
    let mut body = Limited::new(body, DRAIN_MAX_BYTES);
    let _ = tokio::time::timeout(DRAIN_DEADLINE, async {
        while let Some(Ok(_frame)) = body.frame().await {}
    })
    .await;
}

/// The memory budget's refusal, in its own words.
fn over_budget(refused: Answer) -> Error {
    match refused {
        Answer::Retry { message, .. } => Error::OverBudget(message),
        other => Error::OverBudget(format!("{other:?}")),
    }
}

/// Decompresses (if needed) and decodes one body. `admit(decompressed bytes so far)` is asked as a compressed
/// body inflates (see [`decompress_into`]): the reservation follows the real size, not the compressed one.
pub fn decode_body(
    signal: Signal,
    format: Format,
    encoding: Encoding,
    body: &Bytes,
    limit: usize,
    mut admit: impl FnMut(usize) -> Result<(), Answer>,
) -> Result<Payload, Error> {
    if encoding == Encoding::Identity {
        return decode(signal, format, body.clone());
    }
    DECOMPRESSED.with(|cell| {
        // Re-entrancy is impossible (no await, no callback into this module), but never panic on it.
        let mut fresh = Vec::new();
        let mut guard = cell.try_borrow_mut();
        let buffer = match guard.as_deref_mut() {
            Ok(buffer) => buffer,
            Err(_) => &mut fresh,
        };
        let mut refused = None;
        let admit_step = |bytes| match admit(bytes) {
            Ok(()) => true,
            Err(answer) => {
                refused = Some(answer);
                false
            }
        };
        let result = match decompress_into(encoding, body, limit, buffer, admit_step) {
            // A protobuf request travels on in wire form, so it leaves the reused buffer as a copy; JSON is
            // decoded from the buffer itself.
            Ok(()) => match format {
                Format::Protobuf => decode(signal, format, Bytes::copy_from_slice(buffer)),
                Format::Json => crate::json::decode_json(signal, buffer),
            },
            // The budget's own refusal says more than "spent".
            Err(Error::OverBudget(message)) => Err(match refused.take() {
                Some(answer) => over_budget(answer),
                None => Error::OverBudget(message),
            }),
            Err(err) => Err(err),
        };
        buffer.clear();
        if buffer.capacity() > KEEP_BUFFER_BYTES {
            *buffer = Vec::new();
        }
        result
    })
}
