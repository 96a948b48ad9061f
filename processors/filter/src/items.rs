//! What the conditions of each context read of an item, and dropping what they match from a request (groups
//! left empty by the drop go too).

use otlake_core::attributes::ValueRef;
use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::common::v1::{InstrumentationScope, KeyValue};
use otlake_core::proto::logs::v1::LogRecord;
use otlake_core::proto::metrics::v1::{Metric, metric};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::proto::trace::v1::{Span, span};

use crate::ottl::{Condition, Item, any_matches};

fn resource_attrs(resource: Option<&Resource>) -> &[KeyValue] {
    resource.map_or(&[], |r| r.attributes.as_slice())
}

fn scope_name(scope: Option<&InstrumentationScope>) -> &str {
    scope.map_or("", |s| s.name.as_str())
}

pub fn span_item<'a>(resource: &'a [KeyValue], scope: &'a str, s: &'a Span) -> Item<'a> {
    Item {
        name: &s.name,
        kind: s.kind,
        status_code: s.status.as_ref().map_or(0, |st| st.code),
        attributes: &s.attributes,
        resource,
        scope_name: scope,
        ..Default::default()
    }
}

fn event_item<'a>(resource: &'a [KeyValue], scope: &'a str, e: &'a span::Event) -> Item<'a> {
    Item {
        name: &e.name,
        attributes: &e.attributes,
        resource,
        scope_name: scope,
        ..Default::default()
    }
}

fn log_item<'a>(resource: &'a [KeyValue], scope: &'a str, r: &'a LogRecord) -> Item<'a> {
    Item {
        attributes: &r.attributes,
        resource,
        scope_name: scope,
        severity_number: r.severity_number,
        severity_text: &r.severity_text,
        body: ValueRef::of(r.body.as_ref()),
        ..Default::default()
    }
}

/// OTTL's `METRIC_DATA_TYPE_*` number of a metric.
fn metric_type(m: &Metric) -> i32 {
    match m.data {
        None => 0,
        Some(metric::Data::Gauge(_)) => 1,
        Some(metric::Data::Sum(_)) => 2,
        Some(metric::Data::Histogram(_)) => 3,
        Some(metric::Data::ExponentialHistogram(_)) => 4,
        Some(metric::Data::Summary(_)) => 5,
    }
}

fn metric_item<'a>(resource: &'a [KeyValue], scope: &'a str, m: &'a Metric) -> Item<'a> {
    Item {
        name: &m.name,
        metric_name: &m.name,
        metric_type: metric_type(m),
        resource,
        scope_name: scope,
        ..Default::default()
    }
}

fn point_item<'a>(
    resource: &'a [KeyValue],
    scope: &'a str,
    m: &'a Metric,
    attributes: &'a [KeyValue],
) -> Item<'a> {
    Item {
        metric_name: &m.name,
        metric_type: metric_type(m),
        attributes,
        resource,
        scope_name: scope,
        ..Default::default()
    }
}

/// Span and span event conditions.
pub struct TraceConditions<'c> {
    pub span: &'c [Condition],
    pub event: &'c [Condition],
}

impl TraceConditions<'_> {
    /// Whether any span or span event would be dropped.
    pub fn drops_any(&self, req: &ExportTraceServiceRequest) -> bool {
        req.resource_spans.iter().any(|rs| {
            let resource = resource_attrs(rs.resource.as_ref());
            rs.scope_spans.iter().any(|ss| {
                let scope = scope_name(ss.scope.as_ref());
                ss.spans.iter().any(|s| {
                    any_matches(self.span, &span_item(resource, scope, s))
                        || s.events
                            .iter()
                            .any(|e| any_matches(self.event, &event_item(resource, scope, e)))
                })
            })
        })
    }

    /// Drops matching spans, then matching events of the spans kept. Returns (spans, events) dropped.
    pub fn drop_matching(&self, req: &mut ExportTraceServiceRequest) -> (u64, u64) {
        let (mut spans, mut events) = (0u64, 0u64);
        req.resource_spans.retain_mut(|rs| {
            let resource = resource_attrs(rs.resource.as_ref());
            let had = !rs.scope_spans.is_empty();
            rs.scope_spans.retain_mut(|ss| {
                let scope = scope_name(ss.scope.as_ref());
                let had = !ss.spans.is_empty();
                ss.spans.retain_mut(|s| {
                    if any_matches(self.span, &span_item(resource, scope, s)) {
                        spans += 1;
                        return false;
                    }
                    if !self.event.is_empty() {
                        s.events.retain(|e| {
                            let drop = any_matches(self.event, &event_item(resource, scope, e));
                            events += u64::from(drop);
                            !drop
                        });
                    }
                    true
                });
                !(had && ss.spans.is_empty())
            });
            !(had && rs.scope_spans.is_empty())
        });
        (spans, events)
    }
}

