//! Walks the items of a request (spans, log records, metric data points) with what `include` / `exclude` read
//! of each, once read-only (to decide whether anything would change) and once to change the selected items'
//! attributes.

use otlake_core::ExportRequest;
use otlake_core::attributes::ValueRef;
use otlake_core::proto::common::v1::KeyValue;
use otlake_core::proto::metrics::v1::{Metric, metric};
use otlake_core::wire::look::Scope;

use crate::matcher::{Item, ItemKind};

fn attributes_of(resource: Option<&otlake_core::proto::resource::v1::Resource>) -> &[KeyValue] {
    resource.map_or(&[], |r| r.attributes.as_slice())
}

/// Calls `f` on every item; stops at the first `true` and returns it.
pub fn any_item(request: &ExportRequest, mut f: impl FnMut(&Item<'_>) -> bool) -> bool {
    match request {
        ExportRequest::Traces(req) => req.resource_spans.iter().any(|rs| {
            let resource = attributes_of(rs.resource.as_ref());
            rs.scope_spans.iter().any(|ss| {
                ss.spans.iter().any(|span| {
                    f(&Item {
                        resource,
                        scope: Scope::of(ss.scope.as_ref()),
                        attributes: &span.attributes,
                        kind: ItemKind::Span {
                            name: &span.name,
                            kind: span.kind,
                        },
                    })
                })
            })
        }),
        ExportRequest::Logs(req) => req.resource_logs.iter().any(|rl| {
            let resource = attributes_of(rl.resource.as_ref());
            rl.scope_logs.iter().any(|sl| {
                sl.log_records.iter().any(|record| {
                    f(&Item {
                        resource,
                        scope: Scope::of(sl.scope.as_ref()),
                        attributes: &record.attributes,
                        kind: ItemKind::Log {
                            body: ValueRef::of(record.body.as_ref()),
                            severity_text: &record.severity_text,
                        },
                    })
                })
            })
        }),
        ExportRequest::Metrics(req) => req.resource_metrics.iter().any(|rm| {
            let resource = attributes_of(rm.resource.as_ref());
            rm.scope_metrics.iter().any(|sm| {
                sm.metrics.iter().any(|m| {
                    point_attributes(m).any(|attributes| {
                        f(&Item {
                            resource,
                            scope: Scope::of(sm.scope.as_ref()),
                            attributes,
                            kind: ItemKind::DataPoint {
                                metric_name: &m.name,
                            },
                        })
                    })
                })
            })
        }),
    }
}

/// Calls `edit` on the attributes of every item `select` chooses.
pub fn edit_items(
    request: &mut ExportRequest,
    select: impl Fn(&Item<'_>) -> bool,
    mut edit: impl FnMut(&mut Vec<KeyValue>),
) {
    match request {
        ExportRequest::Traces(req) => {
            for rs in &mut req.resource_spans {
                let resource = attributes_of(rs.resource.as_ref());
                for ss in &mut rs.scope_spans {
                    let scope = Scope::of(ss.scope.as_ref());
                    for span in &mut ss.spans {
                        let selected = select(&Item {
                            resource,
                            scope,
                            attributes: &span.attributes,
                            kind: ItemKind::Span {
                                name: &span.name,
                                kind: span.kind,
                            },
                        });
                        if selected {
                            edit(&mut span.attributes);
                        }
                    }
                }
            }
        }
        ExportRequest::Logs(req) => {
            for rl in &mut req.resource_logs {
                let resource = attributes_of(rl.resource.as_ref());
                for sl in &mut rl.scope_logs {
                    let scope = Scope::of(sl.scope.as_ref());
                    for record in &mut sl.log_records {
                        let selected = select(&Item {
                            resource,
                            scope,
                            attributes: &record.attributes,
                            kind: ItemKind::Log {
                                body: ValueRef::of(record.body.as_ref()),
                                severity_text: &record.severity_text,
                            },
                        });
                        if selected {
                            edit(&mut record.attributes);
                        }
                    }
                }
            }
        }
        ExportRequest::Metrics(req) => {
            for rm in &mut req.resource_metrics {
                let resource = attributes_of(rm.resource.as_ref());
                for sm in &mut rm.scope_metrics {
                    let scope = Scope::of(sm.scope.as_ref());
                    for m in &mut sm.metrics {
                        let name = m.name.as_str();
                        for_each_point_attributes_mut(&mut m.data, |attributes| {
                            let selected = select(&Item {
                                resource,
                                scope,
                                attributes,
                                kind: ItemKind::DataPoint { metric_name: name },
                            });
                            if selected {
                                edit(attributes);
                            }
                        });
                    }
                }
            }
        }
    }
}

/// The attribute lists of a metric's data points.
fn point_attributes(m: &Metric) -> Box<dyn Iterator<Item = &[KeyValue]> + '_> {
    match &m.data {
        Some(metric::Data::Gauge(g)) => Box::new(g.data_points.iter().map(|p| &p.attributes[..])),
        Some(metric::Data::Sum(s)) => Box::new(s.data_points.iter().map(|p| &p.attributes[..])),
        Some(metric::Data::Histogram(h)) => {
            Box::new(h.data_points.iter().map(|p| &p.attributes[..]))
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            Box::new(h.data_points.iter().map(|p| &p.attributes[..]))
        }
        Some(metric::Data::Summary(s)) => Box::new(s.data_points.iter().map(|p| &p.attributes[..])),
        None => Box::new(std::iter::empty()),
    }
}

fn for_each_point_attributes_mut(
    data: &mut Option<metric::Data>,
    mut f: impl FnMut(&mut Vec<KeyValue>),
) {
    match data {
        Some(metric::Data::Gauge(g)) => g.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        Some(metric::Data::Sum(s)) => s.data_points.iter_mut().for_each(|p| f(&mut p.attributes)),
        Some(metric::Data::Histogram(h)) => {
            h.data_points.iter_mut().for_each(|p| f(&mut p.attributes));
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            h.data_points.iter_mut().for_each(|p| f(&mut p.attributes));
        }
        Some(metric::Data::Summary(s)) => {
            s.data_points.iter_mut().for_each(|p| f(&mut p.attributes));
        }
        None => {}
    }
}

/// The resources of a request: read-only, and to change (created empty where absent).
pub fn resources(request: &ExportRequest) -> Box<dyn Iterator<Item = &[KeyValue]> + '_> {
    match request {
        ExportRequest::Traces(r) => Box::new(
            r.resource_spans
                .iter()
                .map(|x| attributes_of(x.resource.as_ref())),
        ),
        ExportRequest::Logs(r) => Box::new(
            r.resource_logs
                .iter()
                .map(|x| attributes_of(x.resource.as_ref())),
        ),
        ExportRequest::Metrics(r) => Box::new(
            r.resource_metrics
                .iter()
                .map(|x| attributes_of(x.resource.as_ref())),
        ),
    }
}

/// Calls `edit` on every resource's attributes.
pub fn edit_resources(request: &mut ExportRequest, mut edit: impl FnMut(&mut Vec<KeyValue>)) {
    let resources: Vec<&mut Option<otlake_core::proto::resource::v1::Resource>> = match request {
        ExportRequest::Traces(r) => r
            .resource_spans
            .iter_mut()
            .map(|x| &mut x.resource)
            .collect(),
        ExportRequest::Logs(r) => r
            .resource_logs
            .iter_mut()
            .map(|x| &mut x.resource)
            .collect(),
        ExportRequest::Metrics(r) => r
            .resource_metrics
            .iter_mut()
            .map(|x| &mut x.resource)
            .collect(),
    };
    for resource in resources {
        edit(&mut resource.get_or_insert_with(Default::default).attributes);
    }
}
