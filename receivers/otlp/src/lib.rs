//! otlake-receiver-otlp: the `otlp` receiver, OTLP over gRPC and HTTP (protobuf and JSON).
//!
//! The key design decision: a client is answered from its request's acknowledgement verdict, never on enqueue.
//! Each request is decoded once into a [`Payload`](otlake_core::Payload), sent into its signal's pipelines with
//! a fresh [`Ack`](otlake_core::Ack), and answered only when every exporter has made it durable (success, with
//! OTLP `partial_success` for items refused on purpose), failed retryably (gRPC `UNAVAILABLE` / HTTP 503 with a
//! retry delay), or refused it (`INVALID_ARGUMENT` / 400). A full pipeline answers retryable after `queue_wait`.
//!
//! Layout: [`config`] (YAML keys), [`receiver`] (listeners and shutdown), [`grpc`] and [`http`] (the two front
//! ends), [`ingest`] (pipeline hand-off and verdict → answer), [`decode`] / [`json`] / [`decompress`] (bytes →
//! payload), [`metadata`], [`rpc_status`], [`telemetry`]; access control: [`tls`] and [`tls_listener`] (TLS
//! and mutual TLS on a listener), [`auth`] (bearer tokens, checked before a request is read).

pub mod admission;
pub mod auth;
pub mod config;
pub mod decode;
pub mod decompress;
pub mod grpc;
pub mod http;
pub mod ingest;
pub mod json;
pub mod metadata;
pub mod receiver;
pub mod rpc_status;
pub mod telemetry;
pub mod tls;
pub mod tls_listener;

use otlake_core::{
    ComponentFactory, ComponentId, ConfigError, Receiver, ReceiverFactory, Signal, parse_config,
};
use serde_json::Value;

pub use config::OtlpReceiverConfig;
pub use receiver::{BoundAddresses, BoundAddressesWatch, OtlpReceiver};

/// Builds `otlp` receivers.
pub struct OtlpReceiverFactory;

impl OtlpReceiverFactory {
    /// Parses and validates a configuration, reporting every problem.
    pub fn parse(config: &Value) -> Result<OtlpReceiverConfig, Vec<ConfigError>> {
        let config: OtlpReceiverConfig = parse_config(config).map_err(|e| vec![e])?;
        config.validate()?;
        Ok(config)
    }
}

impl ComponentFactory for OtlpReceiverFactory {
    fn type_name(&self) -> &'static str {
        "otlp"
    }

    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn description(&self) -> &'static str {
        "Receives OTLP traces, logs and metrics over gRPC and HTTP (protobuf and JSON)"
    }

    fn validate(&self, config: &Value) -> Result<(), Vec<ConfigError>> {
        Self::parse(config).map(|_| ())
    }

    fn listen_addresses(&self, config: &Value) -> Vec<String> {
        parse_config::<OtlpReceiverConfig>(config)
            .map(|c| {
                c.endpoints()
                    .iter()
                    .map(|e| config::bind_address(e))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl ReceiverFactory for OtlpReceiverFactory {
    fn build(&self, _id: &ComponentId, config: &Value) -> Result<Box<dyn Receiver>, ConfigError> {
        let config = Self::parse(config).map_err(|errors| {
            let count = errors.len();
            let mut first = errors
                .into_iter()
                .next()
                .unwrap_or_else(|| ConfigError::new("", "invalid configuration"));
            if count > 1 {
                first
                    .message
                    .push_str(&format!(" (and {} more problems)", count - 1));
            }
            first
        })?;
        Ok(Box::new(OtlpReceiver::new(config)))
    }
}
