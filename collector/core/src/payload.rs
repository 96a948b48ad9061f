//! The OTLP export request of one signal, and the operations every stage shares on it: counting items,
//! measuring, merging (batching) and splitting (batch size caps, request size limits of a downstream).
//!
//! Items are spans, log records and metric data points. Splitting keeps the resource → scope → item hierarchy:
//! each part repeats the resource and scope its items belong to. Metrics split at whole `Metric`s (a metric's
//! data points stay together), weighed by their data points.

use prost::Message;

use crate::Signal;
use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::metrics::v1::{Metric, metric};

/// One OTLP export request: the data a [`Batch`](crate::Batch) carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

impl From<ExportTraceServiceRequest> for Payload {
    fn from(r: ExportTraceServiceRequest) -> Self {
        Payload::Traces(r)
    }
}
impl From<ExportLogsServiceRequest> for Payload {
    fn from(r: ExportLogsServiceRequest) -> Self {
        Payload::Logs(r)
    }
}
impl From<ExportMetricsServiceRequest> for Payload {
    fn from(r: ExportMetricsServiceRequest) -> Self {
        Payload::Metrics(r)
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

impl Payload {
    /// An empty request of `signal`.
    pub fn empty(signal: Signal) -> Self {
        match signal {
            Signal::Traces => Payload::Traces(Default::default()),
            Signal::Logs => Payload::Logs(Default::default()),
            Signal::Metrics => Payload::Metrics(Default::default()),
        }
    }

    pub fn signal(&self) -> Signal {
        match self {
            Payload::Traces(_) => Signal::Traces,
            Payload::Logs(_) => Signal::Logs,
            Payload::Metrics(_) => Signal::Metrics,
        }
    }

    /// Spans, log records or metric data points.
    pub fn item_count(&self) -> usize {
        match self {
            Payload::Traces(r) => count_traces(r),
            Payload::Logs(r) => count_logs(r),
            Payload::Metrics(r) => count_metrics(r),
        }
    }

    /// The protobuf-encoded size in bytes, computed without encoding.
    pub fn encoded_len(&self) -> usize {
        match self {
            Payload::Traces(r) => r.encoded_len(),
            Payload::Logs(r) => r.encoded_len(),
            Payload::Metrics(r) => r.encoded_len(),
        }
    }

    /// Encodes as OTLP protobuf.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        match self {
            Payload::Traces(r) => r.encode_to_vec(),
            Payload::Logs(r) => r.encode_to_vec(),
            Payload::Metrics(r) => r.encode_to_vec(),
        }
    }

    /// Appends `other`'s data. Requests of different signals are never merged: a pipeline carries one signal,
    /// so a mismatch is a wiring bug, reported rather than hidden.
    pub fn merge(&mut self, other: Payload) -> Result<(), Payload> {
        match (self, other) {
            (Payload::Traces(a), Payload::Traces(b)) => merge_traces(a, b),
            (Payload::Logs(a), Payload::Logs(b)) => merge_logs(a, b),
            (Payload::Metrics(a), Payload::Metrics(b)) => merge_metrics(a, b),
            (_, other) => return Err(other),
        }
        Ok(())
    }

    /// Splits into parts of at most `max_items` items and about `max_bytes` encoded bytes each. A payload within
    /// both limits comes back whole, as the only part.
    pub fn split(self, max_items: usize, max_bytes: usize) -> Vec<Payload> {
        if self.item_count() <= max_items && self.encoded_len() <= max_bytes {
            return vec![self];
        }
        match self {
            Payload::Traces(r) => split_traces(r, max_items, max_bytes)
                .into_iter()
                .map(Payload::Traces)
                .collect(),
            Payload::Logs(r) => split_logs(r, max_items, max_bytes)
                .into_iter()
                .map(Payload::Logs)
                .collect(),
            Payload::Metrics(r) => split_metrics(r, max_items, max_bytes)
                .into_iter()
                .map(Payload::Metrics)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{sample_logs, sample_metrics, sample_traces};

    #[test]
    fn counts_items_of_every_signal() {
        assert_eq!(Payload::from(sample_traces(2, 3)).item_count(), 6);
        assert_eq!(Payload::from(sample_logs(3, 4)).item_count(), 12);
        // sample_metrics: per resource, one gauge with 2 points and one histogram with 1 point
        assert_eq!(Payload::from(sample_metrics(2)).item_count(), 6);
    }

    #[test]
    fn split_keeps_every_item_once_and_respects_the_caps() {
        let original = Payload::from(sample_traces(3, 7));
        let parts = original.clone().split(5, usize::MAX);
        assert_eq!(parts.iter().map(Payload::item_count).sum::<usize>(), 21);
        assert!(parts.iter().all(|p| p.item_count() <= 5));
        let mut rejoined = Payload::empty(Signal::Traces);
        for p in parts {
            rejoined.merge(p).expect("same signal");
        }
        let ids = |p: &Payload| match p {
            Payload::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .map(|s| s.span_id.clone())
                .collect::<Vec<_>>(),
            _ => unreachable!(),
        };
        assert_eq!(ids(&rejoined), ids(&original));
    }

    #[test]
    fn split_by_bytes_keeps_parts_under_the_cap() {
        let original = Payload::from(sample_logs(2, 50));
        let cap = original.encoded_len() / 4;
        let parts = original.split(usize::MAX, cap);
        assert!(parts.len() >= 4, "{} parts", parts.len());
        assert!(parts.iter().all(|p| p.encoded_len() <= cap));
        assert_eq!(parts.iter().map(Payload::item_count).sum::<usize>(), 100);
    }

    #[test]
    fn merge_refuses_another_signal() {
        let mut traces = Payload::from(sample_traces(1, 1));
        assert!(traces.merge(Payload::from(sample_logs(1, 1))).is_err());
    }
}
