//! The OTLP/gRPC front end: the three `Export` methods (`TraceService`, `LogsService`, `MetricsService`),
//! served as an axum router over h2c with tonic's unary server machinery and our own codec.
//!
//! | answer                          | gRPC status                                              |
//! |---------------------------------|----------------------------------------------------------|
//! | accepted                        | OK, `partial_success` when items were refused            |
//! | retry (pipeline full, failure)  | `UNAVAILABLE`, with `google.rpc.RetryInfo` when a delay is known |
//! | memory budget spent (not decoded) | `UNAVAILABLE` + `RetryInfo` 1s (see [`crate::admission`]) |
//! | rejected                        | `INVALID_ARGUMENT`                                       |
//! | no pipeline for the signal      | `UNIMPLEMENTED`                                          |
//! | malformed protobuf              | `INVALID_ARGUMENT` (our codec)                           |
//! | corrupt gzip/zstd, cut stream   | `INVALID_ARGUMENT` (tonic says `INTERNAL`: remapped)     |
//! | message over the size limit     | `RESOURCE_EXHAUSTED` (tonic says `OUT_OF_RANGE`: remapped) |
//! | decompressed over the limit     | `RESOURCE_EXHAUSTED` (tonic's own)                       |
//!
//! Why a codec of our own instead of opentelemetry-proto's generated servers: the generated servers hard-code
//! prost's codec, which decodes through tonic's chunked buffer type and is measurably slower than decoding a
//! contiguous slice (prost's varint fast path needs one). [`RequestDecoder`] takes the message out of tonic's
//! buffer without copying (`copy_to_bytes` splits it off) and decodes it with [`decode_protobuf`], the same
//! function the HTTP path uses: one place for a faster decoder to replace, and decode errors that read the same
//! on both protocols.
//!
//! The size limit is tonic's `max_decoding_message_size`: tonic checks the 5-byte length prefix before it
//! buffers the message and bounds decompression by the same limit, so an oversized or bomb request is refused
//! before decoding. tonic answers some request-reading failures with codes the OTLP spec does not use for them;
//! [`remap_decode_status`] rewrites them on the way out. That is safe because a unary tonic server answers
//! `OUT_OF_RANGE` or `INTERNAL` in the response headers (trailers-only) only when it could not read the
//! request, and our handlers never return those codes themselves.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::response::Response;
use bytes::{Buf, Bytes};
use http::HeaderValue;
use otlake_core::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use otlake_core::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use otlake_core::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use otlake_core::{Payload, Signal};
use prost::Message;
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{NamedService, UnaryService};
use tonic::{Code, Request, Status};

use crate::decode::{decode_off_reactor, decode_protobuf};
use crate::ingest::{Answer, Ingest};
use otlake_core::rpc_status::RpcStatus;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What an accepted request's response says about refused items: `(rejected, error_message)`.
type Partial = Option<(i64, String)>;

/// One OTLP export service: its signal, gRPC service name and response type.
trait ExportKind: Send + Sync + 'static {
    const SIGNAL: Signal;
    /// The fully qualified service name; the method is `/<SERVICE>/Export`.
    const SERVICE: &'static str;
    type Response: Message + Default + Send + 'static;
    fn response(partial: Partial) -> Self::Response;
}

struct TraceExport;
struct LogsExport;
struct MetricsExport;

impl ExportKind for TraceExport {
    const SIGNAL: Signal = Signal::Traces;
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    type Response = ExportTraceServiceResponse;
    fn response(partial: Partial) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message,
            }),
        }
    }
}

impl ExportKind for LogsExport {
    const SIGNAL: Signal = Signal::Logs;
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    type Response = ExportLogsServiceResponse;
    fn response(partial: Partial) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message,
            }),
        }
    }
}

impl ExportKind for MetricsExport {
    const SIGNAL: Signal = Signal::Metrics;
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    type Response = ExportMetricsServiceResponse;
    fn response(partial: Partial) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message,
            }),
        }
    }
}

/// A decoded request and its share of the memory budget (reserved by the codec before decoding).
struct Admitted {
    payload: Payload,
    reservation: otlake_core::Reservation,
}

/// Hands decoded requests to [`Ingest`] and turns answers into gRPC results. Shared by the three services.
struct Exports {
    ingest: Arc<Ingest>,
    include_metadata: bool,
    max_message_bytes: usize,
}

impl Exports {
    async fn export(&self, request: Request<Admitted>) -> Result<Partial, Status> {
        let (metadata, _, admitted) = request.into_parts();
        let meta = self
            .include_metadata
            .then(|| crate::metadata::from_headers(&metadata.into_headers()));
        let answer = self
            .ingest
            .export_held(admitted.payload, meta, Some(admitted.reservation))
            .await;
        match answer {
            Answer::Accepted {
                rejected_items,
                message,
            } => Ok((rejected_items > 0 || message.is_some()).then(|| {
                (
                    i64::try_from(rejected_items).unwrap_or(i64::MAX),
                    message.unwrap_or_default(),
                )
            })),
            Answer::Retry {
                message,
                retry_after,
            } => Err(retry_status(message, retry_after)),
            Answer::Rejected { message } => Err(Status::invalid_argument(message)),
            Answer::NoPipeline { message } => Err(Status::unimplemented(message)),
        }
    }
}

/// `UNAVAILABLE`, with `google.rpc.RetryInfo` when the delay is known.
fn retry_status(message: String, retry_after: Option<std::time::Duration>) -> Status {
    match retry_after {
        Some(delay) => {
            let details = RpcStatus::new(Code::Unavailable as i32, message.as_str())
                .with_retry_delay(delay)
                .encode_to_vec();
            Status::with_details(Code::Unavailable, message, Bytes::from(details))
        }
        None => Status::unavailable(message),
    }
}

