//! otlake processors `attributes` and `resource`: the Collector's attribute actions (`insert`, `update`,
//! `upsert`, `delete`, `hash`, `extract`, `convert`) on the attributes of spans, log records and metric data
//! points (selected by `include` / `exclude`), or on resource attributes.
//!
//! The key design decision: one action engine ([`actions`]) serves both processors, and it can say without
//! changing or allocating anything whether a list would change, on a decoded list or on one read in place from
//! the wire bytes. A request no action applies to therefore passes untouched and undecoded: its wire form is
//! kept for the exporters that read it directly, and a payload shared with another pipeline is not copied.
//!
//! Modules: [`config`] (the YAML), [`actions`] (the engine), `matcher` (`include` / `exclude`), `items`
//! (walking a decoded request's items and resources), `wire` (the same walk on a request's wire bytes, so a
//! request no action applies to is never decoded), `processor`.

pub mod actions;
pub mod config;
mod items;
mod matcher;
mod processor;
#[cfg(test)]
mod tests;
mod wire;

use otlake_core::{ComponentId, ConfigError, Factory, Processor, ProcessorFactory, Signal};

pub use config::{AttributesConfig, ResourceConfig};
pub use processor::{AttributesProcessor, ResourceProcessor};

use crate::actions::Actions;
use crate::matcher::Matcher;

const SIGNALS: &[Signal] = &Signal::ALL;

/// Builds `attributes` processors.
pub struct AttributesProcessorFactory;

impl Factory for AttributesProcessorFactory {
    type Config = AttributesConfig;

    fn type_name(&self) -> &'static str {
        "attributes"
    }

    fn signals(&self) -> &'static [Signal] {
        SIGNALS
    }

    fn description(&self) -> &'static str {
        "Inserts, updates, deletes, hashes, extracts and converts attributes of spans, log records and data points"
    }

    fn validate(&self, config: &AttributesConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

fn first(errors: Vec<ConfigError>) -> ConfigError {
    errors
        .into_iter()
        .next()
        .unwrap_or_else(|| ConfigError::new("", "invalid"))
}

impl ProcessorFactory for AttributesProcessorFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: &AttributesConfig,
        signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        Ok(Box::new(attributes_processor(config, signal)?))
    }
}

/// The `attributes` processor `config` describes, for a pipeline of `signal`.
pub(crate) fn attributes_processor(
    config: &AttributesConfig,
    signal: Signal,
) -> Result<AttributesProcessor, ConfigError> {
    let actions = Actions::compile(&config.actions, "actions").map_err(first)?;
    let mut matchers = Vec::new();
    for (name, props) in [("include", &config.include), ("exclude", &config.exclude)] {
        let matcher = match props {
            Some(props) => {
                let mut errors = Vec::new();
                let m = Matcher::compile(props, name, &mut errors);
                if !errors.is_empty() {
                    return Err(first(errors));
                }
                if let Some(foreign) = m.foreign_properties(signal).first() {
                    return Err(ConfigError::new(
                        format!("{name}.{foreign}"),
                        format!("cannot match anything in a {} pipeline", signal.as_str()),
                    ));
                }
                Some(m)
            }
            None => None,
        };
        matchers.push(matcher);
    }
    let exclude = matchers.pop().flatten();
    let include = matchers.pop().flatten();
    Ok(AttributesProcessor::new(actions, include, exclude))
}

/// Builds `resource` processors.
pub struct ResourceProcessorFactory;

impl Factory for ResourceProcessorFactory {
    type Config = ResourceConfig;

    fn type_name(&self) -> &'static str {
        "resource"
    }

    fn signals(&self) -> &'static [Signal] {
        SIGNALS
    }

    fn description(&self) -> &'static str {
        "Inserts, updates, deletes, hashes, extracts and converts resource attributes"
    }

    fn validate(&self, config: &ResourceConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ProcessorFactory for ResourceProcessorFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: &ResourceConfig,
        _signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        Ok(Box::new(resource_processor(config)?))
    }
}

/// The `resource` processor `config` describes.
pub(crate) fn resource_processor(
    config: &ResourceConfig,
) -> Result<ResourceProcessor, ConfigError> {
    let actions = Actions::compile(&config.attributes, "attributes").map_err(first)?;
    Ok(ResourceProcessor::new(actions))
}
