//! The two OTLP transports behind one `send`: an encoded request in, an [`Answer`] out.
//!
//! Classification follows the OTLP specification: a success may carry a partial rejection; HTTP 429/502/503/504
//! and gRPC CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS are
//! retryable, as are connection failures and timeouts; everything else is a refusal.

mod grpc;
mod http;

use std::time::Duration;

use bytes::Bytes;

use crate::args::{LoadgenArgs, Protocol, Signal};

pub use self::grpc::GrpcClient;
pub use self::http::HttpClient;

/// What the endpoint answered to one attempt.
#[derive(Debug)]
pub enum Answer {
    /// Accepted; `rejected` items were refused inside an otherwise successful answer (partial success).
    Accepted { rejected: u64, message: String },
    /// Worth retrying; `retry_after` when the server said how long to wait.
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Refused for good (a bad request, an unknown path, an auth failure...).
    Refused { reason: String },
}

/// Either transport.
pub enum Client {
    Http(Box<HttpClient>),
    Grpc(Box<GrpcClient>),
}

impl Client {
    /// Builds the client; opens no connection yet (connections open with the first requests).
    pub fn new(args: &LoadgenArgs) -> Result<Client, crate::LoadgenError> {
        Ok(match args.protocol {
            Protocol::Http => Client::Http(Box::new(HttpClient::new(args)?)),
            Protocol::Grpc => Client::Grpc(Box::new(GrpcClient::new(args)?)),
        })
    }

    pub async fn send(&self, signal: Signal, body: Bytes) -> Answer {
        match self {
            Client::Http(c) => c.send(signal, body).await,
            Client::Grpc(c) => c.send(signal, body).await,
        }
    }
}

/// The partial-success part of an OTLP export response, whatever the signal.
fn partial_success(signal: Signal, body: &[u8]) -> Result<(u64, String), prost::DecodeError> {
    use opentelemetry_proto::tonic::collector::{logs, metrics, trace};
    use prost::Message;
    let (rejected, message) = match signal {
        Signal::Traces => trace::v1::ExportTraceServiceResponse::decode(body)?
            .partial_success
            .map(|p| (p.rejected_spans, p.error_message)),
        Signal::Logs => logs::v1::ExportLogsServiceResponse::decode(body)?
            .partial_success
            .map(|p| (p.rejected_log_records, p.error_message)),
        Signal::Metrics => metrics::v1::ExportMetricsServiceResponse::decode(body)?
            .partial_success
            .map(|p| (p.rejected_data_points, p.error_message)),
    }
    .unwrap_or_default();
    Ok((u64::try_from(rejected).unwrap_or(0), message))
}
