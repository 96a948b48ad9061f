//! The two factories: `otlp` (gRPC) and `otlphttp`. Both validate without I/O and build without I/O.

use serde_json::Value;

use otlake_core::{
    ComponentFactory, ComponentId, ConfigError, Exporter, ExporterFactory, Signal, parse_config,
};

use crate::config::{GrpcExporterConfig, HttpExporterConfig};
use crate::exporter::{Destination, OtlpExporter};

/// `exporters.otlp`: OTLP/gRPC to one destination.
pub struct OtlpFactory;

/// `exporters.otlphttp`: OTLP/HTTP (protobuf or JSON) to one destination.
pub struct OtlpHttpFactory;

fn parse_grpc(config: &Value) -> Result<GrpcExporterConfig, Vec<ConfigError>> {
    let parsed: GrpcExporterConfig = parse_config(config).map_err(|e| vec![e])?;
    let errors = parsed.validate();
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

fn parse_http(config: &Value) -> Result<HttpExporterConfig, Vec<ConfigError>> {
    let parsed: HttpExporterConfig = parse_config(config).map_err(|e| vec![e])?;
    let errors = parsed.validate();
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// `build` may only return one error; the service validated first, so this is the first of the list.
fn first(mut errors: Vec<ConfigError>) -> ConfigError {
    if errors.is_empty() {
        ConfigError::new("", "invalid configuration")
    } else {
        errors.swap_remove(0)
    }
}

impl ComponentFactory for OtlpFactory {
    fn type_name(&self) -> &'static str {
        "otlp"
    }

    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn description(&self) -> &'static str {
        "OTLP/gRPC to one destination (gateway, Collector, vendor), with queue, retry and TLS"
    }

    fn validate(&self, config: &Value) -> Result<(), Vec<ConfigError>> {
        parse_grpc(config).map(|_| ())
    }
}

impl ExporterFactory for OtlpFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: &Value,
        signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError> {
        let config = parse_grpc(config).map_err(first)?;
        Ok(Box::new(OtlpExporter::new(
            Destination::Grpc(config),
            signals,
        )))
    }
}

impl ComponentFactory for OtlpHttpFactory {
    fn type_name(&self) -> &'static str {
        "otlphttp"
    }

    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn description(&self) -> &'static str {
        "OTLP/HTTP (protobuf or JSON) to one destination (gateway, MLflow, managed ingest), with queue, retry and TLS"
    }

    fn validate(&self, config: &Value) -> Result<(), Vec<ConfigError>> {
        parse_http(config).map(|_| ())
    }
}

impl ExporterFactory for OtlpHttpFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: &Value,
        signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError> {
        let config = parse_http(config).map_err(first)?;
        // Every signal the exporter carries needs a URL; only `build` knows which ones it carries.
        for &signal in signals {
            config.url_for(signal)?;
        }
        Ok(Box::new(OtlpExporter::new(
            Destination::Http(config),
            signals,
        )))
    }
}
