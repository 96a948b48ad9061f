//! otlake exporters `otlp` (gRPC) and `otlphttp` (protobuf or JSON): forward what a pipeline holds to one OTLP
//! destination (a gateway collector, a vendor, an MLflow tracking server, a managed ingest endpoint).
//!
//! The key design decision: a client's acknowledgement resolves `Delivered` only once the destination answered
//! success, so the exporter never turns an accepted request into a silent loss. Between the input and the
//! network sits a sending queue bounded in batches and bytes ([`queue`]); when it is full the exporter stops
//! reading its input and the bounded channels push back to the receiver, which answers retryable. Retries
//! follow the OTLP specification ([`transport`] classifies, [`retry`] waits), requests are split to stay under
//! `max_request_bytes`, and the configuration takes the Collector's keys and defaults ([`config`]) so existing
//! Collector configs move over unchanged.
//!
//! Layout: [`factory`] (the two factories) → [`exporter`] (input → split → queue) → [`sender`] (deliver with
//! retry, settle) → [`transport`] (gRPC or HTTP, TLS).

pub mod compress;
pub mod config;
pub mod error;
pub mod exporter;
pub mod factory;
pub mod queue;
pub mod retry;
pub mod sender;
pub mod transport;

pub use error::Error;
pub use factory::{OtlpFactory, OtlpHttpFactory};
