//! otlake processor `batch`: groups requests into larger batches by item count, encoded bytes or time, and
//! carries every merged request's acknowledgements through to the exporter.
//!
//! The key design decision: the Collector's batch processor answers its clients when it has queued the data
//! and swallows later export errors; this one never resolves an acknowledgement. A sent batch holds the
//! acknowledgements of exactly the requests whose items it carries, so an export failure reaches every merged
//! client as a retry, and a success reaches a client only once all of its data is durable.
//!
//! Modules: [`config`] (the YAML), `pending` (one pending batch and how it splits), `processor` (groups per
//! tenant and triggers).

pub mod config;
mod pending;
mod processor;
#[cfg(test)]
mod tests;

use otlake_core::{ComponentId, ConfigError, Factory, Processor, ProcessorFactory, Signal};

pub use config::BatchConfig;
pub use processor::BatchProcessor;

/// Builds `batch` processors.
pub struct BatchProcessorFactory;

impl Factory for BatchProcessorFactory {
    type Config = BatchConfig;

    fn type_name(&self) -> &'static str {
        "batch"
    }

    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn description(&self) -> &'static str {
        "Groups requests into batches by items, bytes or time; every client hears its exporter's verdict"
    }

    fn validate(&self, config: &BatchConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ProcessorFactory for BatchProcessorFactory {
    fn build(
        &self,
        id: &ComponentId,
        config: &BatchConfig,
        signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        Ok(Box::new(BatchProcessor::new(id.clone(), config, signal)))
    }
}
