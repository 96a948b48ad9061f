//! The `process` receiver: runs a command and captures its stdout and stderr, line by line, as logs.
//!
//! It lives beside `filelog` because it is the same thing fed from a pipe instead of a file: the same splitter
//! (`max_log_size`, UTF-8 with replacement, `force_flush_period`) and the same operators (`python` by default).
//! The child's bytes are also copied unchanged to otlake's own stdout and stderr, so `kubectl logs` still shows
//! them. See [`capture`] for delivery, back-pressure and shutdown.

pub mod capture;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use otlake_core::{ComponentId, ConfigError, Factory, Receiver, ReceiverFactory, Signal};
use serde::{Deserialize, Deserializer};

use crate::config::{DEFAULT_FORCE_FLUSH_PERIOD, DEFAULT_MAX_LOG_SIZE, FilelogConfig};
use crate::operators::{Compiled, OperatorConfig, PythonConfig};

/// The `process` receiver's configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// The program and its arguments. Required.
    pub command: Vec<String>,
    /// Environment variables set for the child (on top of otlake's own).
    pub env: BTreeMap<String, String>,
    /// The child's working directory (default: otlake's).
    pub working_dir: Option<PathBuf>,
    /// Operators applied to every line; absent: `[{type: python}]`; `[]`: none.
    #[serde(deserialize_with = "listed")]
    pub operators: Option<Vec<OperatorConfig>>,
    /// Longest entry; longer lines are cut and marked `otlake.truncated`. A byte size; default `1MiB`.
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub max_log_size: u64,
    /// Wait before a line without its newline (or a record the operators hold) is emitted anyway. Default `500ms`.
    #[serde(with = "humantime_serde")]
    pub force_flush_period: Duration,
    /// Copy the child's output to otlake's own stdout/stderr, unchanged. Default `true`.
    pub passthrough: bool,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            command: Vec::new(),
            env: BTreeMap::new(),
            working_dir: None,
            operators: None,
            max_log_size: DEFAULT_MAX_LOG_SIZE,
            force_flush_period: DEFAULT_FORCE_FLUSH_PERIOD,
            passthrough: true,
        }
    }
}

fn listed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<OperatorConfig>>, D::Error> {
    Ok(Some(
        Option::<Vec<OperatorConfig>>::deserialize(d)?.unwrap_or_default(),
    ))
}

impl ProcessConfig {
    /// The operators in force (`python` when none are listed).
    pub fn operators(&self) -> Vec<OperatorConfig> {
        self.operators
            .clone()
            .unwrap_or_else(|| vec![OperatorConfig::Python(PythonConfig::default())])
    }

    /// Every problem at once.
    pub fn validate(&self) -> Result<Compiled, Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.command.first().is_none_or(|c| c.is_empty()) {
            errors.push(ConfigError::new(
                "command",
                "the program to run is required: command: [python3, app.py]",
            ));
        }
        if self.max_log_size == 0 {
            errors.push(ConfigError::new("max_log_size", "must be greater than 0"));
        }
        // The operators see a pipe, not a file: no file path (the container operator's metadata needs one).
        let as_files = FilelogConfig {
            max_log_size: self.max_log_size,
            include_file_path: false,
            ..FilelogConfig::default()
        };
        let compiled = crate::operators::validate(&self.operators(), &as_files);
        match compiled {
            Ok(compiled) if errors.is_empty() => Ok(compiled),
            Ok(_) => Err(errors),
            Err(problems) => {
                errors.extend(problems);
                Err(errors)
            }
        }
    }
}

/// Builds `process` receivers.
pub struct ProcessReceiverFactory;

impl Factory for ProcessReceiverFactory {
    type Config = ProcessConfig;

    fn type_name(&self) -> &'static str {
        "process"
    }

    fn signals(&self) -> &'static [Signal] {
        &[Signal::Logs]
    }

    fn description(&self) -> &'static str {
        "Runs a command and captures its stdout/stderr as logs (Python-aware), passing them through"
    }

    fn validate(&self, config: &ProcessConfig) -> Result<(), Vec<ConfigError>> {
        config.validate().map(|_| ())
    }
}

impl ReceiverFactory for ProcessReceiverFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: ProcessConfig,
    ) -> Result<Box<dyn Receiver>, ConfigError> {
        let operators = config.validate().map_err(|errors| {
            errors
                .into_iter()
                .next()
                .unwrap_or_else(|| ConfigError::new("", "invalid configuration"))
        })?;
        Ok(Box::new(capture::ProcessReceiver::new(config, operators)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn command_is_required_and_python_is_the_default_operator() {
        let config: ProcessConfig = otlake_core::parse_config(&json!({})).expect("parses");
        let errors = config.validate().expect_err("no command");
        assert_eq!(errors[0].path, "command");
        let config: ProcessConfig =
            otlake_core::parse_config(&json!({"command": ["python3", "app.py"]})).expect("parses");
        assert_eq!(config.operators()[0].type_name(), "python");
        assert!(config.validate().is_ok());
        let config: ProcessConfig =
            otlake_core::parse_config(&json!({"command": ["x"], "operators": []})).expect("parses");
        assert!(config.operators().is_empty());
        let errors =
            otlake_core::parse_config::<ProcessConfig>(&json!({"command": ["x"], "cmd": 1}))
                .expect_err("unknown key");
        assert!(errors.message.contains("working_dir"), "{errors}");
    }
}
