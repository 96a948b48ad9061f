//! OTLP/HTTP answers, in the encoding the request used (the OTLP spec): a success is the signal's
//! `Export*ServiceResponse` (with `partial_success` when items were refused), an error is a `google.rpc.Status`.
//!
//! | answer                         | HTTP | body `code`            | extra                    |
//! |--------------------------------|------|------------------------|--------------------------|
//! | accepted                       | 200  | –                      | `partial_success` if any |
//! | retry (pipeline full, failure) | 503  | 14 `UNAVAILABLE`       | `Retry-After` (seconds)  |
//! | memory budget spent            | 503  | 14 `UNAVAILABLE`       | `Retry-After: 1`; body read and dropped, not decoded |
//! | rejected                       | 400  | 3 `INVALID_ARGUMENT`   |                          |
//! | no pipeline for the signal     | 404  | 12 `UNIMPLEMENTED`     |                          |
//! | malformed body                 | 400  | 3 `INVALID_ARGUMENT`   |                          |
//! | body over `max_request_bytes`  | 413  | 8 `RESOURCE_EXHAUSTED` | `Connection: close` (1.x)|
//! | body slower than `read_timeout`| 408  | 4 `DEADLINE_EXCEEDED`  | `Connection: close` (1.x)|
//! | unknown content type/encoding  | 415  | 3 `INVALID_ARGUMENT`   |                          |
//! | unknown path                   | 404  | 5 `NOT_FOUND`          |                          |
//! | method other than POST         | 405  | 12 `UNIMPLEMENTED`     | `Allow: POST`            |

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
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
use tonic::Code;

use crate::decode::Format;
use crate::error::Error;
use crate::ingest::Answer;
use otlake_core::rpc_status::RpcStatus;

/// The `Retry-After` of a retryable answer that gave no delay.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

const PROTOBUF: HeaderValue = HeaderValue::from_static("application/x-protobuf");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

fn content_type(format: Format) -> HeaderValue {
    match format {
        Format::Protobuf => PROTOBUF,
        Format::Json => JSON,
    }
}

fn respond(status: StatusCode, format: Format, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type(format));
    response
}

/// A `google.rpc.Status` error answer.
pub fn status(status: StatusCode, code: Code, message: &str, format: Format) -> Response {
    let rpc = RpcStatus::new(code as i32, message);
    let body = match format {
        Format::Protobuf => rpc.encode_to_vec(),
        Format::Json => rpc.to_json(),
    };
    respond(status, format, body)
}

/// The answer to a request refused before it reached a pipeline.
pub fn request_error(err: &Error, format: Format, http1: bool) -> Response {
    let (http_status, code) = err.answer_codes();
    let mut response = status(http_status, code, &err.to_string(), format);
    match err {
        // The rest of an oversized or late body stays unread: the connection cannot carry another request.
        Error::TooLarge { .. } | Error::TimedOut { .. } if http1 => {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Error::MethodNotAllowed { .. } => {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        Error::OverBudget(_) => {
            let seconds = crate::admission::MEMORY_RETRY_AFTER.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        _ => {}
    }
    response
}

/// The answer to a request that went through the pipelines.
pub fn answer(signal: Signal, answer: Answer, format: Format) -> Response {
    match answer {
        Answer::Accepted {
            rejected_items,
            message,
        } => success(signal, rejected_items, message, format),
        Answer::Retry {
            message,
            retry_after,
        } => {
            let mut response = status(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                &message,
                format,
            );
            let seconds = retry_after
                .unwrap_or(DEFAULT_RETRY_AFTER)
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        Answer::Rejected { message } => status(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            &message,
            format,
        ),
        Answer::NoPipeline { message } => {
            status(StatusCode::NOT_FOUND, Code::Unimplemented, &message, format)
        }
    }
}

fn success(signal: Signal, rejected: u64, message: Option<String>, format: Format) -> Response {
    let partial = rejected > 0 || message.is_some();
    let rejected_i64 = i64::try_from(rejected).unwrap_or(i64::MAX);
    let error_message = message.unwrap_or_default();
    let body = match format {
        Format::Protobuf => match signal {
            Signal::Traces => ExportTraceServiceResponse {
                partial_success: partial.then_some(ExportTracePartialSuccess {
                    rejected_spans: rejected_i64,
                    error_message,
                }),
            }
            .encode_to_vec(),
            Signal::Logs => ExportLogsServiceResponse {
                partial_success: partial.then_some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected_i64,
                    error_message,
                }),
            }
            .encode_to_vec(),
            Signal::Metrics => ExportMetricsServiceResponse {
                partial_success: partial.then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: rejected_i64,
                    error_message,
                }),
            }
            .encode_to_vec(),
        },
        // Written by hand: OTLP/JSON wants 64-bit integers as strings, which the serde types do not emit here.
        Format::Json if partial => {
            let field = match signal {
                Signal::Traces => "rejectedSpans",
                Signal::Logs => "rejectedLogRecords",
                Signal::Metrics => "rejectedDataPoints",
            };
            let mut body = serde_json::Map::new();
            body.insert(field.into(), rejected.to_string().into());
            body.insert("errorMessage".into(), error_message.into());
            serde_json::to_vec(&serde_json::json!({ "partialSuccess": body })).unwrap_or_default()
        }
        Format::Json => b"{}".to_vec(),
    };
    respond(StatusCode::OK, format, body)
}
