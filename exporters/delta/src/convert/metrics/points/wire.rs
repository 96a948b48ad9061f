//! The five point types read straight from wire bytes into their columns: each reader walks one validated
//! data point with [`FieldCursor`], appends its lists (attributes, exemplars, bucket counts and bounds,
//! buckets, quantiles) as it meets them, and its scalar fields through the column's `push`, as the decoded
//! path does. Semantics are prost's: a scalar field given twice keeps its last value (for a `oneof` value
//! too: `as_double` then `as_int` is the int), repeated fields append, packed or not, a `Buckets` given
//! twice merges (the last offset, the counts of both), unknown fields are skipped, and whatever prost
//! refuses is an error.

use otlake_core::wire::{FieldCursor, WireError, WireValue, repeated_fixed64, repeated_varints};

use super::super::super::wire_attrs::{AttrList, fixed64, message, varint};
use super::{
    BucketsColumn, ExpHistogramColumn, ExpHistogramFields, HistogramColumn, HistogramFields,
    NumberColumn, NumberFields, SummaryColumn, SummaryFields,
};

/// Attribute lists reused across the points of one request.
#[derive(Default)]
pub(in crate::convert::metrics) struct PointLists<'a> {
    attributes: AttrList<'a>,
    exemplar: AttrList<'a>,
}

/// A point's `start_time_unix_nano` and `time_unix_nano`.
pub(in crate::convert::metrics) type PointTimes = (u64, u64);

/// A double as its fixed64 field carries it.
fn double(field: WireValue<'_>) -> Result<f64, WireError> {
    Ok(f64::from_bits(fixed64(field)?))
}

/// A `sint32` (zigzag), as prost decodes it from its varint.
fn sint32(field: WireValue<'_>) -> Result<i32, WireError> {
    let value = varint(field)? as u32;
    Ok(((value >> 1) as i32) ^ -((value & 1) as i32))
}

impl NumberColumn {
    /// Appends one `NumberDataPoint`; `sum` as in `append`.
    pub(in crate::convert::metrics) fn append_wire<'a>(
        &mut self,
        point: FieldCursor<'a>,
        sum: Option<(i32, bool)>,
        lists: &mut PointLists<'a>,
        scratch: &mut String,
    ) -> Result<PointTimes, WireError> {
        lists.attributes.clear();
        let mut f = NumberFields::default();
        let mut exemplars = 0;
        let mut fields = point;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                2 => f.start = fixed64(field)?,
                3 => f.time = fixed64(field)?,
                4 => f.value = Some(double(field)?),
                5 => {
                    let exemplar = point.enter(message(field)?)?;
                    self.exemplars
                        .append_wire(exemplar, &mut lists.exemplar, scratch)?;
                    exemplars += 1;
                }
                6 => f.value = Some(fixed64(field)? as i64 as f64),
                7 => {
                    let kv = message(field)?;
                    lists.attributes.read_key_value(point.enter(kv)?, kv)?;
                }
                8 => f.flags = varint(field)? as u32,
                _ => {}
            }
        }
        self.exemplars.close(exemplars);
        self.attributes.append_refs(&lists.attributes, scratch);
        self.push(&f, sum, scratch);
        Ok((f.start, f.time))
    }
}

impl HistogramColumn {
    /// Appends one `HistogramDataPoint`.
    pub(in crate::convert::metrics) fn append_wire<'a>(
        &mut self,
        point: FieldCursor<'a>,
        temporality: i32,
        lists: &mut PointLists<'a>,
        scratch: &mut String,
    ) -> Result<PointTimes, WireError> {
        lists.attributes.clear();
        let mut f = HistogramFields::default();
        let (mut counts, mut bounds, mut exemplars) = (0, 0, 0);
        let mut fields = point;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                2 => f.start = fixed64(field)?,
                3 => f.time = fixed64(field)?,
                4 => f.count = fixed64(field)?,
                5 => f.sum = Some(double(field)?),
                6 => repeated_fixed64(field, |count| {
                    self.bucket_counts.values.append_value(count as i64);
                    counts += 1;
                })?,
                7 => repeated_fixed64(field, |bound| {
                    self.explicit_bounds
                        .values
                        .append_value(f64::from_bits(bound));
                    bounds += 1;
                })?,
                8 => {
                    let exemplar = point.enter(message(field)?)?;
                    self.exemplars
                        .append_wire(exemplar, &mut lists.exemplar, scratch)?;
                    exemplars += 1;
                }
                9 => {
                    let kv = message(field)?;
                    lists.attributes.read_key_value(point.enter(kv)?, kv)?;
                }
                10 => f.flags = varint(field)? as u32,
                11 => f.min = Some(double(field)?),
                12 => f.max = Some(double(field)?),
                _ => {}
            }
        }
        self.bucket_counts.close(counts);
        self.explicit_bounds.close(bounds);
        self.exemplars.close(exemplars);
        self.attributes.append_refs(&lists.attributes, scratch);
        self.push(&f, temporality, scratch);
        Ok((f.start, f.time))
    }
}

