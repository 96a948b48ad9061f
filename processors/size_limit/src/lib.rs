//! otlake processor `size_limit`: keeps requests, records and log lines within the limits of the managed
//! OpenTelemetry tables (30 MB per request, 10 MB per record, 1 MB per log line by default).
//!
//! The key design decision: refuse as little as possible and say exactly what was refused. A request over the
//! request limit is rejected whole (the receiver already refuses oversize bodies before decoding; this is the
//! guard after decoding). A record over its limit is dropped alone (or truncated, if configured) and reported
//! to its client as OTLP `partial_success`, while its neighbours go on untouched. Requests that cannot hold an
//! oversize record (smaller than the record limit) cost one `encoded_len` and nothing per item.
//!
//! Modules: [`config`] (the YAML), `record` (what a span, log record or data point exposes to the limits),
//! `truncate` (shortening a record to fit), `limit` (applying the limits to a request), `processor`.

pub mod config;
mod limit;
mod processor;
mod record;
#[cfg(test)]
mod tests;
mod truncate;

use otlake_core::{ComponentId, ConfigError, Factory, Processor, ProcessorFactory, Signal};

pub use config::{Action, SizeLimitConfig};
pub use processor::SizeLimitProcessor;
pub use record::TRUNCATED_ATTRIBUTE;

/// Builds `size_limit` processors.
pub struct SizeLimitProcessorFactory;

impl Factory for SizeLimitProcessorFactory {
    type Config = SizeLimitConfig;

    fn type_name(&self) -> &'static str {
        "size_limit"
    }

    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn description(&self) -> &'static str {
        "Refuses oversize requests; drops or truncates oversize records and log lines, reporting partial success"
    }

    fn validate(&self, config: &SizeLimitConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ProcessorFactory for SizeLimitProcessorFactory {
    fn build(
        &self,
        id: &ComponentId,
        config: &SizeLimitConfig,
        signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        Ok(Box::new(SizeLimitProcessor::new(id, config, signal)))
    }
}
