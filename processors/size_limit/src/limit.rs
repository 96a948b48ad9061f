//! Applying the record and log-line limits to one request, in place.
//!
//! Two passes: [`needs_change`] looks without touching (so a payload a fan-out branch still shares is only
//! copied when something really changes), then [`apply`] drops or truncates the offending records and leaves
//! every other record exactly as it was. Resource and scope groups emptied by a drop are removed.

use otlake_core::ExportRequest;
use otlake_core::payload::data_point_count;
use otlake_core::proto::logs::v1::LogRecord;
use otlake_core::proto::metrics::v1::{Metric, metric};
use prost::Message;

use crate::config::Action;
use crate::record::{Record, log_line, log_line_mut, mark_truncated};
use crate::truncate::{cut, truncate_to_fit};

/// The limits in force, from the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_record: usize,
    pub max_line: usize,
    pub record_action: Action,
    pub line_action: Action,
}

/// Which checks a request needs: none of its records can exceed a limit above its own encoded size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checks {
    pub records: bool,
    pub lines: bool,
}

/// What [`apply`] did, for the client's partial success and the counters.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub rejected_records: u64,
    pub record_message: Option<String>,
    pub rejected_lines: u64,
    pub line_message: Option<String>,
    pub truncated_records: u64,
    pub truncated_lines: u64,
}

impl Report {
    pub fn rejected(&self) -> u64 {
        self.rejected_records + self.rejected_lines
    }

    fn reject_record(&mut self, name: &str, size: usize, limit: usize, tried_truncating: bool) {
        self.rejected_records += 1;
        if self.record_message.is_none() {
            let tail = if tried_truncating {
                " and cannot be truncated to fit"
            } else {
                ""
            };
            self.record_message = Some(format!(
                "{name} of {size} bytes exceeds max_record_bytes ({limit} bytes){tail}"
            ));
        }
    }

    fn reject_line(&mut self, size: usize, limit: usize) {
        self.rejected_lines += 1;
        if self.line_message.is_none() {
            self.line_message = Some(format!(
                "log line of {size} bytes exceeds max_log_line_bytes ({limit} bytes)"
            ));
        }
    }
}

/// Whether any record of `payload` is over a limit.
pub(crate) fn needs_change(payload: &ExportRequest, limits: &Limits, checks: Checks) -> bool {
    let over = |size: usize| size > limits.max_record;
    match payload {
        ExportRequest::Traces(r) => {
            checks.records
                && r.resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .flat_map(|ss| &ss.spans)
                    .any(|s| over(s.encoded_len()))
        }
        ExportRequest::Logs(r) => r
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
            .any(|l| {
                (checks.lines && log_line(l).is_some_and(|line| line.len() > limits.max_line))
                    || (checks.records && over(l.encoded_len()))
            }),
        ExportRequest::Metrics(r) => {
            checks.records
                && r.resource_metrics
                    .iter()
                    .flat_map(|rm| &rm.scope_metrics)
                    .flat_map(|sm| &sm.metrics)
                    .any(|m| metric_over(m, limits.max_record))
        }
    }
}

fn metric_over(m: &Metric, limit: usize) -> bool {
    fn any_over<P: Message>(points: &[P], limit: usize) -> bool {
        points.iter().any(|p| p.encoded_len() > limit)
    }
    match &m.data {
        Some(metric::Data::Gauge(g)) => any_over(&g.data_points, limit),
        Some(metric::Data::Sum(s)) => any_over(&s.data_points, limit),
        Some(metric::Data::Histogram(h)) => any_over(&h.data_points, limit),
        Some(metric::Data::ExponentialHistogram(h)) => any_over(&h.data_points, limit),
        Some(metric::Data::Summary(s)) => any_over(&s.data_points, limit),
        None => false,
    }
}