/// What a point's `Buckets` fields gave: `Some((offset, counts))` if any was given.
type BucketsRead = Option<(i32, usize)>;

impl BucketsColumn {
    /// Reads one `Buckets` message, appending its counts; returns its offset (the last given, or 0) and how
    /// many counts it had. A second `Buckets` of the same point merges with the first (prost's semantics).
    fn read_wire(
        &mut self,
        buckets: FieldCursor<'_>,
        offset: &mut i32,
    ) -> Result<usize, WireError> {
        let mut counts = 0;
        let mut fields = buckets;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                1 => *offset = sint32(field)?,
                2 => repeated_varints(field, |count| {
                    self.counts.values.append_value(count as i64);
                    counts += 1;
                })?,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// Ends the point's buckets.
    fn end_wire(&mut self, read: BucketsRead) {
        match read {
            Some((offset, counts)) => {
                self.counts.close(counts);
                self.push(offset);
            }
            None => self.append_null(),
        }
    }
}

impl ExpHistogramColumn {
    /// Appends one `ExponentialHistogramDataPoint`.
    pub(in crate::convert::metrics) fn append_wire<'a>(
        &mut self,
        point: FieldCursor<'a>,
        temporality: i32,
        lists: &mut PointLists<'a>,
        scratch: &mut String,
    ) -> Result<PointTimes, WireError> {
        lists.attributes.clear();
        let mut f = ExpHistogramFields::default();
        let mut exemplars = 0;
        let (mut positive, mut negative): (BucketsRead, BucketsRead) = (None, None);
        let mut fields = point;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                1 => {
                    let kv = message(field)?;
                    lists.attributes.read_key_value(point.enter(kv)?, kv)?;
                }
                2 => f.start = fixed64(field)?,
                3 => f.time = fixed64(field)?,
                4 => f.count = fixed64(field)?,
                5 => f.sum = Some(double(field)?),
                6 => f.scale = sint32(field)?,
                7 => f.zero_count = fixed64(field)?,
                8 | 9 => {
                    let (column, read) = if tag == 8 {
                        (&mut self.positive, &mut positive)
                    } else {
                        (&mut self.negative, &mut negative)
                    };
                    let (offset, counts) = read.get_or_insert((0, 0));
                    *counts += column.read_wire(point.enter(message(field)?)?, offset)?;
                }
                10 => f.flags = varint(field)? as u32,
                11 => {
                    let exemplar = point.enter(message(field)?)?;
                    self.exemplars
                        .append_wire(exemplar, &mut lists.exemplar, scratch)?;
                    exemplars += 1;
                }
                12 => f.min = Some(double(field)?),
                13 => f.max = Some(double(field)?),
                14 => f.zero_threshold = double(field)?,
                _ => {}
            }
        }
        self.attributes.append_refs(&lists.attributes, scratch);
        self.positive.end_wire(positive);
        self.negative.end_wire(negative);
        self.exemplars.close(exemplars);
        self.push(&f, temporality, scratch);
        Ok((f.start, f.time))
    }
}

impl SummaryColumn {
    /// Appends one `SummaryDataPoint`.
    pub(in crate::convert::metrics) fn append_wire<'a>(
        &mut self,
        point: FieldCursor<'a>,
        lists: &mut PointLists<'a>,
        scratch: &mut String,
    ) -> Result<PointTimes, WireError> {
        lists.attributes.clear();
        let mut f = SummaryFields::default();
        let mut quantiles = 0;
        let mut fields = point;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                2 => f.start = fixed64(field)?,
                3 => f.time = fixed64(field)?,
                4 => f.count = fixed64(field)?,
                5 => f.sum = double(field)?,
                6 => {
                    let (mut quantile, mut value) = (0.0, 0.0);
                    let mut q = point.enter(message(field)?)?;
                    while let Some((tag, field)) = q.next_field()? {
                        match tag {
                            1 => quantile = double(field)?,
                            2 => value = double(field)?,
                            _ => {}
                        }
                    }
                    self.quantiles.values.push(quantile, value);
                    quantiles += 1;
                }
                7 => {
                    let kv = message(field)?;
                    lists.attributes.read_key_value(point.enter(kv)?, kv)?;
                }
                8 => f.flags = varint(field)? as u32,
                _ => {}
            }
        }
        self.quantiles.close(quantiles);
        self.attributes.append_refs(&lists.attributes, scratch);
        self.push(&f);
        Ok((f.start, f.time))
    }
}
