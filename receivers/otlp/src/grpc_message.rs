//! One unary gRPC message, read, admitted and decompressed by us rather than by tonic: the 5-byte prefix
//! (compressed flag, length) is read first; the message's size is reserved against the memory budget before a
//! byte of it is buffered; a compressed message (`grpc-encoding` `gzip` or `zstd`) is inflated with the same
//! [`decompress_into`] the HTTP path uses, its reservation growing with its decompressed size.
//!
//! Why not tonic's decompression: tonic buffers and inflates the whole message (up to the size limit) before
//! any codec sees it, so 200 concurrent gzip bombs of 30 MB each would take 6 GB whatever the budget says.
//! Here a message that would inflate past the budget is refused (`UNAVAILABLE` with `RetryInfo`) as soon as
//! its decompressed size crosses it, and one past the size limit is refused (`RESOURCE_EXHAUSTED`) as soon as
//! it crosses that.
//!
//! Answers (as `tonic::Status`): no message, a cut stream, an unknown flag, a compressed flag without
//! `grpc-encoding`, corrupt gzip/zstd: `INVALID_ARGUMENT`; over the limit: `RESOURCE_EXHAUSTED`; budget
//! spent: `UNAVAILABLE` + `RetryInfo`; an encoding we do not take: `UNIMPLEMENTED` with `grpc-accept-encoding`.

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt;
use otlake_core::{Reservation, Signal};
use tonic::Status;
use tonic::body::Body;

use crate::decode::decode_off_reactor;
use crate::decompress::{Encoding, decompress_into};
use crate::error::Error;
use crate::ingest::{Answer, Ingest};

/// A compressed message is first reserved at this many times its size, then re-admitted as it inflates
/// (as a compressed HTTP body is).
const COMPRESSED_WEIGHT: u64 = 4;

/// The encodings we take, as `grpc-accept-encoding` lists them.
pub const ACCEPT_ENCODING: &str = "gzip,zstd,identity";

/// The `grpc-encoding` of a request: `identity` when absent; `UNIMPLEMENTED` for one we do not take.
pub fn request_encoding(headers: &HeaderMap) -> Result<Encoding, Status> {
    let Some(value) = headers.get("grpc-encoding") else {
        return Ok(Encoding::Identity);
    };
    match value.to_str().ok().map(str::trim) {
        Some(name) if name.eq_ignore_ascii_case("identity") => Ok(Encoding::Identity),
        Some(name) if name.eq_ignore_ascii_case("gzip") => Ok(Encoding::Gzip),
        Some(name) if name.eq_ignore_ascii_case("zstd") => Ok(Encoding::Zstd),
        _ => {
            let mut status = Status::unimplemented(format!(
                "unsupported grpc-encoding `{}`: use gzip, zstd or identity",
                String::from_utf8_lossy(value.as_bytes())
            ));
            status.metadata_mut().insert(
                "grpc-accept-encoding",
                tonic::metadata::MetadataValue::from_static(ACCEPT_ENCODING),
            );
            Err(status)
        }
    }
}

/// A message read whole (decompressed if it was compressed), with its share of the memory budget.
pub struct Message {
    pub bytes: Bytes,
    pub reservation: Reservation,
}

/// Reads the request's first (for a unary call, only) message; see the module docs.
pub async fn read(
    ingest: &Ingest,
    signal: Signal,
    encoding: Encoding,
    body: Body,
    limit: usize,
) -> Result<Message, Status> {
    let mut reader = Reader {
        body,
        buffered: BytesMut::new(),
    };
    if !reader.fill(5).await? {
        return Err(Status::invalid_argument(if reader.buffered.is_empty() {
            "the request has no message"
        } else {
            "the request ended inside the message prefix"
        }));
    }
    let mut prefix = reader.buffered.split_to(5);
    let compressed = match prefix.get_u8() {
        0 => false,
        1 => true,
        flag => {
            return Err(Status::invalid_argument(format!(
                "invalid gRPC message flag {flag}"
            )));
        }
    };
    let length = prefix.get_u32() as usize;
    if compressed && encoding == Encoding::Identity {
        return Err(Status::invalid_argument(
            "the message is flagged compressed but the request has no grpc-encoding",
        ));
    }
    if length > limit {
        return Err(too_large(limit));
    }
    let weight = if compressed { COMPRESSED_WEIGHT } else { 1 };
    let mut reservation = ingest
        .admit(signal, (length as u64).saturating_mul(weight))
        .map_err(over_budget)?;
    reader
        .buffered
        .reserve(length.saturating_sub(reader.buffered.len()));
    if !reader.fill(length).await? {
        return Err(Status::invalid_argument(
            "the request ended inside the message",
        ));
    }
    let wire = reader.buffered.split_to(length).freeze();
    drop(reader);
    if !compressed {
        return Ok(Message {
            bytes: wire,
            reservation,
        });
    }
    let inflated = decode_off_reactor(length.saturating_mul(COMPRESSED_WEIGHT as usize), || {
        inflate(ingest, signal, encoding, &wire, limit, &mut reservation)
    })?;
    Ok(Message {
        bytes: inflated,
        reservation,
    })
}

/// Decompresses `wire`, growing `reservation` with the output (see [`decompress_into`]).
fn inflate(
    ingest: &Ingest,
    signal: Signal,
    encoding: Encoding,
    wire: &[u8],
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, Status> {
    let mut refused = None;
    let mut out = Vec::new();
    let result = decompress_into(encoding, wire, limit, &mut out, |inflated| {
        match ingest.grow(signal, reservation, inflated as u64) {
            Ok(()) => true,
            Err(answer) => {
                refused = Some(answer);
                false
            }
        }
    });
    match result {
        Ok(()) => Ok(Bytes::from(out)),
        Err(Error::TooLarge { limit }) => Err(too_large(limit)),
        Err(err @ Error::OverBudget(_)) => Err(match refused {
            Some(answer) => over_budget(answer),
            None => Status::unavailable(err.to_string()),
        }),
        Err(err) => Err(Status::new(err.answer_codes().1, err.to_string())),
    }
}

fn too_large(limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "the message is larger than the receiver's limit ({limit} bytes; max_recv_msg_size_mib or max_request_bytes)"
    ))
}

/// The budget's refusal, as `UNAVAILABLE` with its `RetryInfo`.
fn over_budget(answer: Answer) -> Status {
    match answer {
        Answer::Retry {
            message,
            retry_after,
        } => crate::grpc::retry_status(message, retry_after),
        other => Status::unavailable(format!("{other:?}")),
    }
}

/// Collects the request body's data frames until enough bytes are buffered.
struct Reader {
    body: Body,
    buffered: BytesMut,
}

impl Reader {
    /// Reads until `n` bytes are buffered; `false` if the body ended first.
    async fn fill(&mut self, n: usize) -> Result<bool, Status> {
        while self.buffered.len() < n {
            match self.body.frame().await {
                None => return Ok(false),
                Some(Err(err)) => {
                    return Err(Status::invalid_argument(format!(
                        "cannot read the request: {}",
                        err.message()
                    )));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffered.extend_from_slice(&data);
                    }
                }
            }
        }
        Ok(true)
    }
}
