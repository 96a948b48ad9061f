//! The `filter` processor: drops the spans, span events, log records, metrics and data points its conditions
//! match.
//!
//! Lifecycle: built per pipeline; stateless, nothing held, nothing to flush. Guarantees: dropped items are
//! accepted and discarded on purpose: the rest of the request goes on with the request's acknowledgements (so
//! its client hears success only once the rest is durable), and a request with nothing left resolves
//! `Delivered` here. Dropped items are counted in `otlake_processor_dropped_items_total{reason="filtered"}`
//! (span events, which are not items, under `reason="filtered_span_event"`). A request nothing matches passes
//! untouched, in wire form and still shared with other pipelines, after a read-only look on its bytes
//! (`wire`) that allocates nothing per item or attribute.

use otlake_core::telemetry::PROCESSOR_DROPPED;
use otlake_core::{Batch, ComponentId, ExportRequest, Outcome, Processor, Signal};

use crate::items::{MetricConditions, TraceConditions, logs_drop_any, logs_drop_matching};
use crate::ottl::Condition;
use crate::wire;

/// The parsed condition lists.
pub struct Conditions {
    pub span: Vec<Condition>,
    pub spanevent: Vec<Condition>,
    pub log_record: Vec<Condition>,
    pub metric: Vec<Condition>,
    pub datapoint: Vec<Condition>,
}

pub struct FilterProcessor {
    pub(crate) conditions: Conditions,
    dropped: metrics::Counter,
    dropped_events: metrics::Counter,
}

impl FilterProcessor {
    pub fn new(id: &ComponentId, conditions: Conditions, signal: Signal) -> Self {
        FilterProcessor {
            conditions,
            dropped: metrics::counter!(PROCESSOR_DROPPED, "processor" => id.to_string(),
                "signal" => signal.as_str(), "reason" => "filtered"),
            dropped_events: metrics::counter!(PROCESSOR_DROPPED, "processor" => id.to_string(),
                "signal" => signal.as_str(), "reason" => "filtered_span_event"),
        }
    }

    fn traces(&self) -> TraceConditions<'_> {
        TraceConditions {
            span: &self.conditions.span,
            event: &self.conditions.spanevent,
        }
    }

    fn metrics(&self) -> MetricConditions<'_> {
        MetricConditions {
            metric: &self.conditions.metric,
            point: &self.conditions.datapoint,
        }
    }

    pub(crate) fn drops_any(&self, request: &ExportRequest) -> bool {
        match request {
            ExportRequest::Traces(r) => self.traces().drops_any(r),
            ExportRequest::Logs(r) => logs_drop_any(&self.conditions.log_record, r),
            ExportRequest::Metrics(r) => self.metrics().drops_any(r),
        }
    }

    /// Drops what matches; returns the items dropped.
    fn drop_matching(&self, request: &mut ExportRequest) -> u64 {
        match request {
            ExportRequest::Traces(r) => {
                let (spans, events) = self.traces().drop_matching(r);
                self.dropped_events.increment(events);
                spans
            }
            ExportRequest::Logs(r) => logs_drop_matching(&self.conditions.log_record, r),
            ExportRequest::Metrics(r) => self.metrics().drop_matching(r),
        }
    }

    fn has_conditions(&self, signal: Signal) -> bool {
        let c = &self.conditions;
        match signal {
            Signal::Traces => !c.span.is_empty() || !c.spanevent.is_empty(),
            Signal::Logs => !c.log_record.is_empty(),
            Signal::Metrics => !c.metric.is_empty() || !c.datapoint.is_empty(),
        }
    }
}

impl Processor for FilterProcessor {
    fn process(&mut self, mut batch: Batch, out: &mut Vec<Batch>) {
        if batch.item_count() == 0 || !self.has_conditions(batch.signal()) {
            out.push(batch);
            return;
        }
        // A request still in wire form is looked at on its bytes: when nothing matches it goes on undecoded.
        if batch.nothing_to_do_on_wire(|signal, chunks| {
            wire::drops_any(&self.conditions, signal, chunks.iter().map(|c| c.as_ref()))
        }) {
            out.push(batch);
            return;
        }
        let drops = match batch.payload.request() {
            Ok(request) => self.drops_any(request),
            Err(e) => {
                batch.acks.resolve(Outcome::rejected(e.to_string()));
                return;
            }
        };
        if !drops {
            out.push(batch);
            return;
        }
        let dropped = match batch.payload_mut().request_mut() {
            Ok(request) => self.drop_matching(request),
            Err(e) => {
                batch.acks.resolve(Outcome::rejected(e.to_string()));
                return;
            }
        };
        self.dropped.increment(dropped);
        if batch.item_count() == 0 {
            // Everything was dropped on purpose: delivered.
            batch.acks.resolve(Outcome::Delivered);
        } else {
            out.push(batch);
        }
    }
}