/// Encodes responses with prost.
struct ResponseEncoder<K>(PhantomData<fn() -> K>);

impl<K: ExportKind> Encoder for ResponseEncoder<K> {
    type Item = K::Response;
    type Error = Status;

    fn encode(&mut self, item: K::Response, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|err| Status::internal(format!("cannot encode the response: {err}")))
    }
}

/// Decodes requests from one contiguous slice (see the module docs), after reserving their share of the
/// memory budget: a spent budget answers `UNAVAILABLE` with `RetryInfo` before decoding.
struct RequestDecoder<K> {
    ingest: Arc<Ingest>,
    kind: PhantomData<fn() -> K>,
}

impl<K: ExportKind> Decoder for RequestDecoder<K> {
    type Item = Admitted;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Admitted>, Status> {
        // tonic hands over exactly one message; splitting it off its buffer copies nothing.
        let message = src.copy_to_bytes(src.remaining());
        let reservation = match self.ingest.admit(K::SIGNAL, message.len() as u64) {
            Ok(reservation) => reservation,
            Err(Answer::Retry {
                message,
                retry_after,
            }) => return Err(retry_status(message, retry_after)),
            Err(other) => return Err(Status::unavailable(format!("{other:?}"))),
        };
        let payload = decode_off_reactor(message.len(), || {
            decode_protobuf(K::SIGNAL, message.clone())
        })
        .map_err(|err| Status::new(err.answer_codes().1, err.to_string()))?;
        Ok(Some(Admitted {
            payload,
            reservation,
        }))
    }
}

struct ExportCodec<K> {
    ingest: Arc<Ingest>,
    kind: PhantomData<fn() -> K>,
}

impl<K: ExportKind> Codec for ExportCodec<K> {
    type Encode = K::Response;
    type Decode = Admitted;
    type Encoder = ResponseEncoder<K>;
    type Decoder = RequestDecoder<K>;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder {
            ingest: Arc::clone(&self.ingest),
            kind: PhantomData,
        }
    }
}

/// The `Export` method of one service, as tonic's unary server calls it.
struct ExportMethod<K> {
    exports: Arc<Exports>,
    kind: PhantomData<fn() -> K>,
}

impl<K: ExportKind> UnaryService<Admitted> for ExportMethod<K> {
    type Response = K::Response;
    type Future = BoxFuture<Result<tonic::Response<K::Response>, Status>>;

    fn call(&mut self, request: Request<Admitted>) -> Self::Future {
        let exports = Arc::clone(&self.exports);
        Box::pin(async move {
            let partial = exports.export(request).await?;
            Ok(tonic::Response::new(K::response(partial)))
        })
    }
}

/// One export service (`/<SERVICE>/*`), routed by [`tonic::service::Routes`].
struct ExportService<K> {
    exports: Arc<Exports>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for ExportService<K> {
    fn clone(&self) -> Self {
        ExportService {
            exports: Arc::clone(&self.exports),
            kind: PhantomData,
        }
    }
}

impl<K: ExportKind> NamedService for ExportService<K> {
    const NAME: &'static str = K::SERVICE;
}

impl<K: ExportKind> tower::Service<http::Request<Body>> for ExportService<K> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let exports = Arc::clone(&self.exports);
        Box::pin(async move {
            let method = request
                .uri()
                .path()
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(K::SERVICE));
            if method != Some("/Export") {
                let status = Status::unimplemented(format!(
                    "{} has no method `{}`",
                    K::SERVICE,
                    method.unwrap_or("").trim_start_matches('/')
                ));
                return Ok(status.into_http());
            }
            let limit = exports.max_message_bytes;
            let codec = ExportCodec::<K> {
                ingest: Arc::clone(&exports.ingest),
                kind: PhantomData,
            };
            let mut grpc = tonic::server::Grpc::new(codec)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(limit);
            let method = ExportMethod::<K> {
                exports,
                kind: PhantomData,
            };
            Ok(grpc.unary(method, request).await)
        })
    }
}

fn service<K: ExportKind>(exports: &Arc<Exports>) -> ExportService<K> {
    ExportService {
        exports: Arc::clone(exports),
        kind: PhantomData,
    }
}

/// The gRPC application (no socket: `run` and tests serve it).
pub fn router(ingest: Arc<Ingest>, include_metadata: bool, max_message_bytes: usize) -> Router {
    let exports = Arc::new(Exports {
        ingest,
        include_metadata,
        max_message_bytes,
    });
    tonic::service::Routes::new(service::<TraceExport>(&exports))
        .add_service(service::<LogsExport>(&exports))
        .add_service(service::<MetricsExport>(&exports))
        .into_axum_router()
        .layer(axum::middleware::map_response(remap_decode_status))
}

const GRPC_STATUS: &str = "grpc-status";

/// Rewrites the codes tonic answers a request it could not read with (see the module docs).
async fn remap_decode_status(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // The numeric values of `Code::OutOfRange` (11) and `Code::Internal` (13), as they appear on the wire.
    let remapped = match headers.get(GRPC_STATUS).map(HeaderValue::as_bytes) {
        Some(b"11") => Code::ResourceExhausted,
        Some(b"13") => Code::InvalidArgument,
        _ => return response,
    };
    headers.insert(GRPC_STATUS, HeaderValue::from(remapped as i32));
    response
}
