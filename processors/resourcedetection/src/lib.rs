//! otlake processor `resourcedetection` for a sidecar: resource attributes from the environment
//! (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`), the system (`host.name`, `os.type`, `host.arch`) and the
//! Kubernetes Downward API's environment variables (pod, namespace, node, container, cluster; their names
//! configurable), with the Collector's `detectors` and `override`.
//!
//! The key design decision: detection reads only the environment and the kernel's host name (no cloud
//! metadata endpoints, no Kubernetes API), once, so it costs nothing per request and needs no permissions.
//! `service_name` is a clustering and pruning key of the v2 tables: a resource without `service.name` (or
//! with an SDK's `unknown_service…` placeholder) gets the detected one even without `override`.
//!
//! Modules: [`config`] (the YAML), `detect` (the detectors), `processor`.

pub mod config;
mod detect;
mod processor;
#[cfg(test)]
mod tests;

use otlake_core::{ComponentId, ConfigError, Factory, Processor, ProcessorFactory, Signal};

pub use config::ResourceDetectionConfig;
pub use processor::ResourceDetectionProcessor;

const SIGNALS: &[Signal] = &Signal::ALL;

/// Builds `resourcedetection` processors.
pub struct ResourceDetectionProcessorFactory;

impl Factory for ResourceDetectionProcessorFactory {
    type Config = ResourceDetectionConfig;

    fn type_name(&self) -> &'static str {
        "resourcedetection"
    }

    fn signals(&self) -> &'static [Signal] {
        SIGNALS
    }

    fn description(&self) -> &'static str {
        "Adds resource attributes from the environment, the system and the Kubernetes Downward API"
    }

    fn validate(&self, config: &ResourceDetectionConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ProcessorFactory for ResourceDetectionProcessorFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: &ResourceDetectionConfig,
        _signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        Ok(Box::new(ResourceDetectionProcessor::new(
            config.clone(),
            Box::new(|name| std::env::var(name).ok()),
        )))
    }
}
