//! The error a component's `run` ends with, and [`Chain`] to print an error with its causes.

use std::error::Error;
use std::fmt;

/// Any error, boxed with its chain of causes intact.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a component stopped. Data-level failures never end a component: they resolve acknowledgements.
/// Every variant keeps its cause as a `source`, so the binary can print the whole chain at its edge.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// A listener could not be bound (port in use, permission, bad address).
    #[error("cannot listen on {address}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// Start-up I/O failed (a table could not be opened, a directory created, a certificate read, ...).
    #[error("{context}")]
    Startup {
        context: String,
        #[source]
        source: BoxError,
    },
    /// The component failed while running.
    #[error("{context}")]
    Failed {
        context: String,
        #[source]
        source: BoxError,
    },
}

impl ComponentError {
    /// Start-up failed in `context` (`exporter delta`, `receiver otlp: protocols.grpc.tls`) because of `source`.
    pub fn startup(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        ComponentError::Startup {
            context: context.into(),
            source: source.into(),
        }
    }

    /// The running component failed in `context` because of `source`.
    pub fn failed(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        ComponentError::Failed {
            context: context.into(),
            source: source.into(),
        }
    }
}

pub type Result<T, E = ComponentError> = std::result::Result<T, E>;

/// Prints an error and each of its causes, `outer: inner: root` (for log fields; `anyhow`'s `{:#}` does the
/// same at the binary's edge).
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_keeps_every_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = ComponentError::startup("exporter file: opening /x/out.json", io);
        assert_eq!(err.to_string(), "exporter file: opening /x/out.json");
        assert_eq!(
            Chain(&err).to_string(),
            "exporter file: opening /x/out.json: no such file"
        );
        let source = err.source().expect("a source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }
}
