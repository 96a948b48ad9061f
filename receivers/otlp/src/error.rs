//! [`Error`], the one error type of the `otlp` receiver, and the answer each request error gets.
//!
//! Two kinds of variant share it. *Start-up* errors (an unreadable token file, a certificate that does not load)
//! stop the receiver before it binds, and the binary prints their chain. *Request* errors answer one client and
//! harm nothing else; [`Error::answer_codes`] is the one place that says which HTTP status and `google.rpc` code
//! each gets, for both front ends.

use std::path::PathBuf;

use http::StatusCode;
use otlake_core::Signal;
use otlake_core::config::tls::PemError;
use tonic::Code;

use crate::decompress::Encoding;

/// Everything the `otlp` receiver can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Start-up: the access files named in the config cannot be used.
    #[error("`auth.bearer_token_file`: cannot read {}: {source}", path.display())]
    TokenFileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`auth.bearer_token_file`: the token in {} {problem}", path.display())]
    BadTokenFile {
        path: PathBuf,
        problem: &'static str,
    },
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("{0}")]
    Tls(String),

    // A request that does not address an OTLP endpoint properly.
    #[error("no OTLP endpoint at `{path}`")]
    NoEndpoint { path: String },
    #[error("{method} is not allowed on `{path}`: OTLP/HTTP exports use POST")]
    MethodNotAllowed { method: String, path: String },
    /// A `Content-Type` or `Content-Encoding` the receiver does not speak.
    #[error("{0}")]
    Unsupported(String),

    // A request body that cannot be taken.
    #[error("cannot read the request body: {0}")]
    BodyUnreadable(#[source] axum::Error),
    #[error("the request is larger than max_request_bytes ({limit} bytes)")]
    TooLarge { limit: usize },
    /// The memory budget is spent (HTTP 503 + `Retry-After`, gRPC `UNAVAILABLE`), found while the body was
    /// read or inflated: the message says how far it got.
    #[error("{0}")]
    OverBudget(String),
    /// The body did not arrive within `read_timeout` (HTTP 408, connection closed).
    #[error("the request body did not arrive within read_timeout ({})", humantime_serde::re::humantime::format_duration(*limit))]
    TimedOut { limit: std::time::Duration },
    #[error("cannot decompress the {encoding:?} body: {source}")]
    Corrupt {
        encoding: Encoding,
        #[source]
        source: std::io::Error,
    },

    // A body that is not the OTLP message it claims to be.
    #[error("invalid protobuf in {message}: {source}")]
    Protobuf {
        message: &'static str,
        #[source]
        source: otlake_core::wire::WireError,
    },
    #[error("invalid JSON: {0}")]
    JsonSyntax(#[source] serde_json::Error),
    #[error("invalid OTLP/JSON {message} at `{path}`: {reason}")]
    JsonShape {
        message: &'static str,
        path: String,
        reason: String,
    },
}

impl Error {
    /// The HTTP status and `google.rpc` code a request that failed this way is answered with (the table in
    /// [`crate::http::response`]). Start-up errors never reach a client; they map to an internal error.
    pub fn answer_codes(&self) -> (StatusCode, Code) {
        match self {
            Error::TokenFileUnreadable { .. }
            | Error::BadTokenFile { .. }
            | Error::Pem(_)
            | Error::Tls(_) => (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
            Error::NoEndpoint { .. } => (StatusCode::NOT_FOUND, Code::NotFound),
            Error::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, Code::Unimplemented),
            Error::Unsupported(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument),
            Error::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, Code::ResourceExhausted),
            Error::OverBudget(_) => (StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
            Error::TimedOut { .. } => (StatusCode::REQUEST_TIMEOUT, Code::DeadlineExceeded),
            Error::BodyUnreadable(_)
            | Error::Corrupt { .. }
            | Error::Protobuf { .. }
            | Error::JsonSyntax(_)
            | Error::JsonShape { .. } => (StatusCode::BAD_REQUEST, Code::InvalidArgument),
        }
    }
}

/// The OTLP request message name of `signal` (for error messages).
pub fn message_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "ExportTraceServiceRequest",
        Signal::Logs => "ExportLogsServiceRequest",
        Signal::Metrics => "ExportMetricsServiceRequest",
    }
}
