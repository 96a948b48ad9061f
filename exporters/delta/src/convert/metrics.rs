//! Metrics → rows of the metrics table (v1): one row per data point. Exactly one of the five type structs
//! (`gauge`, `sum`, `histogram`, `exponential_histogram`, `summary`) is non-null on a row; a metric without
//! data contributes no row. Integer values are written as DOUBLE, as the schema has it.

use deltalake::arrow::array::NullBufferBuilder;
use deltalake::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
};
use deltalake::arrow::datatypes::{DataType, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::common::v1::{InstrumentationScope, KeyValue};
use otlake_core::proto::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
};
use otlake_core::proto::resource::v1::Resource;

use super::column::{ArrowResult, Column, child, finish_batch, finish_struct, finish_struct_named};
use super::columns::{
    AttrColumn, Encoding, ExemplarColumn, ExemplarsColumn, ListColumn, ResourceColumn, ScopeColumn,
    V2Columns,
};
use super::presized::Presized;
use crate::encode::{self, metric_type};

fn opt_f64(builder: &mut Float64Builder, value: Option<f64>) {
    builder.append_option(value);
}

/// `gauge` and `sum`: number data points (`sum` adds temporality and monotonicity).
struct NumberColumn {
    with_sum_fields: bool,
    /// v1 repeats the point times inside the struct; v2 has them as top-level columns.
    times: bool,
    start: Presized<Int64Builder>,
    time: Presized<Int64Builder>,
    value: Presized<Float64Builder>,
    exemplars: ExemplarsColumn,
    attributes: AttrColumn,
    flags: Presized<Int32Builder>,
    temporality: Presized<StringBuilder>,
    monotonic: Presized<BooleanBuilder>,
    nulls: NullBufferBuilder,
}

