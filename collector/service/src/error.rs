//! The service's two errors, below the modules that raise them: a problem in a config file
//! ([`ValidationError`], from loading and validation) and why a run ended badly ([`RunError`], from the
//! runtime and the telemetry endpoints).

use std::fmt;

use otlake_core::ComponentError;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Dotted YAML path (`exporters.file/out.path`).
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.path.is_empty(), self.line) {
            (true, _) => f.write_str(&self.message),
            (false, Some(line)) => write!(f, "{} (line {line}): {}", self.path, self.message),
            (false, None) => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why `run` ended without a clean shutdown.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid configuration:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ValidationError>),
    // Causes are `#[source]`s: the binary prints the whole chain (`{:#}`), each cause once.
    #[error("{stage} failed to start")]
    Component {
        stage: String,
        #[source]
        cause: ComponentError,
    },
    #[error("telemetry endpoint {address}")]
    Telemetry {
        address: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("shutdown was not clean: {0} did not finish within the grace period")]
    Late(String),
    #[error("a configuration reload could not complete: {0}")]
    Reload(String),
    #[error("a stage panicked: {0}")]
    Panicked(String),
}
