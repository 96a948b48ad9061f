//! otlake processor `filter`: drops spans, span events, log records, metrics and data points that match
//! OTTL conditions, with the Collector's keys (`error_mode`, `traces.span`, `traces.spanevent`,
//! `logs.log_record`, `metrics.metric`, `metrics.datapoint`).
//!
//! The key design decision: a documented subset of OTTL ([`ottl`]), parsed by hand at `validate` time, where
//! anything outside the subset is a configuration error naming the construct, never a condition that silently
//! never matches. Within the subset nothing can fail at run time, so `error_mode` has nothing to decide.
//! Dropped items are delivered on purpose and counted; a request nothing matches passes untouched.
//!
//! Modules: [`config`] (the YAML), [`ottl`] (lexer, parser, evaluation), `items` (what each context reads of
//! a decoded request, and the drop itself), `wire` (the same look on a request's wire bytes, so a request
//! nothing matches is never decoded), `processor`.

pub mod config;
mod items;
pub mod ottl;
mod processor;
#[cfg(test)]
mod tests;
mod wire;

use otlake_core::{ComponentId, ConfigError, Factory, Processor, ProcessorFactory, Signal};

pub use config::FilterConfig;
pub use processor::FilterProcessor;

use crate::config::parse_list;
use crate::processor::Conditions;

const SIGNALS: &[Signal] = &Signal::ALL;

/// Builds `filter` processors.
pub struct FilterProcessorFactory;

impl Factory for FilterProcessorFactory {
    type Config = FilterConfig;

    fn type_name(&self) -> &'static str {
        "filter"
    }

    fn signals(&self) -> &'static [Signal] {
        SIGNALS
    }

    fn description(&self) -> &'static str {
        "Drops spans, span events, log records, metrics and data points matching OTTL conditions (a documented subset)"
    }

    fn validate(&self, config: &FilterConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ProcessorFactory for FilterProcessorFactory {
    fn build(
        &self,
        id: &ComponentId,
        config: &FilterConfig,
        signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        let mut errors = Vec::new();
        let [span, spanevent, log_record, metric, datapoint] = config
            .lists()
            .map(|(list, context, path)| parse_list(list, context, path, &mut errors));
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        Ok(Box::new(FilterProcessor::new(
            id,
            Conditions {
                span,
                spanevent,
                log_record,
                metric,
                datapoint,
            },
            signal,
        )))
    }
}
