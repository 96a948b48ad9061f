//! [`DecodeError`]: why a request body could not be decoded, for both encodings, and the request message names
//! its messages use. It sits below both decoders ([`crate::decode`] for protobuf, [`crate::json`] for
//! OTLP/JSON), so neither imports the other for it; `crate::decode` re-exports both names.

use otlake_core::Signal;

/// Why a request body could not be decoded (the client's fault: HTTP 400 / gRPC `INVALID_ARGUMENT`).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
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

/// The OTLP request message name of `signal` (for error messages).
pub fn message_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "ExportTraceServiceRequest",
        Signal::Logs => "ExportLogsServiceRequest",
        Signal::Metrics => "ExportMetricsServiceRequest",
    }
}
