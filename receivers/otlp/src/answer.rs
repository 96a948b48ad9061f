//! [`Answer`]: how a request ended, in protocol-neutral terms, below the modules that produce it (admission,
//! ingest) and count it (telemetry); the gRPC and HTTP front ends turn it into their status codes.

use std::time::Duration;

/// How a request ended, before it is put into gRPC or HTTP terms.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Durable (possibly with some items refused on purpose: OTLP `partial_success`).
    Accepted {
        rejected_items: u64,
        message: Option<String>,
    },
    /// Not durable; the client should retry, after `retry_after` if given.
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Will never be accepted as sent.
    Rejected { message: String },
    /// No pipeline takes this signal from this receiver.
    NoPipeline { message: String },
}
