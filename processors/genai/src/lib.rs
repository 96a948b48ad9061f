//! otlake processor `genai`: normalises GenAI telemetry before it is written. It renames deprecated GenAI
//! semantic-convention keys to the current ones (a table, configurable), decodes the JSON-encoded scalar
//! values MLflow's tracing writes into `mlflow.*` attributes (so `mlflow.spanType` lands as `RETRIEVER`, not
//! `"RETRIEVER"`, as MLflow's own managed-ingest path writes it), and from a price table adds
//! `gen_ai.usage.cost` to spans so the cost query is a `SUM`.
//!
//! The key design decision: normalise once, in the sidecar, so every table holds one spelling and queries
//! need no `COALESCE` over generations of conventions; a request that is already normal passes untouched.
//!
//! Modules: [`config`] (the YAML and the built-in rename table), `normalise` (one attribute list, decoded or
//! read on the wire), `wire` (the read-only look on a request's wire bytes), `processor`.

pub mod config;
mod normalise;
mod processor;
#[cfg(test)]
mod tests;
mod wire;

use otlake_core::{ComponentId, ConfigError, Factory, Processor, ProcessorFactory, Signal};

pub use config::GenaiConfig;
pub use processor::GenaiProcessor;

use crate::normalise::Normaliser;

const SIGNALS: &[Signal] = &[Signal::Traces, Signal::Logs];

/// Builds `genai` processors.
pub struct GenaiProcessorFactory;

impl Factory for GenaiProcessorFactory {
    type Config = GenaiConfig;

    fn type_name(&self) -> &'static str {
        "genai"
    }

    fn signals(&self) -> &'static [Signal] {
        SIGNALS
    }

    fn description(&self) -> &'static str {
        "Renames deprecated GenAI keys, decodes MLflow's JSON-encoded values, adds gen_ai.usage.cost from a price table"
    }

    fn validate(&self, config: &GenaiConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ProcessorFactory for GenaiProcessorFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: &GenaiConfig,
        _signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        Ok(Box::new(GenaiProcessor::new(Normaliser::new(config))))
    }
}
