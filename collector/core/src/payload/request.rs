//! [`ExportRequest`]: one decoded OTLP export request, and what every stage does with it in prost's types:
//! counting items and entries, measuring and encoding, merging (batching) and splitting (batch size caps,
//! request size limits of a downstream).
//!
//! Splitting keeps the resource → scope → item hierarchy: each part repeats the resource and scope its items
//! belong to. Metrics split at whole `Metric`s (a metric's data points stay together), weighed by their data
//! points. Requests of different signals are never merged.

use prost::Message;

use crate::Signal;
use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::metrics::v1::{Metric, metric};

/// One decoded OTLP export request.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportRequest {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

impl From<ExportTraceServiceRequest> for ExportRequest {
    fn from(r: ExportTraceServiceRequest) -> Self {
        ExportRequest::Traces(r)
    }
}
impl From<ExportLogsServiceRequest> for ExportRequest {
    fn from(r: ExportLogsServiceRequest) -> Self {
        ExportRequest::Logs(r)
    }
}
impl From<ExportMetricsServiceRequest> for ExportRequest {
    fn from(r: ExportMetricsServiceRequest) -> Self {
        ExportRequest::Metrics(r)
    }
}

/// The number of data points a metric holds, whatever its type.
pub fn data_point_count(metric: &Metric) -> usize {
    match &metric.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

// The three request types share one shape (request → resource groups → scope groups → items) under different
// field names; this macro writes the shape-generic operations once for each of them.
macro_rules! per_signal {
    ($req:ty, $res:ident, $scope:ident, $items:ident, $weight:expr,
     $count:ident, $merge:ident, $split:ident) => {
        fn $count(r: &$req) -> usize {
            r.$res
                .iter()
                .flat_map(|rg| rg.$scope.iter())
                .flat_map(|sg| sg.$items.iter())
                .map($weight)
                .sum()
        }

        fn $merge(into: &mut $req, other: $req) {
            into.$res.extend(other.$res);
        }

        /// Splits into parts of at most `max_items` items and about `max_bytes` encoded bytes (a single item
        /// larger than `max_bytes` still travels, alone).
        fn $split(r: $req, max_items: usize, max_bytes: usize) -> Vec<$req> {
            let max_items = max_items.max(1);
            let mut parts = Vec::new();
            let mut current = <$req>::default();
            let (mut items, mut bytes) = (0usize, 0usize);
            for mut rg in r.$res {
                let scopes = std::mem::take(&mut rg.$scope);
                let rg_overhead = rg.encoded_len();
                for mut sg in scopes {
                    let entries = std::mem::take(&mut sg.$items);
                    let sg_overhead = sg.encoded_len();
                    let mut open: Option<(usize, usize)> = None; // (resource index, scope index) in `current`
                    for item in entries {
                        let weight = ($weight)(&item);
                        let size = item.encoded_len() + 8;
                        if items > 0 && (items + weight > max_items || bytes + size > max_bytes) {
                            parts.push(std::mem::take(&mut current));
                            items = 0;
                            bytes = 0;
                            open = None;
                        }
                        let (ri, si) = match open {
                            Some(pos) => pos,
                            None => {
                                let mut rg_copy = rg.clone();
                                let mut sg_copy = sg.clone();
                                sg_copy.$items = Vec::new();
                                rg_copy.$scope = vec![sg_copy];
                                current.$res.push(rg_copy);
                                bytes += rg_overhead + sg_overhead;
                                let pos = (current.$res.len() - 1, 0);
                                open = Some(pos);
                                pos
                            }
                        };
                        current.$res[ri].$scope[si].$items.push(item);
                        items += weight;
                        bytes += size;
                    }
                }
            }
            if !current.$res.is_empty() {
                parts.push(current);
            }
            parts
        }
    };
}

per_signal!(
    ExportTraceServiceRequest,
    resource_spans,
    scope_spans,
    spans,
    |_| 1usize,
    count_traces,
    merge_traces,
    split_traces
);
per_signal!(
    ExportLogsServiceRequest,
    resource_logs,
    scope_logs,
    log_records,
    |_| 1usize,
    count_logs,
    merge_logs,
    split_logs
);
per_signal!(
    ExportMetricsServiceRequest,
    resource_metrics,
    scope_metrics,
    metrics,
    |m: &Metric| data_point_count(m),
    count_metrics,
    merge_metrics,
    split_metrics
);

impl ExportRequest {
    /// An empty request of `signal`.
    pub fn empty(signal: Signal) -> Self {
        match signal {
            Signal::Traces => ExportRequest::Traces(Default::default()),
            Signal::Logs => ExportRequest::Logs(Default::default()),
            Signal::Metrics => ExportRequest::Metrics(Default::default()),
        }
    }

    pub fn signal(&self) -> Signal {
        match self {
            ExportRequest::Traces(_) => Signal::Traces,
            ExportRequest::Logs(_) => Signal::Logs,
            ExportRequest::Metrics(_) => Signal::Metrics,
        }
    }

    /// Spans, log records or metric data points.
    pub fn item_count(&self) -> usize {
        match self {
            ExportRequest::Traces(r) => count_traces(r),
            ExportRequest::Logs(r) => count_logs(r),
            ExportRequest::Metrics(r) => count_metrics(r),
        }
    }

    /// Spans, log records or `Metric`s: the units a split never cuts (a metric's data points stay together).
    pub fn entry_count(&self) -> usize {
        match self {
            ExportRequest::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum(),
            ExportRequest::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum(),
            ExportRequest::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .map(|sm| sm.metrics.len())
                .sum(),
        }
    }

    /// The protobuf-encoded size in bytes, computed without encoding.
    pub fn encoded_len(&self) -> usize {
        match self {
            ExportRequest::Traces(r) => r.encoded_len(),
            ExportRequest::Logs(r) => r.encoded_len(),
            ExportRequest::Metrics(r) => r.encoded_len(),
        }
    }

    /// Appends the protobuf encoding to `buf`.
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        // Encoding into a Vec cannot fail: it grows as needed.
        let _ = match self {
            ExportRequest::Traces(r) => r.encode(buf),
            ExportRequest::Logs(r) => r.encode(buf),
            ExportRequest::Metrics(r) => r.encode(buf),
        };
    }

    /// Encodes as OTLP protobuf.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        match self {
            ExportRequest::Traces(r) => r.encode_to_vec(),
            ExportRequest::Logs(r) => r.encode_to_vec(),
            ExportRequest::Metrics(r) => r.encode_to_vec(),
        }
    }

    /// Appends `other`'s data. Requests of different signals are never merged: a pipeline carries one signal,
    /// so a mismatch is a wiring bug, reported rather than hidden.
    pub fn merge(&mut self, other: ExportRequest) -> Result<(), ExportRequest> {
        match (self, other) {
            (ExportRequest::Traces(a), ExportRequest::Traces(b)) => merge_traces(a, b),
            (ExportRequest::Logs(a), ExportRequest::Logs(b)) => merge_logs(a, b),
            (ExportRequest::Metrics(a), ExportRequest::Metrics(b)) => merge_metrics(a, b),
            (_, other) => return Err(other),
        }
        Ok(())
    }

    /// Splits into parts of at most `max_items` items and about `max_bytes` encoded bytes each. A payload within
    /// both limits comes back whole, as the only part.
    pub fn split(self, max_items: usize, max_bytes: usize) -> Vec<ExportRequest> {
        if self.item_count() <= max_items && self.encoded_len() <= max_bytes {
            return vec![self];
        }
        match self {
            ExportRequest::Traces(r) => split_traces(r, max_items, max_bytes)
                .into_iter()
                .map(ExportRequest::Traces)
                .collect(),
            ExportRequest::Logs(r) => split_logs(r, max_items, max_bytes)
                .into_iter()
                .map(ExportRequest::Logs)
                .collect(),
            ExportRequest::Metrics(r) => split_metrics(r, max_items, max_bytes)
                .into_iter()
                .map(ExportRequest::Metrics)
                .collect(),
        }
    }
}
