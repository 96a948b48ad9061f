//! The two ways a request leaves: OTLP/gRPC ([`grpc`]) and OTLP/HTTP ([`http`]), behind one small trait so the
//! queue, the retry loop and the acknowledgements are written once.
//!
//! A transport does two things: `encode` a payload (CPU work: protobuf or JSON, and for HTTP the compression;
//! the caller runs it off the reactor, once per request, and reuses the bytes for every retry) and `send` it
//! once. It classifies what came back per the OTLP specification into [`Accepted`] (with a downstream partial
//! success) or a [`SendError`] that is retryable (with the server's requested delay) or permanent.

pub mod grpc;
mod grpc_codec;
pub mod http;
pub mod tls;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use otlake_core::proto::collector::logs::v1::ExportLogsServiceResponse;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlake_core::{Payload, Signal};

/// The destination took the request. Items it refused on purpose are counted here (OTLP `partial_success`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    pub rejected_items: u64,
    /// The destination's explanation; with `rejected_items == 0` it is a warning.
    pub message: Option<String>,
}

/// Why one attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt (server unavailable, throttled, timed out, connection failed).
    #[error("{reason}")]
    Retryable {
        reason: String,
        /// The server's requested delay (`Retry-After`, gRPC `RetryInfo`).
        retry_after: Option<Duration>,
    },
    /// The destination will never accept this request as sent (400, `INVALID_ARGUMENT`, ...).
    #[error("{reason}")]
    Permanent { reason: String },
    /// The destination refuses us, not the data: credentials (401, 403, `UNAUTHENTICATED`,
    /// `PERMISSION_DENIED`), a wrong path (404, `UNIMPLEMENTED`) or its size limit (413). An operator can fix
    /// it, so behind a write-ahead log the entry is kept and sent again; without one it counts as permanent.
    #[error("{reason}")]
    Refused { reason: String },
}

impl SendError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        SendError::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        SendError::Permanent {
            reason: reason.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable { .. })
    }
}

/// One way of sending OTLP requests to one destination.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// The request body, ready for every attempt. CPU-bound: called off the reactor.
    fn encode(&self, payload: &Payload) -> Result<Bytes, SendError>;

    /// One attempt. The caller bounds it with the configured timeout.
    async fn send(&self, signal: Signal, body: &Bytes) -> Result<Accepted, SendError>;
}

/// The partial success an export response carries, whatever the signal.
pub trait PartialSuccess {
    fn partial(&self) -> Accepted;
}

fn accepted(rejected: i64, message: &str) -> Accepted {
    Accepted {
        rejected_items: u64::try_from(rejected).unwrap_or(0),
        message: (!message.is_empty()).then(|| message.to_owned()),
    }
}

impl PartialSuccess for ExportTraceServiceResponse {
    fn partial(&self) -> Accepted {
        self.partial_success
            .as_ref()
            .map(|p| accepted(p.rejected_spans, &p.error_message))
            .unwrap_or_default()
    }
}

impl PartialSuccess for ExportLogsServiceResponse {
    fn partial(&self) -> Accepted {
        self.partial_success
            .as_ref()
            .map(|p| accepted(p.rejected_log_records, &p.error_message))
            .unwrap_or_default()
    }
}

impl PartialSuccess for ExportMetricsServiceResponse {
    fn partial(&self) -> Accepted {
        self.partial_success
            .as_ref()
            .map(|p| accepted(p.rejected_data_points, &p.error_message))
            .unwrap_or_default()
    }
}
