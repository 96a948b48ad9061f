//! The error a component's `run` ends with.

/// Why a component stopped. Data-level failures never end a component: they resolve acknowledgements.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// A listener could not be bound (port in use, permission, bad address).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// Start-up I/O failed (a table could not be opened, a directory created, ...).
    #[error("{context}: {message}")]
    Startup { context: String, message: String },
    /// Anything else that stops the component.
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = ComponentError> = std::result::Result<T, E>;
