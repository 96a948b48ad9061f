//! The five type structs of the metrics table, one column builder each: `gauge` and `sum` ([`NumberColumn`]),
//! `histogram`, `exponential_histogram` (with its positive and negative buckets) and `summary` (with its
//! quantiles). Each appends one data point, or a null for a row of another type; v1 repeats the point times
//! inside the struct, v2 has them as top-level columns.
//!
//! A point's scalar fields go in through one `push` per column, whether they come from a decoded point
//! (`append` here) or from wire bytes ([`wire`]); its lists (attributes, exemplars, buckets, quantiles) are
//! appended to the child columns by each reader and closed with their length.

pub(super) mod wire;

use deltalake::arrow::array::NullBufferBuilder;
use deltalake::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
};
use deltalake::arrow::datatypes::DataType;
use otlake_core::proto::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, number_data_point,
};

use super::super::column::{ArrowResult, Column, child, finish_struct, finish_struct_named};
use super::super::columns::{AttrColumn, Encoding, ExemplarColumn, ExemplarsColumn, ListColumn};
use super::super::presized::Presized;
use crate::encode;

fn opt_f64(builder: &mut Float64Builder, value: Option<f64>) {
    builder.append_option(value);
}

/// The scalar fields of a `NumberDataPoint` (the value as DOUBLE).
#[derive(Default)]
struct NumberFields {
    start: u64,
    time: u64,
    value: Option<f64>,
    flags: u32,
}

