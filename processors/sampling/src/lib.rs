//! otlake processor `sampling` (also registered as the Collector's `probabilistic_sampler`): consistent
//! probability sampling of traces and logs, with rules evaluated before the ratio and an optional tail mode.
//!
//! The key design decision: every decision is a function of the trace's own randomness (the low 56 bits of
//! its trace id, or `rv`) against a threshold (OpenTelemetry threshold sampling, OTEP 235), never of a seed or
//! of local state. Every sidecar, restart and pipeline therefore keeps the same traces, logs with a trace id
//! follow their trace, and kept spans carry `th` in their tracestate so counts can be extrapolated. Dropped
//! data is accepted and discarded on purpose: the kept part of a request goes on with the request's
//! acknowledgements, and only a request with nothing left is answered here.
//!
//! Modules: [`config`] (the YAML), `threshold` and `tracestate` (the OTEP 235 encoding), `rules`, `decide`
//! (one span), `head` (stateless, per request), `tail` (whole traces), `logs`, `processor`.

pub mod config;
mod decide;
mod head;
mod logs;
mod processor;
mod rules;
mod tail;
#[cfg(test)]
mod tests;
pub mod threshold;
mod tracestate;

use otlake_core::{ComponentId, ConfigError, Factory, Processor, ProcessorFactory, Signal};

pub use config::{Mode, SamplingConfig};
pub use processor::SamplingProcessor;

const SIGNALS: &[Signal] = &Signal::ALL;

/// Builds `sampling` processors (default `mode: equalizing`).
pub struct SamplingProcessorFactory;

impl Factory for SamplingProcessorFactory {
    type Config = SamplingConfig;

    fn type_name(&self) -> &'static str {
        "sampling"
    }

    fn signals(&self) -> &'static [Signal] {
        SIGNALS
    }

    fn description(&self) -> &'static str {
        "Consistent probability sampling of traces and logs (OTEP 235 thresholds), rules first, optional tail mode"
    }

    fn validate(&self, config: &SamplingConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ProcessorFactory for SamplingProcessorFactory {
    fn build(
        &self,
        id: &ComponentId,
        config: &SamplingConfig,
        signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        Ok(Box::new(SamplingProcessor::new(
            id,
            config,
            Mode::Equalizing,
            signal,
        )))
    }
}

/// Builds the same processor under the Collector's name `probabilistic_sampler`; as in the Collector, `mode`
/// defaults to `proportional` there.
pub struct ProbabilisticSamplerFactory;

impl Factory for ProbabilisticSamplerFactory {
    type Config = SamplingConfig;

    fn type_name(&self) -> &'static str {
        "probabilistic_sampler"
    }

    fn signals(&self) -> &'static [Signal] {
        SIGNALS
    }

    fn description(&self) -> &'static str {
        "The Collector's probabilistic sampler keys on otlake's consistent sampler (alias of `sampling`)"
    }

    fn validate(&self, config: &SamplingConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ProcessorFactory for ProbabilisticSamplerFactory {
    fn build(
        &self,
        id: &ComponentId,
        config: &SamplingConfig,
        signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        Ok(Box::new(SamplingProcessor::new(
            id,
            config,
            Mode::Proportional,
            signal,
        )))
    }
}
