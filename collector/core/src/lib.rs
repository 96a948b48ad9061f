//! otlake-core: what every otlake component shares and nothing more.
//!
//! The unit of work is a [`Batch`]: one OTLP export request of one signal, shared behind an `Arc` so that
//! fan-out to several exporters copies nothing, plus the [`AckSet`] of every client request whose data it
//! carries. The key design decision lives in [`ack`]: a client is answered only from the acknowledgements
//! that exporters (after a durable write) or deliberate drops resolve, and an acknowledgement that is dropped
//! without a verdict counts as retryable, so a bug shows up as a client retry, never as a false success.
//!
//! Components are plugins: each implements one of the object-safe traits in [`component`] and is built by a
//! typed factory ([`factory`]) from its config, validated once; the service registers factories under their
//! YAML type names. Plugins depend on this crate only.

pub mod ack;
pub mod attributes;
pub mod batch;
pub mod component;
pub mod config;
pub mod error;
pub mod factory;
pub mod memory;
pub mod payload;
pub mod rpc_status;
pub mod signal;
pub mod stop;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod wire;

pub use ack::{Ack, AckReceiver, AckSet, Outcome, Verdict};
pub use batch::{
    Batch, BatchReceiver, BatchSender, Fanout, FanoutTargets, RequestMeta, SourcePosition,
};
pub use component::{
    ComponentId, Exporter, ExporterContext, Processor, Receiver, ReceiverContext, Startup,
};
pub use config::{ConfigError, parse_config};
pub use error::{BoxError, Chain, ComponentError, Result};
pub use factory::{
    DynExporterFactory, DynFactory, DynProcessorFactory, DynReceiverFactory, ExporterFactory,
    Factory, ProcessorFactory, ReceiverFactory, ValidatedConfig,
};
pub use memory::{MemoryBudget, Reservation};
pub use payload::{ExportRequest, Payload, PayloadDecodeError};
pub use signal::Signal;
pub use stop::StopHandle;

/// The OTLP protobuf types, re-exported so that every plugin uses the same version.
pub use opentelemetry_proto::tonic as proto;