impl NumberColumn {
    fn new(with_sum_fields: bool, encoding: Encoding) -> Self {
        NumberColumn {
            with_sum_fields,
            times: encoding == Encoding::Text,
            start: Presized::default(),
            time: Presized::default(),
            value: Presized::default(),
            exemplars: ListColumn::new(ExemplarColumn::new(encoding)),
            attributes: AttrColumn::new(encoding),
            flags: Presized::default(),
            temporality: Presized::default(),
            monotonic: Presized::default(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn append(
        &mut self,
        point: &NumberDataPoint,
        temporality_monotonic: Option<(i32, bool)>,
        scratch: &mut String,
    ) {
        if self.times {
            self.start.append_value(point.start_time_unix_nano as i64);
            self.time.append_value(point.time_unix_nano as i64);
        }
        self.value.append_option(point.value.map(|v| match v {
            number_data_point::Value::AsDouble(d) => d,
            number_data_point::Value::AsInt(i) => i as f64,
        }));
        self.exemplars.append(&point.exemplars, scratch);
        self.attributes.append(&point.attributes, scratch);
        self.flags.append_value(point.flags as i32);
        if self.with_sum_fields {
            let (temporality, monotonic) = temporality_monotonic.unwrap_or((0, false));
            self.temporality
                .append_value(encode::aggregation_temporality(temporality, scratch));
            self.monotonic.append_value(monotonic);
        }
        self.nulls.append_non_null();
    }

    fn append_null(&mut self) {
        if self.times {
            self.start.append_null();
            self.time.append_null();
        }
        self.value.append_null();
        self.exemplars.append_null();
        self.attributes.append_null();
        self.flags.append_null();
        if self.with_sum_fields {
            self.temporality.append_null();
            self.monotonic.append_null();
        }
        self.nulls.append_null();
    }
}

impl Column for NumberColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        let mut columns: Vec<(&str, &mut dyn Column)> = Vec::with_capacity(8);
        if self.times {
            columns.push(("start_time_unix_nano", &mut self.start));
            columns.push(("time_unix_nano", &mut self.time));
        }
        columns.push(("value", &mut self.value));
        columns.push(("exemplars", &mut self.exemplars));
        columns.push(("attributes", &mut self.attributes));
        columns.push(("flags", &mut self.flags));
        if self.with_sum_fields {
            columns.push(("aggregation_temporality", &mut self.temporality));
            columns.push(("is_monotonic", &mut self.monotonic));
        }
        finish_struct_named(data_type, nulls, columns)
    }
}

struct HistogramColumn {
    /// v1 repeats the point times inside the struct; v2 has them as top-level columns.
    times: bool,
    start: Presized<Int64Builder>,
    time: Presized<Int64Builder>,
    count: Presized<Int64Builder>,
    sum: Presized<Float64Builder>,
    bucket_counts: ListColumn<Presized<Int64Builder>>,
    explicit_bounds: ListColumn<Presized<Float64Builder>>,
    exemplars: ExemplarsColumn,
    attributes: AttrColumn,
    flags: Presized<Int32Builder>,
    min: Presized<Float64Builder>,
    max: Presized<Float64Builder>,
    temporality: Presized<StringBuilder>,
    nulls: NullBufferBuilder,
}

impl HistogramColumn {
    fn new(encoding: Encoding) -> Self {
        HistogramColumn {
            times: encoding == Encoding::Text,
            start: Presized::default(),
            time: Presized::default(),
            count: Presized::default(),
            sum: Presized::default(),
            bucket_counts: ListColumn::new(Presized::default()),
            explicit_bounds: ListColumn::new(Presized::default()),
            exemplars: ListColumn::new(ExemplarColumn::new(encoding)),
            attributes: AttrColumn::new(encoding),
            flags: Presized::default(),
            min: Presized::default(),
            max: Presized::default(),
            temporality: Presized::default(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn append(&mut self, p: &HistogramDataPoint, temporality: i32, scratch: &mut String) {
        if self.times {
            self.start.append_value(p.start_time_unix_nano as i64);
            self.time.append_value(p.time_unix_nano as i64);
        }
        self.count.append_value(p.count as i64);
        opt_f64(&mut self.sum, p.sum);
        self.bucket_counts.append_u64s(&p.bucket_counts);
        self.explicit_bounds.append_f64s(&p.explicit_bounds);
        self.exemplars.append(&p.exemplars, scratch);
        self.attributes.append(&p.attributes, scratch);
        self.flags.append_value(p.flags as i32);
        opt_f64(&mut self.min, p.min);
        opt_f64(&mut self.max, p.max);
        self.temporality
            .append_value(encode::aggregation_temporality(temporality, scratch));
        self.nulls.append_non_null();
    }

    fn append_null(&mut self) {
        if self.times {
            self.start.append_null();
            self.time.append_null();
        }
        self.count.append_null();
        self.sum.append_null();
        self.bucket_counts.append_null();
        self.explicit_bounds.append_null();
        self.exemplars.append_null();
        self.attributes.append_null();
        self.flags.append_null();
        self.min.append_null();
        self.max.append_null();
        self.temporality.append_null();
        self.nulls.append_null();
    }
}

impl Column for HistogramColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        let mut columns: Vec<(&str, &mut dyn Column)> = Vec::with_capacity(12);
        if self.times {
            columns.push(("start_time_unix_nano", &mut self.start));
            columns.push(("time_unix_nano", &mut self.time));
        }
        columns.extend([
            ("count", &mut self.count as &mut dyn Column),
            ("sum", &mut self.sum),
            ("bucket_counts", &mut self.bucket_counts),
            ("explicit_bounds", &mut self.explicit_bounds),
            ("exemplars", &mut self.exemplars),
            ("attributes", &mut self.attributes),
            ("flags", &mut self.flags),
            ("min", &mut self.min),
            ("max", &mut self.max),
            ("aggregation_temporality", &mut self.temporality),
        ]);
        finish_struct_named(data_type, nulls, columns)
    }
}

/// `STRUCT<offset: INT, bucket_counts: ARRAY<BIGINT>>`.
struct BucketsColumn {
    offset: Presized<Int32Builder>,
    counts: ListColumn<Presized<Int64Builder>>,
    nulls: NullBufferBuilder,
}

impl BucketsColumn {
    fn new() -> Self {
        BucketsColumn {
            offset: Presized::default(),
            counts: ListColumn::new(Presized::default()),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn append(&mut self, buckets: Option<&Buckets>) {
        match buckets {
            Some(b) => {
                self.offset.append_value(b.offset);
                self.counts.append_u64s(&b.bucket_counts);
                self.nulls.append_non_null();
            }
            None => self.append_null(),
        }
    }

    fn append_null(&mut self) {
        self.offset.append_null();
        self.counts.append_null();
        self.nulls.append_null();
    }
}

impl Column for BucketsColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        finish_struct(data_type, nulls, |f| {
            Ok(vec![
                self.offset.finish_as(child(f, 0)?)?,
                self.counts.finish_as(child(f, 1)?)?,
            ])
        })
    }
}

struct ExpHistogramColumn {
    /// v1 repeats the point times inside the struct; v2 has them as top-level columns.
    times: bool,
    attributes: AttrColumn,
    start: Presized<Int64Builder>,
    time: Presized<Int64Builder>,
    count: Presized<Int64Builder>,
    sum: Presized<Float64Builder>,
    scale: Presized<Int32Builder>,
    zero_count: Presized<Int64Builder>,
    positive: BucketsColumn,
    negative: BucketsColumn,
    flags: Presized<Int32Builder>,
    exemplars: ExemplarsColumn,
    min: Presized<Float64Builder>,
    max: Presized<Float64Builder>,
    zero_threshold: Presized<Float64Builder>,
    temporality: Presized<StringBuilder>,
    nulls: NullBufferBuilder,
}

impl ExpHistogramColumn {
    fn new(encoding: Encoding) -> Self {
        ExpHistogramColumn {
            times: encoding == Encoding::Text,
            attributes: AttrColumn::new(encoding),
            start: Presized::default(),
            time: Presized::default(),
            count: Presized::default(),
            sum: Presized::default(),
            scale: Presized::default(),
            zero_count: Presized::default(),
            positive: BucketsColumn::new(),
            negative: BucketsColumn::new(),
            flags: Presized::default(),
            exemplars: ListColumn::new(ExemplarColumn::new(encoding)),
            min: Presized::default(),
            max: Presized::default(),
            zero_threshold: Presized::default(),
            temporality: Presized::default(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn append(
        &mut self,
        p: &ExponentialHistogramDataPoint,
        temporality: i32,
        scratch: &mut String,
    ) {
        self.attributes.append(&p.attributes, scratch);
        if self.times {
            self.start.append_value(p.start_time_unix_nano as i64);
            self.time.append_value(p.time_unix_nano as i64);
        }
        self.count.append_value(p.count as i64);
        opt_f64(&mut self.sum, p.sum);
        self.scale.append_value(p.scale);
        self.zero_count.append_value(p.zero_count as i64);
        self.positive.append(p.positive.as_ref());
        self.negative.append(p.negative.as_ref());
        self.flags.append_value(p.flags as i32);
        self.exemplars.append(&p.exemplars, scratch);
        opt_f64(&mut self.min, p.min);
        opt_f64(&mut self.max, p.max);
        self.zero_threshold.append_value(p.zero_threshold);
        self.temporality
            .append_value(encode::aggregation_temporality(temporality, scratch));
        self.nulls.append_non_null();
    }

    fn append_null(&mut self) {
        self.attributes.append_null();
        if self.times {
            self.start.append_null();
            self.time.append_null();
        }
        self.count.append_null();
        self.sum.append_null();
        self.scale.append_null();
        self.zero_count.append_null();
        self.positive.append_null();
        self.negative.append_null();
        self.flags.append_null();
        self.exemplars.append_null();
        self.min.append_null();
        self.max.append_null();
        self.zero_threshold.append_null();
        self.temporality.append_null();
        self.nulls.append_null();
    }
}

impl Column for ExpHistogramColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        let mut columns: Vec<(&str, &mut dyn Column)> = Vec::with_capacity(15);
        columns.push(("attributes", &mut self.attributes));
        if self.times {
            columns.push(("start_time_unix_nano", &mut self.start));
            columns.push(("time_unix_nano", &mut self.time));
        }
        columns.extend([
            ("count", &mut self.count as &mut dyn Column),
            ("sum", &mut self.sum),
            ("scale", &mut self.scale),
            ("zero_count", &mut self.zero_count),
            ("positive_bucket", &mut self.positive),
            ("negative_bucket", &mut self.negative),
            ("flags", &mut self.flags),
            ("exemplars", &mut self.exemplars),
            ("min", &mut self.min),
            ("max", &mut self.max),
            ("zero_threshold", &mut self.zero_threshold),
            ("aggregation_temporality", &mut self.temporality),
        ]);
        finish_struct_named(data_type, nulls, columns)
    }
}

/// `STRUCT<quantile: DOUBLE, value: DOUBLE>`.
struct QuantileColumn {
    quantile: Presized<Float64Builder>,
    value: Presized<Float64Builder>,
}

impl Column for QuantileColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        finish_struct(data_type, None, |f| {
            Ok(vec![
                self.quantile.finish_as(child(f, 0)?)?,
                self.value.finish_as(child(f, 1)?)?,
            ])
        })
    }
}

struct SummaryColumn {
    /// v1 repeats the point times inside the struct; v2 has them as top-level columns.
    times: bool,
    start: Presized<Int64Builder>,
    time: Presized<Int64Builder>,
    count: Presized<Int64Builder>,
    sum: Presized<Float64Builder>,
    quantiles: ListColumn<QuantileColumn>,
    attributes: AttrColumn,
    flags: Presized<Int32Builder>,
    nulls: NullBufferBuilder,
}

impl SummaryColumn {
    fn new(encoding: Encoding) -> Self {
        SummaryColumn {
            times: encoding == Encoding::Text,
            start: Presized::default(),
            time: Presized::default(),
            count: Presized::default(),
            sum: Presized::default(),
            quantiles: ListColumn::new(QuantileColumn {
                quantile: Presized::default(),
                value: Presized::default(),
            }),
            attributes: AttrColumn::new(encoding),
            flags: Presized::default(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn append(&mut self, p: &SummaryDataPoint, scratch: &mut String) {
        if self.times {
            self.start.append_value(p.start_time_unix_nano as i64);
            self.time.append_value(p.time_unix_nano as i64);
        }
        self.count.append_value(p.count as i64);
        self.sum.append_value(p.sum);
        for q in &p.quantile_values {
            self.quantiles.values.quantile.append_value(q.quantile);
            self.quantiles.values.value.append_value(q.value);
        }
        self.quantiles.close(p.quantile_values.len());
        self.attributes.append(&p.attributes, scratch);
        self.flags.append_value(p.flags as i32);
        self.nulls.append_non_null();
    }

    fn append_null(&mut self) {
        if self.times {
            self.start.append_null();
            self.time.append_null();
        }
        self.count.append_null();
        self.sum.append_null();
        self.quantiles.append_null();
        self.attributes.append_null();
        self.flags.append_null();
        self.nulls.append_null();
    }
}

impl Column for SummaryColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        let mut columns: Vec<(&str, &mut dyn Column)> = Vec::with_capacity(7);
        if self.times {
            columns.push(("start_time_unix_nano", &mut self.start));
            columns.push(("time_unix_nano", &mut self.time));
        }
        columns.extend([
            ("count", &mut self.count as &mut dyn Column),
            ("sum", &mut self.sum),
            ("quantile_values", &mut self.quantiles),
            ("attributes", &mut self.attributes),
            ("flags", &mut self.flags),
        ]);
        finish_struct_named(data_type, nulls, columns)
    }
}

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
