//! The `sending_queue:` section: the Collector's `exporterhelper` queue keys and defaults, plus `max_bytes`.
//!
//! Differences from the Collector, on purpose:
//! - The bounds cover everything the exporter holds, waiting and in flight, so `max_bytes` is a real memory
//!   bound (the sidecar's memory is the model server's memory).
//! - When full, the exporter stops reading its input: the bounded channels push back and the receiver answers
//!   retryable. That is the Collector's `block_on_overflow: true`; the key is accepted, and `false` behaves the
//!   same (nothing is dropped).
//! - A client is answered only once the destination acknowledged: always the Collector's
//!   `wait_for_result: true`; the key is accepted for compatibility.
//! - `storage` (a persistent queue) and `batch` (batching inside the exporter) are refused with a pointer to
//!   what to use instead.

use serde::Deserialize;
use serde_json::Value;

use otlake_core::ConfigError;

pub const DEFAULT_NUM_CONSUMERS: usize = 10;
pub const DEFAULT_QUEUE_SIZE: u64 = 1_000;
/// 64 MiB: about 16 full-size requests of 4 MiB, small enough beside a model server.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// What `queue_size` counts, as in the Collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    /// Batches (requests) held.
    #[default]
    Requests,
    /// Spans, log records or metric data points held.
    Items,
    /// Protobuf-encoded bytes held.
    Bytes,
}

/// The sending queue in front of the `num_consumers` concurrent requests.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Queue batches and send `num_consumers` at once (default true). When false: one request at a time and
    /// nothing waits behind it, so the pipeline pushes back as soon as a request is in flight.
    pub enabled: bool,
    /// Requests in flight at once (default 10).
    pub num_consumers: usize,
    /// How much the exporter holds, waiting and in flight, in units of `sizer` (default 1000).
    pub queue_size: u64,
    /// The unit of `queue_size`: `requests` (default), `items` or `bytes`.
    pub sizer: Sizer,
    /// Bytes (protobuf-encoded) the exporter holds, waiting and in flight (default 64MiB); `512MiB`, `1GB`.
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub max_bytes: u64,
    /// Accepted for compatibility. otlake always pushes back when full and never drops.
    pub block_on_overflow: Option<bool>,
    /// Accepted for compatibility. otlake always answers a client only after the destination acknowledged.
    pub wait_for_result: Option<bool>,
    /// Not supported yet (a write-ahead-log queue will come); refused with a message.
    pub storage: Option<Value>,
    /// Not supported: use a `batch` processor in the pipeline; refused with a message.
    pub batch: Option<Value>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            enabled: true,
            num_consumers: DEFAULT_NUM_CONSUMERS,
            queue_size: DEFAULT_QUEUE_SIZE,
            sizer: Sizer::Requests,
            max_bytes: DEFAULT_MAX_BYTES,
            block_on_overflow: None,
            wait_for_result: None,
            storage: None,
            batch: None,
        }
    }
}

/// The limits the queue enforces, derived from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    pub max_batches: u64,
    pub max_items: u64,
    pub max_bytes: u64,
    pub consumers: usize,
}

impl QueueConfig {
    pub fn validate(&self, errors: &mut Vec<ConfigError>) {
        let mut report = |key: &str, message: &str| {
            errors.push(ConfigError::new(format!("sending_queue.{key}"), message))
        };
        if self.num_consumers == 0 {
            report("num_consumers", "must be greater than 0");
        }
        if self.queue_size == 0 {
            report("queue_size", "must be greater than 0");
        }
        if self.max_bytes == 0 {
            report("max_bytes", "must be greater than 0");
        }
        if self.storage.is_some() {
            report(
                "storage",
                "a persistent sending queue is not supported yet; remove `storage` (the queue is in memory, \
                 and a client is answered only after the destination acknowledged)",
            );
        }
        if self.batch.is_some() {
            report(
                "batch",
                "batching inside the exporter is not supported; remove `batch` and put a `batch` processor \
                 in the pipeline",
            );
        }
    }

    /// The bounds the queue enforces. A disabled queue holds one request, sent by one consumer.
    pub fn limits(&self) -> QueueLimits {
        if !self.enabled {
            return QueueLimits {
                max_batches: 1,
                max_items: u64::MAX,
                max_bytes: self.max_bytes,
                consumers: 1,
            };
        }
        let (mut max_batches, mut max_items, mut max_bytes) = (u64::MAX, u64::MAX, self.max_bytes);
        match self.sizer {
            Sizer::Requests => max_batches = self.queue_size,
            Sizer::Items => max_items = self.queue_size,
            Sizer::Bytes => max_bytes = max_bytes.min(self.queue_size),
        }
        QueueLimits {
            max_batches,
            max_items,
            max_bytes,
            consumers: self.num_consumers,
        }
    }
}
