//! The errors that stop an exporter from starting. Failures of single requests never stop it: they resolve the
//! acknowledgements of the data concerned (see [`crate::transport::SendError`]).

/// Why an exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A certificate or key could not be read or parsed, the TLS configuration was refused by rustls, or no
    /// trust roots were found.
    #[error("tls: {0}")]
    Tls(#[from] otlake_tls_client::ClientTlsError),
    /// The HTTP client or gRPC channel could not be built.
    #[error("client setup: {0}")]
    Client(String),
}

impl Error {
    /// Start-up errors come from the configuration or the files it names: retrying will not help.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

impl From<Error> for otlake_core::ComponentError {
    fn from(e: Error) -> Self {
        otlake_core::ComponentError::startup("otlp exporter", e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
