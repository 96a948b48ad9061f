//! The `redaction` processor: walks every request with the [`Redactor`]: resource and scope attributes
//! (values only: they are never removed), spans (attributes, status message, events, links), log records
//! (attributes and body, string or structured) and metric data points.
//!
//! Lifecycle: built per pipeline; stateless, nothing held, nothing to flush. Guarantees: nothing is dropped
//! (an item loses attributes, never itself); every batch goes on with its acknowledgements. A request with
//! nothing to redact passes untouched (in wire form, not decoded, not copied) after a read-only look on its
//! bytes (`wire`) that allocates nothing per attribute.

use otlake_core::proto::common::v1::{InstrumentationScope, KeyValue};
use otlake_core::proto::metrics::v1::metric;
use otlake_core::proto::resource::v1::Resource;
use otlake_core::{Batch, ExportRequest, Processor};

use crate::redact::{Redactor, Report};
use crate::wire;

pub struct RedactionProcessor {
    pub(crate) redactor: Redactor,
}

fn resource_attrs(r: Option<&Resource>) -> &[KeyValue] {
    r.map_or(&[], |r| r.attributes.as_slice())
}

fn scope_attrs(s: Option<&InstrumentationScope>) -> &[KeyValue] {
    s.map_or(&[], |s| s.attributes.as_slice())
}

macro_rules! points {
    ($data:expr, $p:ident => $body:expr) => {
        match $data {
            Some(metric::Data::Gauge(d)) => d.data_points.iter_mut().for_each(|$p| $body),
            Some(metric::Data::Sum(d)) => d.data_points.iter_mut().for_each(|$p| $body),
            Some(metric::Data::Histogram(d)) => d.data_points.iter_mut().for_each(|$p| $body),
            Some(metric::Data::ExponentialHistogram(d)) => {
                d.data_points.iter_mut().for_each(|$p| $body)
            }
            Some(metric::Data::Summary(d)) => d.data_points.iter_mut().for_each(|$p| $body),
            None => {}
        }
    };
}

macro_rules! points_any {
    ($data:expr, $p:ident => $body:expr) => {
        match $data {
            Some(metric::Data::Gauge(d)) => d.data_points.iter().any(|$p| $body),
            Some(metric::Data::Sum(d)) => d.data_points.iter().any(|$p| $body),
            Some(metric::Data::Histogram(d)) => d.data_points.iter().any(|$p| $body),
            Some(metric::Data::ExponentialHistogram(d)) => d.data_points.iter().any(|$p| $body),
            Some(metric::Data::Summary(d)) => d.data_points.iter().any(|$p| $body),
            None => false,
        }
    };
}

impl RedactionProcessor {
    pub fn new(redactor: Redactor) -> Self {
        RedactionProcessor { redactor }
    }

    pub(crate) fn needs(&self, request: &ExportRequest) -> bool {
        let r = &self.redactor;
        let groups = |res: Option<&Resource>, scope: Option<&InstrumentationScope>| {
            r.attributes_need(resource_attrs(res), false)
                || r.attributes_need(scope_attrs(scope), false)
        };
        match request {
            ExportRequest::Traces(req) => req.resource_spans.iter().any(|rs| {
                rs.scope_spans.iter().any(|ss| {
                    groups(rs.resource.as_ref(), ss.scope.as_ref())
                        || ss.spans.iter().any(|s| {
                            r.attributes_need(&s.attributes, true)
                                || s.status
                                    .as_ref()
                                    .is_some_and(|st| r.mask_text(&st.message).is_some())
                                || s.events
                                    .iter()
                                    .any(|e| r.attributes_need(&e.attributes, true))
                                || s.links
                                    .iter()
                                    .any(|l| r.attributes_need(&l.attributes, true))
                        })
                })
            }),
            ExportRequest::Logs(req) => req.resource_logs.iter().any(|rl| {
                rl.scope_logs.iter().any(|sl| {
                    groups(rl.resource.as_ref(), sl.scope.as_ref())
                        || sl.log_records.iter().any(|l| {
                            r.attributes_need(&l.attributes, true)
                                || l.body.as_ref().is_some_and(|b| r.value_needs(b))
                        })
                })
            }),
            ExportRequest::Metrics(req) => req.resource_metrics.iter().any(|rm| {
                rm.scope_metrics.iter().any(|sm| {
                    groups(rm.resource.as_ref(), sm.scope.as_ref())
                        || sm.metrics.iter().any(
                            |m| points_any!(&m.data, p => r.attributes_need(&p.attributes, true)),
                        )
                })
            }),
        }
    }

    fn redact(&self, request: &mut ExportRequest) {
        let r = &self.redactor;
        let group = |res: &mut Option<Resource>, scope: &mut Option<InstrumentationScope>| {
            let mut ignored = Report::default();
            if let Some(res) = res {
                r.redact_attributes(&mut res.attributes, false, &mut ignored);
            }
            if let Some(scope) = scope {
                r.redact_attributes(&mut scope.attributes, false, &mut ignored);
            }
        };
        match request {
            ExportRequest::Traces(req) => {
                for rs in &mut req.resource_spans {
                    for ss in &mut rs.scope_spans {
                        group(&mut rs.resource, &mut ss.scope);
                        for s in &mut ss.spans {
                            let mut report = Report::default();
                            r.redact_attributes(&mut s.attributes, true, &mut report);
                            if let Some(st) = s.status.as_mut()
                                && let Some(masked) = r.mask_text(&st.message)
                            {
                                st.message = masked;
                                report.masked.insert("status.message".into());
                            }
                            for e in &mut s.events {
                                r.redact_attributes(&mut e.attributes, true, &mut report);
                            }
                            for l in &mut s.links {
                                r.redact_attributes(&mut l.attributes, true, &mut report);
                            }
                            r.summarise(&mut s.attributes, &report);
                        }
                    }
                }
            }
            ExportRequest::Logs(req) => {
                for rl in &mut req.resource_logs {
                    for sl in &mut rl.scope_logs {
                        group(&mut rl.resource, &mut sl.scope);
                        for l in &mut sl.log_records {
                            let mut report = Report::default();
                            r.redact_attributes(&mut l.attributes, true, &mut report);
                            if let Some(body) = l.body.as_mut()
                                && r.redact_value(body, &mut report)
                            {
                                report.masked.insert("body".into());
                            }
                            r.summarise(&mut l.attributes, &report);
                        }
                    }
                }
            }
            ExportRequest::Metrics(req) => {
                for rm in &mut req.resource_metrics {
                    for sm in &mut rm.scope_metrics {
                        group(&mut rm.resource, &mut sm.scope);
                        for m in &mut sm.metrics {
                            points!(&mut m.data, p => {
                                let mut report = Report::default();
                                r.redact_attributes(&mut p.attributes, true, &mut report);
                                r.summarise(&mut p.attributes, &report);
                            });
                        }
                    }
                }
            }
        }
    }
}

impl Processor for RedactionProcessor {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) {
        // A request still in wire form is looked at on its bytes (`wire`): when nothing is to be redacted it goes
        // on undecoded. Otherwise, or when another stage has decoded it already, the decoded look decides.
        let this = &*self;
        batch.edit_into(
            out,
            |signal, chunks| wire::needs(&this.redactor, signal, chunks.iter().map(|c| c.as_ref())),
            |request| this.needs(request),
            |request| this.redact(request),
        );
    }
}