/// Drops or truncates the records of `payload` that are over a limit.
pub(crate) fn apply(
    payload: &mut ExportRequest,
    limits: &Limits,
    checks: Checks,
    report: &mut Report,
) {
    match payload {
        ExportRequest::Traces(r) => {
            r.resource_spans.retain_mut(|rs| {
                let had = !rs.scope_spans.is_empty();
                rs.scope_spans.retain_mut(|ss| {
                    let had = !ss.spans.is_empty();
                    ss.spans
                        .retain_mut(|span| keep_record(span, limits, checks, report));
                    !(had && ss.spans.is_empty())
                });
                !(had && rs.scope_spans.is_empty())
            });
        }
        ExportRequest::Logs(r) => {
            r.resource_logs.retain_mut(|rl| {
                let had = !rl.scope_logs.is_empty();
                rl.scope_logs.retain_mut(|sl| {
                    let had = !sl.log_records.is_empty();
                    sl.log_records
                        .retain_mut(|log| keep_log(log, limits, checks, report));
                    !(had && sl.log_records.is_empty())
                });
                !(had && rl.scope_logs.is_empty())
            });
        }
        ExportRequest::Metrics(r) => {
            r.resource_metrics.retain_mut(|rm| {
                let had = !rm.scope_metrics.is_empty();
                rm.scope_metrics.retain_mut(|sm| {
                    let had = !sm.metrics.is_empty();
                    sm.metrics
                        .retain_mut(|m| keep_metric(m, limits, checks, report));
                    !(had && sm.metrics.is_empty())
                });
                !(had && rm.scope_metrics.is_empty())
            });
        }
    }
}

/// Applies `max_record_bytes` to one record; `false` drops it.
fn keep_record<R: Record>(
    record: &mut R,
    limits: &Limits,
    checks: Checks,
    report: &mut Report,
) -> bool {
    if !checks.records {
        return true;
    }
    let size = record.encoded_len();
    size <= limits.max_record || fit_or_reject(record, size, size, limits, report)
}

/// `record` is over `max_record_bytes` at `size` (`original` before any earlier truncation).
fn fit_or_reject<R: Record>(
    record: &mut R,
    size: usize,
    original: usize,
    limits: &Limits,
    report: &mut Report,
) -> bool {
    match limits.record_action {
        Action::Reject => {
            report.reject_record(R::NAME, size, limits.max_record, false);
            false
        }
        Action::Truncate => {
            if truncate_to_fit(record, limits.max_record, original) {
                report.truncated_records += 1;
                true
            } else {
                report.reject_record(R::NAME, size, limits.max_record, true);
                false
            }
        }
    }
}

/// Applies `max_log_line_bytes`, then `max_record_bytes`, to one log record; `false` drops it.
fn keep_log(record: &mut LogRecord, limits: &Limits, checks: Checks, report: &mut Report) -> bool {
    let mut original = None;
    if checks.lines
        && let Some(line_len) = log_line(record).map(str::len)
        && line_len > limits.max_line
    {
        match limits.line_action {
            Action::Reject => {
                report.reject_line(line_len, limits.max_line);
                return false;
            }
            Action::Truncate => {
                let size = record.encoded_len();
                original = Some(size);
                if let Some(line) = log_line_mut(record) {
                    cut(line, limits.max_line);
                }
                mark_truncated(&mut record.attributes, size);
                report.truncated_lines += 1;
            }
        }
    }
    if !checks.records {
        return true;
    }
    let size = record.encoded_len();
    size <= limits.max_record
        || fit_or_reject(record, size, original.unwrap_or(size), limits, report)
}

/// Applies `max_record_bytes` to each data point; `false` drops a metric left without any.
fn keep_metric(m: &mut Metric, limits: &Limits, checks: Checks, report: &mut Report) -> bool {
    let had = data_point_count(m) > 0;
    match &mut m.data {
        Some(metric::Data::Gauge(g)) => g
            .data_points
            .retain_mut(|p| keep_record(p, limits, checks, report)),
        Some(metric::Data::Sum(s)) => s
            .data_points
            .retain_mut(|p| keep_record(p, limits, checks, report)),
        Some(metric::Data::Histogram(h)) => h
            .data_points
            .retain_mut(|p| keep_record(p, limits, checks, report)),
        Some(metric::Data::ExponentialHistogram(h)) => h
            .data_points
            .retain_mut(|p| keep_record(p, limits, checks, report)),
        Some(metric::Data::Summary(s)) => s
            .data_points
            .retain_mut(|p| keep_record(p, limits, checks, report)),
        None => {}
    }
    !(had && data_point_count(m) == 0)
}
