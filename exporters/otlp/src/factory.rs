//! The two factories: `otlp` (gRPC) and `otlphttp`. Both validate without I/O and build without I/O.

use otlake_core::{ComponentId, ConfigError, Exporter, ExporterFactory, Factory, Signal};

use crate::config::{GrpcExporterConfig, HttpExporterConfig};
use crate::exporter::{Destination, OtlpExporter};

/// `exporters.otlp`: OTLP/gRPC to one destination.
pub struct OtlpFactory;

/// `exporters.otlphttp`: OTLP/HTTP (protobuf or JSON) to one destination.
pub struct OtlpHttpFactory;

impl Factory for OtlpFactory {
    type Config = GrpcExporterConfig;

    fn type_name(&self) -> &'static str {
        "otlp"
    }

    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn description(&self) -> &'static str {
        "OTLP/gRPC to one destination (gateway, Collector, vendor), with queue, retry and TLS"
    }

    fn validate(&self, config: &GrpcExporterConfig) -> Result<(), Vec<ConfigError>> {
        errors_or_ok(config.validate())
    }
}

impl ExporterFactory for OtlpFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: GrpcExporterConfig,
        signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError> {
        Ok(Box::new(OtlpExporter::new(
            Destination::Grpc(config),
            signals,
        )))
    }
}

impl Factory for OtlpHttpFactory {
    type Config = HttpExporterConfig;

    fn type_name(&self) -> &'static str {
        "otlphttp"
    }

    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn description(&self) -> &'static str {
        "OTLP/HTTP (protobuf or JSON) to one destination (gateway, MLflow, managed ingest), with queue, retry and TLS"
    }

    fn validate(&self, config: &HttpExporterConfig) -> Result<(), Vec<ConfigError>> {
        errors_or_ok(config.validate())
    }
}

impl ExporterFactory for OtlpHttpFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: HttpExporterConfig,
        signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError> {
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

fn errors_or_ok(errors: Vec<ConfigError>) -> Result<(), Vec<ConfigError>> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
