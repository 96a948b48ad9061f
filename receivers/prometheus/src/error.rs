//! Why a scrape failed. Every failure ends that scrape only: the target reports `up` = 0 for it, the failure is
//! counted by reason, and the next scrape runs on schedule.

use std::time::Duration;

use crate::mapping::MapError;
use crate::parse::ParseError;

/// Why one scrape of one target produced no samples.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// No answer: refused connection, DNS, TLS, reset.
    #[error("cannot reach the target: {0}")]
    Connect(String),
    /// The request and its whole body took longer than `scrape_timeout`.
    #[error("no complete answer within the scrape timeout ({})", humantime_serde::re::humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The target answered with a status other than 2xx.
    #[error("the target answered HTTP {0}")]
    Status(u16),
    /// The body (compressed or not) is larger than `body_size_limit`.
    #[error("the body is larger than body_size_limit ({limit} bytes)")]
    BodyTooLarge { limit: u64 },
    /// A gzip body that does not decompress.
    #[error("the gzip body does not decompress: {0}")]
    Decompress(String),
    /// The daemon's memory budget has no room for the body.
    #[error("the collector's memory budget is spent ({used} of {limit} bytes in flight)")]
    Memory { used: u64, limit: u64 },
    /// The exposition is malformed.
    #[error("malformed exposition: {0}")]
    Parse(#[from] ParseError),
    /// The exposition parsed but contradicts itself (a histogram whose buckets go down, a repeated series) or is
    /// over `sample_limit`.
    #[error("invalid exposition: {0}")]
    Map(#[from] MapError),
    /// A job's settings could not be turned into a request (reported at start-up).
    #[error("{0}")]
    Config(String),
    /// A bug: parsing or mapping panicked. The scrape fails; the receiver goes on.
    #[error("internal error while reading the exposition: {0}")]
    Internal(String),
}

impl ScrapeError {
    /// The `reason` label of the failure counter.
    pub fn reason(&self) -> &'static str {
        match self {
            ScrapeError::Connect(_) => "connect",
            ScrapeError::Timeout(_) => "timeout",
            ScrapeError::Status(_) => "status",
            ScrapeError::BodyTooLarge { .. } => "body_size_limit",
            ScrapeError::Decompress(_) => "decompress",
            ScrapeError::Memory { .. } => "memory",
            ScrapeError::Parse(_) => "parse",
            ScrapeError::Map(MapError::SampleLimit { .. }) => "sample_limit",
            ScrapeError::Map(_) => "parse",
            ScrapeError::Config(_) => "config",
            ScrapeError::Internal(_) => "internal",
        }
    }

    /// Whether the same scrape may succeed later without a change on the target's side (the receiver retries
    /// every failure at the next interval either way; this only says what the failure was).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ScrapeError::Connect(_)
                | ScrapeError::Timeout(_)
                | ScrapeError::Memory { .. }
                | ScrapeError::Status(500..=599)
        )
    }
}
