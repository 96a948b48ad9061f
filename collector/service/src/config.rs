//! The configuration file: the OpenTelemetry Collector's shape, so an existing Collector config runs unchanged
//! wherever otlake has the components it names.
//!
//! ```yaml
//! receivers:  { otlp: { protocols: { grpc: {}, http: {} } } }
//! processors: { batch: {} }
//! exporters:  { delta: { location: ./data } }
//! service:
//!   pipelines:
//!     traces: { receivers: [otlp], processors: [batch], exporters: [delta] }
//!   telemetry:
//!     logs: { level: info }
//!     metrics: { address: 127.0.0.1:8888 }
//! ```
//! Component sections stay untyped here (`serde_json::Value`): each factory parses its own.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use otlake_core::{ComponentId, Signal};
use serde::Deserialize;
use serde_json::Value;

use crate::{env, locate};

/// Default address of the Prometheus endpoint (the Collector's own-metrics default port, on loopback).
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:8888";
/// Default address of the health endpoint (the Collector's `health_check` default port, on loopback).
pub const DEFAULT_HEALTH_ENDPOINT: &str = "127.0.0.1:13133";
/// Default time allowed for a clean shutdown before late stages are abandoned.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A loaded configuration file.
#[derive(Debug)]
pub struct Config {
    pub receivers: BTreeMap<String, Value>,
    pub processors: BTreeMap<String, Value>,
    pub exporters: BTreeMap<String, Value>,
    pub extensions: BTreeMap<String, Value>,
    pub service: Service,
    /// The text after loading, to find line numbers for error messages.
    pub(crate) text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    receivers: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    processors: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    exporters: Option<BTreeMap<String, Value>>,
    /// Collector extensions: accepted so Collector files load; `health_check`'s `endpoint` is honoured.
    #[serde(default)]
    extensions: Option<BTreeMap<String, Value>>,
    service: Service,
}

/// `service:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `traces|logs|metrics[/name]` → the components the pipeline wires.
    #[serde(default)]
    pub pipelines: BTreeMap<String, Pipeline>,
    /// The daemon's own logs, metrics and health endpoint.
    #[serde(default)]
    pub telemetry: Telemetry,
    /// Collector extensions to enable (only `health_check` has an effect).
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Bytes of requests in flight for the whole daemon (estimated decoded size); above it receivers answer
    /// retryable instead of allocating. A number of bytes or a size with a unit (`256MiB`).
    #[serde(
        default = "default_memory_limit",
        deserialize_with = "otlake_core::config::byte_size::deserialize"
    )]
    pub memory_limit: u64,
    /// Reload when the file changes (polled every second; a Kubernetes ConfigMap's symlink swap counts), as
    /// `otlake run --watch` does. Read at start.
    #[serde(default)]
    pub watch_config: bool,
}

fn default_memory_limit() -> u64 {
    otlake_core::memory::DEFAULT_LIMIT
}

/// One pipeline: receivers feed its processors in order, which feed every exporter.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(default)]
    pub receivers: Vec<String>,
    #[serde(default)]
    pub processors: Vec<String>,
    #[serde(default)]
    pub exporters: Vec<String>,
}

/// `service.telemetry:`
///
/// `Default` is written out (not derived) so that a config without the section gets the same defaults as one
/// with an empty section: a derived default would give a zero `shutdown_grace`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    pub logs: LogsTelemetry,
    pub metrics: MetricsTelemetry,
    pub health: HealthTelemetry,
    /// How long a shutdown may take before late stages are abandoned (their data answered retryable).
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            logs: LogsTelemetry::default(),
            metrics: MetricsTelemetry::default(),
            health: HealthTelemetry::default(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// `service.telemetry.logs:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsTelemetry {
    /// `error`, `warn`, `info` (default) or `debug`; `RUST_LOG` overrides it.
    pub level: String,
    /// `console` (default) or `json`.
    pub encoding: String,
}

impl Default for LogsTelemetry {
    fn default() -> Self {
        LogsTelemetry {
            level: "info".into(),
            encoding: "console".into(),
        }
    }
}

/// `service.telemetry.metrics:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsTelemetry {
    /// Where `GET /metrics` answers in Prometheus text format.
    pub address: String,
    /// `none` turns the endpoint off; `basic`, `normal` (default), `detailed` keep it on.
    pub level: String,
}

impl Default for MetricsTelemetry {
    fn default() -> Self {
        MetricsTelemetry {
            address: DEFAULT_METRICS_ADDRESS.into(),
            level: "normal".into(),
        }
    }
}

/// `service.telemetry.health:` (a Collector `health_check` extension's `endpoint` takes precedence).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthTelemetry {
    /// Where `GET /` answers 200 while every pipeline runs, 503 otherwise. Empty turns it off.
    pub endpoint: String,
}

impl Default for HealthTelemetry {
    fn default() -> Self {
        HealthTelemetry {
            endpoint: DEFAULT_HEALTH_ENDPOINT.into(),
        }
    }
}

/// `traces`, `logs/agents`, ...: a pipeline's signal and optional name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipelineId {
    pub signal: Signal,
    pub name: Option<String>,
}

impl FromStr for PipelineId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (signal, name) = match s.split_once('/') {
            Some((signal, name)) if !name.is_empty() => (signal, Some(name.to_owned())),
            Some(_) => return Err(format!("pipeline `{s}` has an empty name after `/`")),
            None => (s, None),
        };
        Ok(PipelineId {
            signal: signal.parse().map_err(|e| format!("pipeline `{s}`: {e}"))?,
            name,
        })
    }
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{}", self.signal, name),
            None => write!(f, "{}", self.signal),
        }
    }
}

