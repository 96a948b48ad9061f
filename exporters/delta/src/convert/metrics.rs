//! Metrics → rows of the metrics table (v1 and v2): one row per data point. Exactly one of the five type
//! structs (`gauge`, `sum`, `histogram`, `exponential_histogram`, `summary`) is non-null on a row; a metric
//! without data contributes no row. Integer values are written as DOUBLE, as the schema has it. From decoded
//! requests here, from wire bytes in [`wire`]; both end every row in [`MetricRows::end_row`].

mod points;
mod wire;

use deltalake::arrow::array::StringBuilder;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::common::v1::{InstrumentationScope, KeyValue};
use otlake_core::proto::metrics::v1::metric::Data;
use otlake_core::proto::resource::v1::Resource;

use super::column::{ArrowResult, Column, finish_batch};
use super::columns::{AttrColumn, Encoding, ResourceColumn, ScopeColumn, V2Columns};
use super::presized::Presized;
use super::wire_attrs::AttrList;
use crate::encode::metric_type;
use points::{ExpHistogramColumn, HistogramColumn, NumberColumn, SummaryColumn};
pub(super) use wire::repeated_wire;

/// The type of a row's data point: which of the five type structs it fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gauge,
    Sum,
    Histogram,
    Exponential,
    Summary,
}

/// A metric's `metadata`, decoded or read from the wire.
enum Metadata<'m, 'a> {
    Decoded(&'m [KeyValue]),
    Wire(&'m AttrList<'a>),
}

/// What every row of one metric repeats.
struct Context<'m, 'a> {
    name: &'m str,
    description: &'m str,
    unit: &'m str,
    metadata: Metadata<'m, 'a>,
    resource: Option<&'m Resource>,
    resource_schema_url: &'m str,
    scope: Option<&'m InstrumentationScope>,
    scope_schema_url: &'m str,
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
                        name: &metric.name,
                        description: &metric.description,
                        unit: &metric.unit,
                        metadata: Metadata::Decoded(&metric.metadata),
                        resource: rm.resource.as_ref(),
                        resource_schema_url: &rm.schema_url,
                        scope: sm.scope.as_ref(),
                        scope_schema_url: &sm.schema_url,
                    };
                    match &metric.data {
                        Some(Data::Gauge(g)) => {
                            for p in &g.data_points {
                                self.gauge.append(p, None, &mut self.scratch);
                                self.end_row(
                                    &cx,
                                    Kind::Gauge,
                                    p.start_time_unix_nano,
                                    p.time_unix_nano,
                                );
                            }
                        }
                        Some(Data::Sum(s)) => {
                            for p in &s.data_points {
                                let sum = Some((s.aggregation_temporality, s.is_monotonic));
                                self.sum.append(p, sum, &mut self.scratch);
                                self.end_row(
                                    &cx,
                                    Kind::Sum,
                                    p.start_time_unix_nano,
                                    p.time_unix_nano,
                                );
                            }
                        }
                        Some(Data::Histogram(h)) => {
                            for p in &h.data_points {
                                self.histogram.append(
                                    p,
                                    h.aggregation_temporality,
                                    &mut self.scratch,
                                );
                                self.end_row(
                                    &cx,
                                    Kind::Histogram,
                                    p.start_time_unix_nano,
                                    p.time_unix_nano,
                                );
                            }
                        }
                        Some(Data::ExponentialHistogram(h)) => {
                            for p in &h.data_points {
                                self.exponential.append(
                                    p,
                                    h.aggregation_temporality,
                                    &mut self.scratch,
                                );
                                self.end_row(
                                    &cx,
                                    Kind::Exponential,
                                    p.start_time_unix_nano,
                                    p.time_unix_nano,
                                );
                            }
                        }
                        Some(Data::Summary(s)) => {
                            for p in &s.data_points {
                                self.summary.append(p, &mut self.scratch);
                                self.end_row(
                                    &cx,
                                    Kind::Summary,
                                    p.start_time_unix_nano,
                                    p.time_unix_nano,
                                );
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

    /// Ends the row whose data point was just appended to the type struct of `kind`: a null in the four
    /// other type structs, and the columns the row takes from its metric and groups.
    fn end_row(&mut self, cx: &Context<'_, '_>, kind: Kind, start: u64, time: u64) {
        let scratch = &mut self.scratch;
        self.name.append_value(cx.name);
        self.description.append_value(cx.description);
        self.unit.append_value(cx.unit);
        self.metric_type.append_value(match kind {
            Kind::Gauge => metric_type::GAUGE,
            Kind::Sum => metric_type::SUM,
            Kind::Histogram => metric_type::HISTOGRAM,
            Kind::Exponential => metric_type::EXPONENTIAL_HISTOGRAM,
            Kind::Summary => metric_type::SUMMARY,
        });
        self.v2.append(time, cx.resource);
        self.v2.append_point_times(start, time);
        if kind != Kind::Gauge {
            self.gauge.append_null();
        }
        if kind != Kind::Sum {
            self.sum.append_null();
        }
        if kind != Kind::Histogram {
            self.histogram.append_null();
        }
        if kind != Kind::Exponential {
            self.exponential.append_null();
        }
        if kind != Kind::Summary {
            self.summary.append_null();
        }
        match cx.metadata {
            Metadata::Decoded(metadata) => self.metadata.append(metadata, scratch),
            Metadata::Wire(list) => self.metadata.append_refs(list, scratch),
        }
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
