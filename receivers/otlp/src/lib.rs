//! otlake-receiver-otlp: the `otlp` receiver, OTLP over gRPC and HTTP (protobuf and JSON).
//!
//! The key design decision: a client is answered from its request's acknowledgement verdict, never on enqueue.
//! Each request's bytes are validated once (`Payload::from_wire`, no decoding) into a wire-form
//! [`Payload`](otlake_core::Payload), sent into its signal's pipelines with
//! a fresh [`Ack`](otlake_core::Ack), and answered only when every exporter has made it durable (success, with
//! OTLP `partial_success` for items refused on purpose), failed retryably (gRPC `UNAVAILABLE` / HTTP 503 with a
//! retry delay), or refused it (`INVALID_ARGUMENT` / 400). A full pipeline answers retryable after `queue_wait`.
//!
//! Layout: [`config`] (YAML keys), [`receiver`] (listeners and shutdown), [`serve`] (the accept loop:
//! connection cap, timeouts, TLS handshakes), [`grpc`] / [`grpc_message`] and [`http`] (the two front ends),
//! [`ingest`] (pipeline hand-off and verdict → answer), [`decode`] / [`json`] / [`decompress`] (bytes →
//! payload), [`metadata`], [`counters`]; access control: [`tls`] (TLS and mutual TLS on a listener), [`auth`]
//! (bearer tokens, checked before a request is read).

pub mod admission;
mod answer;
pub mod auth;
pub mod config;
pub mod counters;
pub mod decode;
pub mod decompress;
pub mod error;
pub mod grpc;
pub mod grpc_message;
pub mod http;
pub mod ingest;
pub mod json;
pub mod metadata;
pub mod receiver;
pub mod serve;
pub mod tls;

use otlake_core::config::endpoint::bind_address;
use otlake_core::{ComponentId, ConfigError, Factory, Receiver, ReceiverFactory, Signal};

pub use config::OtlpReceiverConfig;
pub use error::Error;
pub use receiver::{BoundAddresses, BoundAddressesWatch, OtlpReceiver};

/// Builds `otlp` receivers.
pub struct OtlpReceiverFactory;

impl Factory for OtlpReceiverFactory {
    type Config = OtlpReceiverConfig;

    fn type_name(&self) -> &'static str {
        "otlp"
    }

    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn description(&self) -> &'static str {
        "Receives OTLP traces, logs and metrics over gRPC and HTTP (protobuf and JSON)"
    }

    fn validate(&self, config: &OtlpReceiverConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ReceiverFactory for OtlpReceiverFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: OtlpReceiverConfig,
    ) -> Result<Box<dyn Receiver>, ConfigError> {
        Ok(Box::new(OtlpReceiver::new(config)))
    }

    fn listen_addresses(&self, config: &OtlpReceiverConfig) -> Vec<String> {
        config.endpoints().iter().map(|e| bind_address(e)).collect()
    }
}
