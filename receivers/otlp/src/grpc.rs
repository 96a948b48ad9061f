//! The OTLP/gRPC front end: the three `Export` services of opentelemetry-proto's generated tonic servers,
//! served as an axum router over h2c.
//!
//! | answer                          | gRPC status                                              |
//! |---------------------------------|----------------------------------------------------------|
//! | accepted                        | OK, `partial_success` when items were refused            |
//! | retry (pipeline full, failure)  | `UNAVAILABLE`, with `google.rpc.RetryInfo` when a delay is known |
//! | rejected                        | `INVALID_ARGUMENT`                                       |
//! | no pipeline for the signal      | `UNIMPLEMENTED`                                          |
//! | malformed protobuf, bad gzip    | `INVALID_ARGUMENT` (tonic says `INTERNAL`: remapped)     |
//! | message over the size limit     | `RESOURCE_EXHAUSTED` (tonic says `OUT_OF_RANGE`: remapped) |
//! | decompressed over the limit     | `RESOURCE_EXHAUSTED` (tonic's own)                       |
//!
//! The size limit is tonic's `max_decoding_message_size`: tonic checks the 5-byte length prefix before it
//! buffers the message, and bounds decompression by the same limit, so an oversized or bomb request is refused
//! before decoding. tonic answers those, and decode failures, with codes the OTLP spec does not use for them;
//! [`remap_decode_status`] rewrites them on the way out. That is safe because a unary tonic server answers
//! `OUT_OF_RANGE` or `INTERNAL` in the response headers (trailers-only) only when it could not read the
//! request, and our handlers never return those codes themselves.
//!
//! Decoding is tonic's prost codec (the generated servers hard-code it). A faster decoder would need a custom
//! `Codec` and hand-written `Service`s for the three paths, which this module is shaped to allow.

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderValue;
use otlake_core::Payload;
use otlake_core::proto::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use otlake_core::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use otlake_core::proto::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use otlake_core::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use otlake_core::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use otlake_core::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response as GrpcResponse, Status};

use crate::ingest::{Answer, Ingest};
use crate::rpc_status::RpcStatus;

/// Implements the three export services on top of [`Ingest`].
#[derive(Clone)]
struct Exports {
    ingest: Arc<Ingest>,
    include_metadata: bool,
}

/// What an accepted request's response says about refused items: `(rejected, error_message)`.
type Partial = Option<(i64, String)>;

impl Exports {
    async fn export<T: Into<Payload>>(&self, request: Request<T>) -> Result<Partial, Status> {
        let (metadata, _, message) = request.into_parts();
        let meta = self
            .include_metadata
            .then(|| crate::metadata::from_headers(&metadata.into_headers()));
        match self.ingest.export(message.into(), meta).await {
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
            } => Err(match retry_after {
                Some(delay) => {
                    let details = RpcStatus::new(Code::Unavailable, message.as_str())
                        .with_retry_delay(delay)
                        .encode_to_vec();
                    Status::with_details(Code::Unavailable, message, Bytes::from(details))
                }
                None => Status::unavailable(message),
            }),
            Answer::Rejected { message } => Err(Status::invalid_argument(message)),
            Answer::NoPipeline { message } => Err(Status::unimplemented(message)),
        }
    }
}

#[tonic::async_trait]
impl TraceService for Exports {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<GrpcResponse<ExportTraceServiceResponse>, Status> {
        let partial = Exports::export(self, request).await?;
        Ok(GrpcResponse::new(ExportTraceServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Exports {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<GrpcResponse<ExportLogsServiceResponse>, Status> {
        let partial = Exports::export(self, request).await?;
        Ok(GrpcResponse::new(ExportLogsServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Exports {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<GrpcResponse<ExportMetricsServiceResponse>, Status> {
        let partial = Exports::export(self, request).await?;
        Ok(GrpcResponse::new(ExportMetricsServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message,
            }),
        }))
    }
}

/// The gRPC application (no socket: `run` and tests serve it).
pub fn router(ingest: Arc<Ingest>, include_metadata: bool, max_message_bytes: usize) -> Router {
    let exports = Arc::new(Exports {
        ingest,
        include_metadata,
    });
    // Every service accepts gzip and zstd requests; answers are tiny and stay uncompressed.
    macro_rules! configured {
        ($server:ident) => {
            $server::from_arc(Arc::clone(&exports))
                .max_decoding_message_size(max_message_bytes)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
        };
    }
    tonic::service::Routes::new(configured!(TraceServiceServer))
        .add_service(configured!(LogsServiceServer))
        .add_service(configured!(MetricsServiceServer))
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
