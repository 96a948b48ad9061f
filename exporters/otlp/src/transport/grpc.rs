//! OTLP/gRPC: one unary `Export` call per request over a tonic `Channel` that dials through our rustls
//! connector (so `ca_file`, client certificates and `insecure_skip_verify` work as for HTTP).
//!
//! The channel connects lazily and reconnects by itself: a destination that is down at start-up or restarts
//! later costs retries, not a failed exporter. Outcomes per the OTLP specification (and the Collector):
//! - retryable: `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `UNAVAILABLE`, `DATA_LOSS`, and
//!   `RESOURCE_EXHAUSTED` only when the server sent a `google.rpc.RetryInfo` (it can recover);
//! - a call broken on our side (connection reset, GOAWAY: tonic reports `UNKNOWN`/`INTERNAL` then) is retryable;
//! - any other code is permanent (`INVALID_ARGUMENT`, `UNAUTHENTICATED`, `UNIMPLEMENTED`, ...);
//! - a `RetryInfo` in `grpc-status-details-bin` sets the delay before the next attempt.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::uri::PathAndQuery;
use hyper_util::client::legacy::connect::HttpConnector;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use otlake_core::proto::collector::logs::v1::ExportLogsServiceResponse;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlake_core::{Payload, Signal};

use super::grpc_codec::PreEncodedCodec;
use super::{Accepted, PartialSuccess, SendError, Transport};
use crate::config::GrpcExporterConfig;
use crate::error::{Error, Result};
use crate::retry::MAX_SERVER_DELAY;
use otlake_core::config::Compression;
use otlake_core::rpc_status::RpcStatus;

const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// How long dialing may take before the attempt counts as failed (and is retried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends to one OTLP/gRPC destination.
pub struct GrpcTransport {
    channel: Channel,
    metadata: MetadataMap,
    compression: Option<CompressionEncoding>,
    timeout: Option<Duration>,
    /// For messages.
    endpoint: String,
}