/// `gauge` and `sum`: number data points (`sum` adds temporality and monotonicity).
pub(super) struct NumberColumn {
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
    pub(super) fn new(with_sum_fields: bool, encoding: Encoding) -> Self {
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

    /// `sum`: the `Sum`'s temporality and monotonicity (for the `sum` column).
    pub(super) fn append(
        &mut self,
        point: &NumberDataPoint,
        sum: Option<(i32, bool)>,
        scratch: &mut String,
    ) {
        self.exemplars.append(&point.exemplars, scratch);
        self.attributes.append(&point.attributes, scratch);
        let fields = NumberFields {
            start: point.start_time_unix_nano,
            time: point.time_unix_nano,
            value: point.value.map(|v| match v {
                number_data_point::Value::AsDouble(d) => d,
                number_data_point::Value::AsInt(i) => i as f64,
            }),
            flags: point.flags,
        };
        self.push(&fields, sum, scratch);
    }

    /// The scalar fields of a point whose attributes and exemplars are appended.
    fn push(&mut self, f: &NumberFields, sum: Option<(i32, bool)>, scratch: &mut String) {
        if self.times {
            self.start.append_value(f.start as i64);
            self.time.append_value(f.time as i64);
        }
        self.value.append_option(f.value);
        self.flags.append_value(f.flags as i32);
        if self.with_sum_fields {
            let (temporality, monotonic) = sum.unwrap_or((0, false));
            self.temporality
                .append_value(encode::aggregation_temporality(temporality, scratch));
            self.monotonic.append_value(monotonic);
        }
        self.nulls.append_non_null();
    }

    pub(super) fn append_null(&mut self) {
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

/// The scalar fields of a `HistogramDataPoint`.
#[derive(Default)]
struct HistogramFields {
    start: u64,
    time: u64,
    count: u64,
    sum: Option<f64>,
    flags: u32,
    min: Option<f64>,
    max: Option<f64>,
}

pub(super) struct HistogramColumn {
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
    pub(super) fn new(encoding: Encoding) -> Self {
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

    pub(super) fn append(
        &mut self,
        p: &HistogramDataPoint,
        temporality: i32,
        scratch: &mut String,
    ) {
        self.bucket_counts.append_u64s(&p.bucket_counts);
        self.explicit_bounds.append_f64s(&p.explicit_bounds);
        self.exemplars.append(&p.exemplars, scratch);
        self.attributes.append(&p.attributes, scratch);
        let fields = HistogramFields {
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            flags: p.flags,
            min: p.min,
            max: p.max,
        };
        self.push(&fields, temporality, scratch);
    }

    /// The scalar fields of a point whose lists are appended.
    fn push(&mut self, f: &HistogramFields, temporality: i32, scratch: &mut String) {
        if self.times {
            self.start.append_value(f.start as i64);
            self.time.append_value(f.time as i64);
        }
        self.count.append_value(f.count as i64);
        opt_f64(&mut self.sum, f.sum);
        self.flags.append_value(f.flags as i32);
        opt_f64(&mut self.min, f.min);
        opt_f64(&mut self.max, f.max);
        self.temporality
            .append_value(encode::aggregation_temporality(temporality, scratch));
        self.nulls.append_non_null();
    }

    pub(super) fn append_null(&mut self) {
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
                self.counts.append_u64s(&b.bucket_counts);
                self.push(b.offset);
            }
            None => self.append_null(),
        }
    }

    /// Ends a present `Buckets` whose counts are appended (and its list closed).
    fn push(&mut self, offset: i32) {
        self.offset.append_value(offset);
        self.nulls.append_non_null();
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

/// The scalar fields of an `ExponentialHistogramDataPoint`.
#[derive(Default)]
struct ExpHistogramFields {
    start: u64,
    time: u64,
    count: u64,
    sum: Option<f64>,
    scale: i32,
    zero_count: u64,
    flags: u32,
    min: Option<f64>,
    max: Option<f64>,
    zero_threshold: f64,
}

pub(super) struct ExpHistogramColumn {
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
    pub(super) fn new(encoding: Encoding) -> Self {
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

    pub(super) fn append(
        &mut self,
        p: &ExponentialHistogramDataPoint,
        temporality: i32,
        scratch: &mut String,
    ) {
        self.attributes.append(&p.attributes, scratch);
        self.positive.append(p.positive.as_ref());
        self.negative.append(p.negative.as_ref());
        self.exemplars.append(&p.exemplars, scratch);
        let fields = ExpHistogramFields {
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            scale: p.scale,
            zero_count: p.zero_count,
            flags: p.flags,
            min: p.min,
            max: p.max,
            zero_threshold: p.zero_threshold,
        };
        self.push(&fields, temporality, scratch);
    }

    /// The scalar fields of a point whose attributes, buckets and exemplars are appended.
    fn push(&mut self, f: &ExpHistogramFields, temporality: i32, scratch: &mut String) {
        if self.times {
            self.start.append_value(f.start as i64);
            self.time.append_value(f.time as i64);
        }
        self.count.append_value(f.count as i64);
        opt_f64(&mut self.sum, f.sum);
        self.scale.append_value(f.scale);
        self.zero_count.append_value(f.zero_count as i64);
        self.flags.append_value(f.flags as i32);
        opt_f64(&mut self.min, f.min);
        opt_f64(&mut self.max, f.max);
        self.zero_threshold.append_value(f.zero_threshold);
        self.temporality
            .append_value(encode::aggregation_temporality(temporality, scratch));
        self.nulls.append_non_null();
    }

    pub(super) fn append_null(&mut self) {
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

impl QuantileColumn {
    fn push(&mut self, quantile: f64, value: f64) {
        self.quantile.append_value(quantile);
        self.value.append_value(value);
    }
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

/// The scalar fields of a `SummaryDataPoint`.
#[derive(Default)]
struct SummaryFields {
    start: u64,
    time: u64,
    count: u64,
    sum: f64,
    flags: u32,
}

pub(super) struct SummaryColumn {
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
    pub(super) fn new(encoding: Encoding) -> Self {
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

    pub(super) fn append(&mut self, p: &SummaryDataPoint, scratch: &mut String) {
        for q in &p.quantile_values {
            self.quantiles.values.push(q.quantile, q.value);
        }
        self.quantiles.close(p.quantile_values.len());
        self.attributes.append(&p.attributes, scratch);
        let fields = SummaryFields {
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            count: p.count,
            sum: p.sum,
            flags: p.flags,
        };
        self.push(&fields);
    }

    /// The scalar fields of a point whose quantiles and attributes are appended.
    fn push(&mut self, f: &SummaryFields) {
        if self.times {
            self.start.append_value(f.start as i64);
            self.time.append_value(f.time as i64);
        }
        self.count.append_value(f.count as i64);
        self.sum.append_value(f.sum);
        self.flags.append_value(f.flags as i32);
        self.nulls.append_non_null();
    }

    pub(super) fn append_null(&mut self) {
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
