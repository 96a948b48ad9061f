//! Metrics → rows of the metrics table (v1): one row per data point. Exactly one of the five type structs
//! (`gauge`, `sum`, `histogram`, `exponential_histogram`, `summary`) is non-null on a row; a metric without
//! data contributes no row. Integer values are written as DOUBLE, as the schema has it.

mod points;

use deltalake::arrow::array::StringBuilder;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::common::v1::{InstrumentationScope, KeyValue};
use otlake_core::proto::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
    metric::Data,
};
use otlake_core::proto::resource::v1::Resource;

use super::column::{ArrowResult, Column, finish_batch};
use super::columns::{AttrColumn, Encoding, ResourceColumn, ScopeColumn, V2Columns};
use super::presized::Presized;
use crate::encode::metric_type;
use points::{ExpHistogramColumn, HistogramColumn, NumberColumn, SummaryColumn};

/// The data point a row carries.
enum Point<'a> {
    Gauge(&'a NumberDataPoint),
    Sum(&'a NumberDataPoint, i32, bool),
    Histogram(&'a HistogramDataPoint, i32),
    Exponential(&'a ExponentialHistogramDataPoint, i32),
    Summary(&'a SummaryDataPoint),
}

/// Builds record batches of the metrics table.
pub(crate) struct MetricRows {
    rows: usize,
    name: Presized<StringBuilder>,
    description: Presized<StringBuilder>,
    unit: Presized<StringBuilder>,
    metric_type: Presized<StringBuilder>,
    gauge: NumberColumn,
    sum: NumberColumn,
    histogram: HistogramColumn,
    exponential: ExpHistogramColumn,
    summary: SummaryColumn,
    metadata: AttrColumn,
    resource: ResourceColumn,
    resource_schema_url: Presized<StringBuilder>,
    scope: ScopeColumn,
    metric_schema_url: Presized<StringBuilder>,
    v2: V2Columns,
    scratch: String,
}

/// What every row of one metric repeats.
struct Context<'a> {
    metric: &'a Metric,
    resource: Option<&'a Resource>,
    resource_schema_url: &'a str,
    scope: Option<&'a InstrumentationScope>,
    scope_schema_url: &'a str,
}

impl MetricRows {
    pub(crate) fn new(encoding: Encoding) -> Self {
        MetricRows {
            rows: 0,
            name: Presized::default(),
            description: Presized::default(),
            unit: Presized::default(),
            metric_type: Presized::default(),
            gauge: NumberColumn::new(false, encoding),
            sum: NumberColumn::new(true, encoding),
            histogram: HistogramColumn::new(encoding),
            exponential: ExpHistogramColumn::new(encoding),
            summary: SummaryColumn::new(encoding),
            metadata: AttrColumn::new(encoding),
            resource: ResourceColumn::new(encoding),
            resource_schema_url: Presized::default(),
            scope: ScopeColumn::new(encoding),
            metric_schema_url: Presized::default(),
            v2: V2Columns::new(encoding),
            scratch: String::with_capacity(64),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// Appends one row per data point of `request`; returns how many.
    pub(crate) fn append(&mut self, request: &ExportMetricsServiceRequest) -> usize {
        let before = self.rows;
        for rm in &request.resource_metrics {
            for sm in &rm.scope_metrics {
                for metric in &sm.metrics {
                    let cx = Context {
                        metric,
                        resource: rm.resource.as_ref(),
                        resource_schema_url: &rm.schema_url,
                        scope: sm.scope.as_ref(),
                        scope_schema_url: &sm.schema_url,
                    };
                    match &metric.data {
                        Some(Data::Gauge(g)) => {
                            for p in &g.data_points {
                                self.append_row(&cx, Point::Gauge(p));
                            }
                        }
                        Some(Data::Sum(s)) => {
                            for p in &s.data_points {
                                self.append_row(
                                    &cx,
                                    Point::Sum(p, s.aggregation_temporality, s.is_monotonic),
                                );
                            }
                        }
                        Some(Data::Histogram(h)) => {
                            for p in &h.data_points {
                                self.append_row(
                                    &cx,
                                    Point::Histogram(p, h.aggregation_temporality),
                                );
                            }
                        }
                        Some(Data::ExponentialHistogram(h)) => {
                            for p in &h.data_points {
                                self.append_row(
                                    &cx,
                                    Point::Exponential(p, h.aggregation_temporality),
                                );
                            }
                        }
                        Some(Data::Summary(s)) => {
                            for p in &s.data_points {
                                self.append_row(&cx, Point::Summary(p));
                            }
                        }
                        None => {}
                    }
                }
            }
        }
        self.resource.forget();
        self.scope.forget();
        self.rows - before
    }

    fn append_row(&mut self, cx: &Context<'_>, point: Point<'_>) {
        let scratch = &mut self.scratch;
        self.name.append_value(&cx.metric.name);
        self.description.append_value(&cx.metric.description);
        self.unit.append_value(&cx.metric.unit);
        let kind = match point {
            Point::Gauge(_) => metric_type::GAUGE,
            Point::Sum(..) => metric_type::SUM,
            Point::Histogram(..) => metric_type::HISTOGRAM,
            Point::Exponential(..) => metric_type::EXPONENTIAL_HISTOGRAM,
            Point::Summary(_) => metric_type::SUMMARY,
        };
        self.metric_type.append_value(kind);
        let (start, time) = match point {
            Point::Gauge(p) | Point::Sum(p, ..) => (p.start_time_unix_nano, p.time_unix_nano),
            Point::Histogram(p, _) => (p.start_time_unix_nano, p.time_unix_nano),
            Point::Exponential(p, _) => (p.start_time_unix_nano, p.time_unix_nano),
            Point::Summary(p) => (p.start_time_unix_nano, p.time_unix_nano),
        };
        self.v2.append(time, cx.resource);
        self.v2.append_point_times(start, time);
        match point {
            Point::Gauge(p) => self.gauge.append(p, None, scratch),
            _ => self.gauge.append_null(),
        }
        match point {
            Point::Sum(p, temporality, monotonic) => {
                self.sum.append(p, Some((temporality, monotonic)), scratch)
            }
            _ => self.sum.append_null(),
        }
        match point {
            Point::Histogram(p, temporality) => self.histogram.append(p, temporality, scratch),
            _ => self.histogram.append_null(),
        }
        match point {
            Point::Exponential(p, temporality) => self.exponential.append(p, temporality, scratch),
            _ => self.exponential.append_null(),
        }
        match point {
            Point::Summary(p) => self.summary.append(p, scratch),
            _ => self.summary.append_null(),
        }
        append_metadata(&mut self.metadata, &cx.metric.metadata, scratch);
        self.resource.append(cx.resource, scratch);
        self.resource_schema_url
            .append_value(cx.resource_schema_url);
        self.scope.append(cx.scope, scratch);
        self.metric_schema_url.append_value(cx.scope_schema_url);
        self.rows += 1;
    }

    /// Finishes the rows appended so far into one record batch of `schema`; the builder is empty afterwards.
    pub(crate) fn finish(&mut self, schema: &SchemaRef) -> ArrowResult<RecordBatch> {
        self.rows = 0;
        let mut columns: Vec<(&str, &mut dyn Column)> = vec![
            ("name", &mut self.name),
            ("description", &mut self.description),
            ("unit", &mut self.unit),
            ("metric_type", &mut self.metric_type),
            ("gauge", &mut self.gauge),
            ("sum", &mut self.sum),
            ("histogram", &mut self.histogram),
            ("exponential_histogram", &mut self.exponential),
            ("summary", &mut self.summary),
            ("metadata", &mut self.metadata),
            ("resource", &mut self.resource),
            ("resource_schema_url", &mut self.resource_schema_url),
            ("instrumentation_scope", &mut self.scope),
            ("metric_schema_url", &mut self.metric_schema_url),
        ];
        self.v2.add(&mut columns, true);
        finish_batch(schema, columns)
    }
}

fn append_metadata(column: &mut AttrColumn, metadata: &[KeyValue], scratch: &mut String) {
    column.append(metadata, scratch);
}