/// Whether any log record would be dropped.
pub fn logs_drop_any(list: &[Condition], req: &ExportLogsServiceRequest) -> bool {
    req.resource_logs.iter().any(|rl| {
        let resource = resource_attrs(rl.resource.as_ref());
        rl.scope_logs.iter().any(|sl| {
            let scope = scope_name(sl.scope.as_ref());
            sl.log_records
                .iter()
                .any(|r| any_matches(list, &log_item(resource, scope, r)))
        })
    })
}

/// Drops matching log records. Returns how many.
pub fn logs_drop_matching(list: &[Condition], req: &mut ExportLogsServiceRequest) -> u64 {
    let mut dropped = 0u64;
    req.resource_logs.retain_mut(|rl| {
        let resource = resource_attrs(rl.resource.as_ref());
        let had = !rl.scope_logs.is_empty();
        rl.scope_logs.retain_mut(|sl| {
            let scope = scope_name(sl.scope.as_ref());
            let had = !sl.log_records.is_empty();
            sl.log_records.retain(|r| {
                let drop = any_matches(list, &log_item(resource, scope, r));
                dropped += u64::from(drop);
                !drop
            });
            !(had && sl.log_records.is_empty())
        });
        !(had && rl.scope_logs.is_empty())
    });
    dropped
}

/// Metric and data point conditions.
pub struct MetricConditions<'c> {
    pub metric: &'c [Condition],
    pub point: &'c [Condition],
}

macro_rules! each_points {
    ($data:expr, $points:ident => $body:expr, $none:expr) => {
        match $data {
            Some(metric::Data::Gauge(d)) => {
                let $points = &mut d.data_points;
                $body
            }
            Some(metric::Data::Sum(d)) => {
                let $points = &mut d.data_points;
                $body
            }
            Some(metric::Data::Histogram(d)) => {
                let $points = &mut d.data_points;
                $body
            }
            Some(metric::Data::ExponentialHistogram(d)) => {
                let $points = &mut d.data_points;
                $body
            }
            Some(metric::Data::Summary(d)) => {
                let $points = &mut d.data_points;
                $body
            }
            None => $none,
        }
    };
}

fn point_attributes(m: &Metric) -> Vec<&[KeyValue]> {
    match &m.data {
        Some(metric::Data::Gauge(d)) => d.data_points.iter().map(|p| &p.attributes[..]).collect(),
        Some(metric::Data::Sum(d)) => d.data_points.iter().map(|p| &p.attributes[..]).collect(),
        Some(metric::Data::Histogram(d)) => {
            d.data_points.iter().map(|p| &p.attributes[..]).collect()
        }
        Some(metric::Data::ExponentialHistogram(d)) => {
            d.data_points.iter().map(|p| &p.attributes[..]).collect()
        }
        Some(metric::Data::Summary(d)) => d.data_points.iter().map(|p| &p.attributes[..]).collect(),
        None => Vec::new(),
    }
}

impl MetricConditions<'_> {
    /// Whether any metric or data point would be dropped.
    pub fn drops_any(&self, req: &ExportMetricsServiceRequest) -> bool {
        req.resource_metrics.iter().any(|rm| {
            let resource = resource_attrs(rm.resource.as_ref());
            rm.scope_metrics.iter().any(|sm| {
                let scope = scope_name(sm.scope.as_ref());
                sm.metrics.iter().any(|m| {
                    any_matches(self.metric, &metric_item(resource, scope, m))
                        || (!self.point.is_empty()
                            && point_attributes(m).into_iter().any(|a| {
                                any_matches(self.point, &point_item(resource, scope, m, a))
                            }))
                })
            })
        })
    }

    /// Drops matching metrics and data points, and metrics left without points. Returns the data points
    /// dropped.
    pub fn drop_matching(&self, req: &mut ExportMetricsServiceRequest) -> u64 {
        let mut dropped = 0u64;
        req.resource_metrics.retain_mut(|rm| {
            let resource = resource_attrs(rm.resource.as_ref());
            let had = !rm.scope_metrics.is_empty();
            rm.scope_metrics.retain_mut(|sm| {
                let scope = scope_name(sm.scope.as_ref());
                let had = !sm.metrics.is_empty();
                sm.metrics.retain_mut(|m| {
                    if any_matches(self.metric, &metric_item(resource, scope, m)) {
                        dropped += otlake_core::payload::data_point_count(m) as u64;
                        return false;
                    }
                    if self.point.is_empty() {
                        return true;
                    }
                    let name = m.name.clone();
                    let kind = metric_type(m);
                    let probe = Metric {
                        name,
                        ..Default::default()
                    };
                    let keep_point = |attributes: &[KeyValue]| {
                        let mut item = point_item(resource, scope, &probe, attributes);
                        item.metric_type = kind;
                        !any_matches(self.point, &item)
                    };
                    each_points!(&mut m.data, points => {
                        let before = points.len();
                        points.retain(|p| keep_point(&p.attributes));
                        dropped += (before - points.len()) as u64;
                        !(before > 0 && points.is_empty())
                    }, true)
                });
                !(had && sm.metrics.is_empty())
            });
            !(had && rm.scope_metrics.is_empty())
        });
        dropped
    }
}
