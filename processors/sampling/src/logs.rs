//! Log sampling: records at or above a severity are kept; the others are kept by ratio, consistently: a
//! record with a trace id uses that trace's randomness (so the logs of a trace kept by the ratio are kept,
//! in every instance), a record without one a hash of its time, severity and body.

use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::common::v1::any_value;
use otlake_core::proto::logs::v1::LogRecord;

use crate::threshold::{Randomness, Threshold};

pub struct LogSampler {
    min_severity: i32,
    threshold: Threshold,
}

impl LogSampler {
    pub fn new(min_severity: i32, threshold: Threshold) -> Self {
        LogSampler {
            min_severity,
            threshold,
        }
    }

    /// Whether every record is kept whatever it holds.
    pub fn keeps_everything(&self) -> bool {
        self.threshold == Threshold::ALWAYS
    }

    pub fn keep(&self, record: &LogRecord) -> bool {
        if record.severity_number >= self.min_severity {
            return true;
        }
        let randomness = Randomness::of_trace_id(&record.trace_id)
            .unwrap_or_else(|| Randomness::from_hash(record_hash(record)));
        self.threshold.keeps(randomness)
    }

    /// Whether any record of `request` would be dropped (looked at before touching a shared payload).
    pub fn drops_any(&self, request: &ExportLogsServiceRequest) -> bool {
        request
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
            .any(|r| !self.keep(r))
    }

    /// Drops the records sampled out and the groups they empty. Returns how many were dropped.
    pub fn sample(&self, request: &mut ExportLogsServiceRequest) -> u64 {
        let mut dropped = 0u64;
        request.resource_logs.retain_mut(|rl| {
            let had = !rl.scope_logs.is_empty();
            rl.scope_logs.retain_mut(|sl| {
                let had = !sl.log_records.is_empty();
                sl.log_records.retain(|r| {
                    let keep = self.keep(r);
                    dropped += u64::from(!keep);
                    keep
                });
                !(had && sl.log_records.is_empty())
            });
            !(had && rl.scope_logs.is_empty())
        });
        dropped
    }
}

/// FNV-1a over what identifies a record without a trace id, finished with a SplitMix64 mix so that similar
/// records spread over the whole range. Stable across versions and instances.
fn record_hash(record: &LogRecord) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(&record.time_unix_nano.to_le_bytes());
    feed(&record.observed_time_unix_nano.to_le_bytes());
    feed(&record.severity_number.to_le_bytes());
    if let Some(any_value::Value::StringValue(body)) =
        record.body.as_ref().and_then(|b| b.value.as_ref())
    {
        feed(body.as_bytes());
    }
    let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
