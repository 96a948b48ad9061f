//! Configuration of both exporters, with the OpenTelemetry Collector's keys and defaults so that an existing
//! Collector `otlp:` / `otlphttp:` section moves over unchanged.
//!
//! Every struct is `deny_unknown_fields` with a `Default`; `validate()` is pure (no I/O: certificate files are
//! read when the exporter starts) and reports every problem at once. Header values and inline keys are
//! [`Secret`](otlake_core::config::Secret)s: never printed. Headers, TLS and compression are the
//! core's config kit (`otlake_core::config`), shared with every plugin.

mod grpc;
mod http;
mod queue;
mod retry;

use std::time::Duration;

pub use grpc::{DEFAULT_GRPC_TIMEOUT, GrpcExporterConfig, GrpcTarget, KeepaliveConfig};
pub use http::{DEFAULT_HTTP_TIMEOUT, Encoding, HttpExporterConfig};
pub use queue::{
    DEFAULT_MAX_BYTES, DEFAULT_NUM_CONSUMERS, DEFAULT_QUEUE_SIZE, QueueConfig, QueueLimits, Sizer,
};
pub use retry::{
    DEFAULT_INITIAL_INTERVAL, DEFAULT_MAX_ELAPSED_TIME, DEFAULT_MAX_INTERVAL, DEFAULT_MULTIPLIER,
    DEFAULT_RANDOMIZATION_FACTOR, RetryConfig,
};

use otlake_core::ConfigError;

/// 4 MiB (the default message limit of grpc-go, and so of most Collectors) less 128 KiB of headroom.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = (4 << 20) - (128 << 10);

/// Below this a request holds barely one record: surely a unit mistake (`4` instead of `4MiB`).
pub const MIN_MAX_REQUEST_BYTES: u64 = 1024;

fn validate_max_request_bytes(value: u64, errors: &mut Vec<ConfigError>) {
    if value < MIN_MAX_REQUEST_BYTES {
        errors.push(ConfigError::new(
            "max_request_bytes",
            format!("{value} bytes is too small: give at least 1KiB (e.g. `4MiB`)"),
        ));
    }
}

/// What the queue, the retry loop and the request sizing need, whichever the transport.
#[derive(Clone, Debug)]
pub struct SenderSettings {
    pub retry: RetryConfig,
    pub queue: QueueLimits,
    pub max_request_bytes: usize,
    /// Per attempt; `None` for no limit.
    pub timeout: Option<Duration>,
}

impl SenderSettings {
    fn new(
        retry: &RetryConfig,
        queue: &QueueConfig,
        max_request_bytes: u64,
        timeout: Duration,
    ) -> Self {
        SenderSettings {
            retry: retry.clone(),
            queue: queue.limits(),
            max_request_bytes: usize::try_from(max_request_bytes).unwrap_or(usize::MAX),
            timeout: (!timeout.is_zero()).then_some(timeout),
        }
    }
}

impl GrpcExporterConfig {
    pub fn sender_settings(&self) -> SenderSettings {
        SenderSettings::new(
            &self.retry_on_failure,
            &self.sending_queue,
            self.max_request_bytes,
            self.timeout,
        )
    }
}

impl HttpExporterConfig {
    pub fn sender_settings(&self) -> SenderSettings {
        SenderSettings::new(
            &self.retry_on_failure,
            &self.sending_queue,
            self.max_request_bytes,
            self.timeout,
        )
    }
}
