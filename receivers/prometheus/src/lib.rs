//! otlake-receiver-prometheus: the `prometheus` receiver. It scrapes Prometheus and OpenMetrics endpoints (a
//! model server's `/metrics`: vLLM, TGI, Triton, the GPU exporters) and turns each scrape into OTLP metrics.
//!
//! The key design decision: a scrape is all or nothing. The body is read under `body_size_limit` and the
//! daemon's memory budget, parsed completely ([`parse`], a hand-written parser of both text formats that
//! borrows from the body), then mapped ([`mapping`]); any problem on the way fails the whole scrape, which
//! then reports only `up` = 0. A target's metrics reach the pipelines as one batch per scrape, never half a
//! scrape.
//!
//! Layout: [`config`] (the Collector's keys), [`receiver`] (start-up and shutdown), [`target`] (one target's
//! schedule), [`scrape`] (the HTTP request and body), [`parse`], [`relabel`] (`metric_relabel_configs`),
//! [`mapping`] (Prometheus → OTLP, start times, synthetic series), [`sink`] (hand-off and verdict),
//! [`tls`], [`telemetry`], [`error`].

pub mod config;
pub mod error;
pub mod mapping;
pub mod parse;
pub mod receiver;
pub mod relabel;
pub mod scrape;
pub mod sink;
pub mod target;
pub mod telemetry;
pub mod tls;

use otlake_core::{
    ComponentId, ConfigError, Factory, Receiver, ReceiverFactory, Signal, parse_config,
};
use serde_json::Value;

use crate::config::ScrapeConfig;

pub use config::PrometheusReceiverConfig;
pub use receiver::PrometheusReceiver;

/// Builds `prometheus` receivers.
pub struct PrometheusReceiverFactory;

impl Factory for PrometheusReceiverFactory {
    type Config = PrometheusReceiverConfig;

    fn type_name(&self) -> &'static str {
        "prometheus"
    }

    fn signals(&self) -> &'static [Signal] {
        &[Signal::Metrics]
    }

    fn description(&self) -> &'static str {
        "Scrapes Prometheus / OpenMetrics endpoints (vLLM, TGI, Triton, GPU exporters) into OTLP metrics"
    }

    fn validate(&self, config: &PrometheusReceiverConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }

    /// serde stops at the first unknown key of a section; each scrape config is also read on its own, so that
    /// an unsupported key in one job does not hide those of the others.
    fn parse(&self, section: &Value) -> Result<PrometheusReceiverConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        if let Some(jobs) = section
            .pointer("/config/scrape_configs")
            .and_then(Value::as_array)
        {
            for (i, job) in jobs.iter().enumerate() {
                if let Err(error) = parse_config::<ScrapeConfig>(job) {
                    errors.push(error.under(&format!("config.scrape_configs[{i}]")));
                }
            }
        }
        match parse_config::<PrometheusReceiverConfig>(section) {
            Ok(config) if errors.is_empty() => {
                config.validate()?;
                Ok(config)
            }
            Ok(_) => Err(errors),
            Err(error) => {
                // A job's error is already listed, from its own reading.
                if !error.path.starts_with("config.scrape_configs[") || errors.is_empty() {
                    errors.push(error);
                }
                Err(errors)
            }
        }
    }
}

impl ReceiverFactory for PrometheusReceiverFactory {
    fn build(
        &self,
        id: &ComponentId,
        config: PrometheusReceiverConfig,
    ) -> Result<Box<dyn Receiver>, ConfigError> {
        Ok(Box::new(PrometheusReceiver::new(id.clone(), config)?))
    }
}