/// Why a file could not be loaded at all (before validation).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid YAML: {message}")]
    Yaml { path: String, message: String },
    /// Problems found while reading the structure: `(yaml path, line, message)`.
    #[error("{}", render(.0))]
    Invalid(Vec<crate::error::ValidationError>),
}

fn render(errors: &[crate::error::ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            LoadError::Yaml { message, .. } => LoadError::Yaml {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses config text (`${env:…}` is substituted in values).
    pub fn parse(text: &str) -> Result<Config, LoadError> {
        let mut tree: Value = serde_saphyr::from_str(text).map_err(|e| LoadError::Yaml {
            path: "<config>".into(),
            message: e.to_string(),
        })?;
        if tree.is_null() {
            tree = Value::Object(Default::default());
        }
        let mut env_errors = Vec::new();
        env::substitute(&mut tree, &mut Vec::new(), &mut env_errors);
        let error_at = |path: String, message: String| crate::error::ValidationError {
            line: locate::line_of(text, &path),
            path,
            message,
        };
        if !env_errors.is_empty() {
            return Err(LoadError::Invalid(
                env_errors
                    .into_iter()
                    .map(|(path, message)| error_at(path, message))
                    .collect(),
            ));
        }
        let file: File = serde_path_to_error::deserialize(tree).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let mut message = e.into_inner().to_string();
            if path.is_empty() && message.contains("missing field `service`") {
                message = "missing `service:` section (it lists the pipelines)".into();
            }
            LoadError::Invalid(vec![error_at(path, message)])
        })?;
        Ok(Config {
            receivers: file.receivers.unwrap_or_default(),
            processors: file.processors.unwrap_or_default(),
            exporters: file.exporters.unwrap_or_default(),
            extensions: file.extensions.unwrap_or_default(),
            service: file.service,
            text: text.to_owned(),
        })
    }

    /// The line of a YAML path in the file, if it can be found.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        locate::line_of(&self.text, path)
    }

    /// The health endpoint: a Collector `health_check` extension's, else `service.telemetry.health.endpoint`.
    pub fn health_endpoint(&self) -> Option<String> {
        let from_extension = self
            .service
            .extensions
            .iter()
            .filter(|id| id.split('/').next() == Some("health_check"))
            .find_map(|id| {
                let endpoint = self.extensions.get(id)?.get("endpoint")?.as_str()?;
                Some(endpoint.to_owned())
            });
        let endpoint =
            from_extension.unwrap_or_else(|| self.service.telemetry.health.endpoint.clone());
        (!endpoint.is_empty()).then_some(endpoint)
    }

    /// The Prometheus endpoint, unless turned off with `level: none`.
    pub fn metrics_address(&self) -> Option<String> {
        let m = &self.service.telemetry.metrics;
        (m.level != "none" && !m.address.is_empty()).then(|| m.address.clone())
    }

    /// Pipelines with parsed ids (ids that do not parse are reported by `validate`).
    pub fn pipelines(&self) -> impl Iterator<Item = (PipelineId, &Pipeline)> {
        self.service
            .pipelines
            .iter()
            .filter_map(|(key, p)| Some((key.parse().ok()?, p)))
    }
}

/// Parses a component key, for callers that already validated the config.
pub(crate) fn component_id(key: &str) -> ComponentId {
    key.parse().unwrap_or_else(|_| ComponentId::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_collector_shape() {
        let config = Config::parse(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n",
        )
        .expect("valid");
        assert!(config.receivers.contains_key("otlp"));
        assert_eq!(config.service.pipelines["traces"].exporters, vec!["debug"]);
        assert_eq!(
            config.metrics_address().as_deref(),
            Some(DEFAULT_METRICS_ADDRESS)
        );
        assert_eq!(
            config.health_endpoint().as_deref(),
            Some(DEFAULT_HEALTH_ENDPOINT)
        );
        assert_eq!(
            config.service.telemetry.shutdown_grace, DEFAULT_SHUTDOWN_GRACE,
            "no telemetry section: the documented grace, not zero"
        );
    }

    #[test]
    fn a_collector_health_check_extension_sets_the_health_endpoint() {
        let config = Config::parse(
            "extensions:\n  health_check:\n    endpoint: 127.0.0.1:9999\nservice:\n  extensions: [health_check]\n  pipelines: {}\n",
        )
        .expect("valid");
        assert_eq!(config.health_endpoint().as_deref(), Some("127.0.0.1:9999"));
    }

    #[test]
    fn broken_yaml_is_reported_with_its_location() {
        let err =
            Config::parse("receivers:\n  otlp: [unclosed\nservice: {}\n").expect_err("broken");
        let text = err.to_string();
        assert!(text.contains("not valid YAML"), "{text}");
        assert!(text.contains("line"), "{text}");
    }

    #[test]
    fn unknown_top_level_keys_are_named() {
        let err = Config::parse("recievers: {}\nservice: {}\n").expect_err("typo");
        assert!(
            err.to_string().contains("unknown field `recievers`"),
            "{err}"
        );
    }

    #[test]
    fn pipeline_ids_parse() {
        let id: PipelineId = "logs/agents".parse().expect("valid");
        assert_eq!(id.signal, Signal::Logs);
        assert_eq!(id.to_string(), "logs/agents");
        assert!("spans".parse::<PipelineId>().is_err());
        assert!("traces/".parse::<PipelineId>().is_err());
    }
}