impl GrpcTransport {
    /// Builds the channel (lazily connected) and reads the TLS files: only in `run`.
    pub fn new(config: &GrpcExporterConfig) -> Result<Self> {
        let target = config.target().map_err(|e| Error::Client(e.to_string()))?;
        let tls = super::tls::client_config(&config.tls, target.tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http2()
            .wrap_connector(http);

        let mut endpoint = Endpoint::from(target.uri.clone())
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(concat!("otlake/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| Error::Client(format!("user agent: {e}")))?;
        if let Some(keepalive) = &config.keepalive {
            if let Some(time) = keepalive.time {
                endpoint = endpoint.http2_keep_alive_interval(time);
            }
            if let Some(timeout) = keepalive.timeout {
                endpoint = endpoint.keep_alive_timeout(timeout);
            }
            endpoint = endpoint.keep_alive_while_idle(keepalive.permit_without_stream);
        }
        if let Some(authority) = &config.authority {
            let scheme = if target.tls { "https" } else { "http" };
            let origin = format!("{scheme}://{authority}")
                .parse()
                .map_err(|e| Error::Client(format!("authority: {e}")))?;
            endpoint = endpoint.origin(origin);
        }
        let channel = endpoint.connect_with_connector_lazy(connector);

        let headers = config.headers.to_header_map().map_err(Error::Client)?;
        Ok(GrpcTransport {
            channel,
            metadata: MetadataMap::from_headers(headers),
            compression: match config.compression {
                Compression::Gzip => Some(CompressionEncoding::Gzip),
                Compression::Zstd => Some(CompressionEncoding::Zstd),
                Compression::None => None,
            },
            timeout: (!config.timeout.is_zero()).then_some(config.timeout),
            endpoint: target.uri.to_string().trim_end_matches('/').to_owned(),
        })
    }

    async fn call<R>(&self, path: &'static str, body: &Bytes) -> Result<Accepted, SendError>
    where
        R: Message + Default + PartialSuccess + Send + Sync + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size(1 << 20)
            .max_encoding_message_size(usize::MAX);
        if let Some(encoding) = self.compression {
            grpc = grpc.send_compressed(encoding);
        }
        grpc.ready()
            .await
            .map_err(|e| SendError::retryable(format!("gRPC {}: not ready: {e}", self.endpoint)))?;
        let mut request = tonic::Request::new(body.clone());
        *request.metadata_mut() = self.metadata.clone();
        if let Some(timeout) = self.timeout {
            // Tells the server our deadline (`grpc-timeout`); the caller enforces it on our side.
            request.set_timeout(timeout);
        }
        let response = grpc
            .unary::<Bytes, R, _>(
                request,
                PathAndQuery::from_static(path),
                PreEncodedCodec::<R>::default(),
            )
            .await
            .map_err(|status| classify(&self.endpoint, &status))?;
        Ok(response.get_ref().partial())
    }
}

#[async_trait]
impl Transport for GrpcTransport {
    fn encode(&self, payload: &Payload) -> Result<Bytes, SendError> {
        // A payload in wire form goes out as received: no encode, no copy for a single chunk.
        Ok(payload.encoded())
    }

    async fn send(&self, signal: Signal, body: &Bytes) -> Result<Accepted, SendError> {
        match signal {
            Signal::Traces => {
                self.call::<ExportTraceServiceResponse>(TRACES_PATH, body)
                    .await
            }
            Signal::Logs => {
                self.call::<ExportLogsServiceResponse>(LOGS_PATH, body)
                    .await
            }
            Signal::Metrics => {
                self.call::<ExportMetricsServiceResponse>(METRICS_PATH, body)
                    .await
            }
        }
    }
}

/// Retryable or permanent, per the OTLP specification; with the server's `RetryInfo` delay.
pub fn classify(endpoint: &str, status: &Status) -> SendError {
    let retry_info = if status.details().is_empty() {
        None
    } else {
        RpcStatus::decode(status.details())
            .ok()
            .and_then(|s| s.retry_delay())
            .map(|delay| delay.min(MAX_SERVER_DELAY))
    };
    let reason = format!("gRPC {endpoint}: {:?}: {}", status.code(), status.message());
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_info.is_some(),
        // Made on our side from a broken connection (reset, GOAWAY, I/O error), not sent by the server: the
        // server never answered, so the request may well succeed on another connection.
        Code::Unknown | Code::Internal => is_local_transport_failure(status),
        _ => false,
    };
    let refusal = matches!(
        status.code(),
        Code::Unauthenticated | Code::PermissionDenied | Code::Unimplemented
    );
    if retryable {
        SendError::Retryable {
            reason,
            retry_after: retry_info.filter(|d| !d.is_zero()),
        }
    } else if refusal {
        SendError::Refused { reason }
    } else {
        SendError::Permanent { reason }
    }
}

/// tonic builds these statuses from the error that broke the call: they carry that error as their source, or
/// (for HTTP/2 errors it read through hyper) a message of its own making.
fn is_local_transport_failure(status: &Status) -> bool {
    use std::error::Error as _;
    status.source().is_some() || status.message().starts_with("h2 protocol error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_exhausted_is_retryable_only_with_retry_info() {
        let plain = Status::resource_exhausted("too big");
        assert!(!classify("x", &plain).is_retryable());
        let details = RpcStatus::new(8, "busy")
            .with_retry_delay(Duration::from_secs(3))
            .encode_to_vec();
        let throttled = Status::with_details(Code::ResourceExhausted, "busy", Bytes::from(details));
        assert_eq!(
            classify("x", &throttled),
            SendError::Retryable {
                reason: "gRPC x: ResourceExhausted: busy".into(),
                retry_after: Some(Duration::from_secs(3)),
            }
        );
        assert!(classify("x", &Status::unavailable("down")).is_retryable());
        assert!(!classify("x", &Status::invalid_argument("bad")).is_retryable());
        assert!(!classify("x", &Status::unauthenticated("who")).is_retryable());
        assert!(!classify("x", &Status::internal("server bug")).is_retryable());
        let reset = Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        )));
        assert!(classify("x", &reset).is_retryable(), "{reset:?}");
    }
}
