//! otlake processor `redaction`: keeps secrets and personal data out of what is written. The Collector's keys
//! (`allow_all_keys`, `allowed_keys`, `ignored_keys`, `blocked_values`, `allowed_values`,
//! `blocked_key_patterns`, `hash_function`, `summary`), reaching further than the Collector's: span events and
//! links, span status messages, log bodies (string and structured), resource and scope attribute values, and
//! the GenAI content attributes (prompts, completions, instructions) with a per-key mode (`mask`, `hash`,
//! `drop`, `truncate: N`). Built-in patterns switched on by name find e-mail addresses, Luhn-checked card
//! numbers, phone numbers, IP addresses, bearer tokens and API key shapes.
//!
//! The key design decision: redaction happens before anything is written, in the sidecar, and a request
//! with nothing to redact is recognised by a read-only pass that allocates nothing per attribute, so the cost
//! of turning redaction on is a scan, not a re-encode. Every regex is a `regex` crate regex (linear time).
//!
//! Modules: [`config`] (the YAML), `patterns` (built-ins, Luhn), `redact` (the engine on one list or value),
//! `wire` (the read-only look on a request's protobuf bytes), `processor` (walking a request).

pub mod config;
mod patterns;
mod processor;
mod redact;
#[cfg(test)]
mod tests;
mod wire;

use otlake_core::{ComponentId, ConfigError, Factory, Processor, ProcessorFactory, Signal};

pub use config::RedactionConfig;
pub use processor::RedactionProcessor;
pub use redact::MASK;

use crate::redact::Redactor;

const SIGNALS: &[Signal] = &Signal::ALL;

/// Builds `redaction` processors.
pub struct RedactionProcessorFactory;

impl Factory for RedactionProcessorFactory {
    type Config = RedactionConfig;

    fn type_name(&self) -> &'static str {
        "redaction"
    }

    fn signals(&self) -> &'static [Signal] {
        SIGNALS
    }

    fn description(&self) -> &'static str {
        "Removes keys and masks values (blocked patterns, built-in PII and secret shapes, GenAI content) before anything is written"
    }

    fn validate(&self, config: &RedactionConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ProcessorFactory for RedactionProcessorFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: &RedactionConfig,
        _signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        let redactor = Redactor::new(config).map_err(|errors| {
            errors
                .into_iter()
                .next()
                .unwrap_or_else(|| ConfigError::new("", "invalid"))
        })?;
        Ok(Box::new(RedactionProcessor::new(redactor)))
    }
}
