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
//! | malformed protobuf              | `INVALID_ARGUMENT`                                       |
//! | corrupt gzip/zstd, cut stream   | `INVALID_ARGUMENT`                                       |
//! | message over the size limit (as sent or decompressed) | `RESOURCE_EXHAUSTED`               |
//! | unknown `grpc-encoding`         | `UNIMPLEMENTED` + `grpc-accept-encoding`                 |
//!
//! Why our own unary handling instead of opentelemetry-proto's generated servers (and tonic's codec
//! machinery): the request's one message is read, admitted against the memory budget and decompressed by
//! [`crate::grpc_message`] before anything buffers it whole, so a gzip bomb cannot take more than the budget
//! (tonic would inflate it up to the size limit first). The message is then decoded from one contiguous slice
//! with [`decode_protobuf`], the function the HTTP path uses: prost's varint fast path needs a contiguous slice
//! (the generated servers decode through tonic's chunked buffer, measurably slower), there is one place for a
//! faster decoder to replace, and decode errors read the same on both protocols. The answer is framed here
//! too (one length-prefixed message, then `grpc-status: 0` in the trailers); errors are tonic's trailers-only
//! answers ([`Status::into_http`]).

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, header};
use http_body_util::{BodyExt, Full};
use otlake_core::Signal;
use otlake_core::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use otlake_core::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use otlake_core::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Status};

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

/// Hands decoded requests to [`Ingest`] and turns answers into gRPC results. Shared by the three services.
struct Exports {
    ingest: Arc<Ingest>,
    include_metadata: bool,
    max_message_bytes: usize,
}

impl Exports {
    /// Reads, admits, decodes and exports one `Export` call.
    async fn export(
        &self,
        signal: Signal,
        request: http::Request<Body>,
    ) -> Result<Partial, Status> {
        let (parts, body) = request.into_parts();
        let encoding = crate::grpc_message::request_encoding(&parts.headers)?;
        let meta = self
            .include_metadata
            .then(|| crate::metadata::from_headers(&parts.headers));
        let message =
            crate::grpc_message::read(&self.ingest, signal, encoding, body, self.max_message_bytes)
                .await?;
        let bytes = message.bytes;
        let payload = decode_off_reactor(bytes.len(), || decode_protobuf(signal, bytes.clone()))
            .map_err(|err| Status::new(err.answer_codes().1, err.to_string()))?;
        drop(bytes);
        let answer = self
            .ingest
            .export_held(payload, meta, Some(message.reservation))
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
pub(crate) fn retry_status(message: String, retry_after: Option<std::time::Duration>) -> Status {
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

/// A successful unary answer: `message` with its 5-byte prefix, then `grpc-status: 0` in the trailers.
fn ok_response(message: &impl Message) -> http::Response<Body> {
    let length = message.encoded_len();
    let mut frame = BytesMut::with_capacity(5 + length);
    frame.put_u8(0);
    frame.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
    // Encoding into a buffer with room for the whole message cannot fail.
    let _ = message.encode(&mut frame);
    let mut trailers = HeaderMap::new();
    trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
    let body = Full::new(frame.freeze()).with_trailers(async move { Some(Ok(trailers)) });
    let mut response = http::Response::new(Body::new(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
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
            Ok(match exports.export(K::SIGNAL, request).await {
                Ok(partial) => ok_response(&K::response(partial)),
                Err(status) => status.into_http(),
            })
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
}

const GRPC_STATUS: &str = "grpc-status";
