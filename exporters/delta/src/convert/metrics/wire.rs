//! Metrics straight from wire bytes: walks a validated `ExportMetricsServiceRequest` (`wire_groups`) and
//! appends one row per data point to the same builders as [`MetricRows::append`], borrowing strings and ids
//! from the buffer. No prost struct is built for metrics, their data, points, exemplars, or attributes with
//! scalar values (or arrays of them); `Resource` and `InstrumentationScope` are decoded once per group and a
//! nested attribute value as `wire_attrs` explains.
//!
//! Semantics are prost's, as the differential tests check against the decoded path. A metric's fields may
//! come in any order, so each metric is read in passes: its own fields first ([`read_head`]: name,
//! description, unit and metadata, the last given of each scalar, and which `data` survives), then its data.
//! `data` is a `oneof`: a variant given again merges with the one before it (data points append, the last
//! temporality and monotonicity win), another variant replaces it, so the rows come from the last run of
//! one variant. On error the rows appended so far are not rolled back: see
//! [`crate::convert::Rows::append_wire`].

use otlake_core::wire::{FieldCursor, Part, WireError};

use super::super::repeated::{self, Repeated};
use super::super::wire_attrs::{AttrList, message, string, varint};
use super::super::wire_groups::{Group, WireItems, walk_request};
use super::points::wire::{PointLists, PointTimes};
use super::{Context, Kind, Metadata, MetricRows};

/// A metric's own fields and where its surviving data starts.
struct Head<'a> {
    name: &'a str,
    description: &'a str,
    unit: &'a str,
    /// Bytes of the `metadata` key-values (what every point repeats of them).
    metadata_bytes: usize,
    /// The surviving `data` variant's field number and the metric's fields from its first occurrence in
    /// the last run of that variant.
    data: Option<(u32, FieldCursor<'a>)>,
}

/// Reads the fields of `metric` other than its data points; its metadata into `metadata` when given.
fn read_head<'a>(
    metric: FieldCursor<'a>,
    mut metadata: Option<&mut AttrList<'a>>,
) -> Result<Head<'a>, WireError> {
    let mut head = Head {
        name: "",
        description: "",
        unit: "",
        metadata_bytes: 0,
        data: None,
    };
    // The number of fields before the surviving run, if a run was replaced.
    let (mut index, mut replaced) = (0usize, None);
    let mut fields = metric;
    loop {
        let at = fields;
        let Some((tag, field)) = fields.next_field()? else {
            break;
        };
        index += 1;
        match tag {
            1 => head.name = string(field)?,
            2 => head.description = string(field)?,
            3 => head.unit = string(field)?,
            5 | 7 | 9 | 10 | 11 => {
                message(field)?;
                if head.data.is_none_or(|(variant, _)| variant != tag) {
                    if head.data.is_some() {
                        replaced = Some(index - 1);
                    }
                    head.data = Some((tag, at));
                }
            }
            12 => {
                let kv = message(field)?;
                head.metadata_bytes += kv.len();
                if let Some(list) = metadata.as_deref_mut() {
                    list.read_key_value(metric.enter(kv)?, kv)?;
                }
            }
            _ => {}
        }
    }
    if let Some(before) = replaced {
        // prost decodes every `data` field, also those a later variant replaced: what it refuses in one of
        // those is refused here too.
        let mut fields = metric;
        for _ in 0..before {
            if let Some((tag, field)) = fields.next_field()?
                && let Some(part) = data_part(tag)
            {
                metric.enter(message(field)?)?.validate_as(part)?;
            }
        }
    }
    Ok(head)
}

/// The part a `data` field number holds.
fn data_part(tag: u32) -> Option<Part> {
    Some(match tag {
        5 => Part::Gauge,
        7 => Part::Sum,
        9 => Part::Histogram,
        10 => Part::ExponentialHistogram,
        11 => Part::Summary,
        _ => return None,
    })
}

/// Hands `each` the fields of every data message of the surviving run (see [`Head::data`]).
fn each_data<'a>(
    metric: FieldCursor<'a>,
    (variant, run): (u32, FieldCursor<'a>),
    mut each: impl FnMut(FieldCursor<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut fields = run;
    while let Some((tag, field)) = fields.next_field()? {
        if tag == variant {
            each(metric.enter(message(field)?)?)?;
        }
    }
    Ok(())
}

/// The point type of a `data` field number.
fn kind(variant: u32) -> Kind {
    match variant {
        5 => Kind::Gauge,
        7 => Kind::Sum,
        9 => Kind::Histogram,
        10 => Kind::Exponential,
        _ => Kind::Summary,
    }
}

/// The data points of one metric and the bytes of its own fields that each of its rows repeats (name,
/// description, unit, metadata), for [`repeated::of_wire_items`].
pub(in crate::convert) fn points_and_repeated_bytes(
    metric: &[u8],
) -> Result<(usize, usize), WireError> {
    // Within a request: a metric is three levels down.
    let metric = FieldCursor::new(metric);
    let head = read_head(metric, None)?;
    let mut points = 0;
    if let Some(data) = head.data {
        each_data(metric, data, |mut fields| {
            while let Some((tag, _)) = fields.next_field()? {
                points += usize::from(tag == 1);
            }
            Ok(())
        })?;
    }
    let bytes = head.name.len() + head.description.len() + head.unit.len() + head.metadata_bytes;
    Ok((points, bytes))
}

/// What a metrics request's rows repeat from their groups and metrics (see [`repeated`]).
pub(in crate::convert) fn repeated_wire(request: &[u8]) -> Result<Repeated, WireError> {
    repeated::of_wire_items(request, points_and_repeated_bytes)
}

/// The metrics of one request going into a [`MetricRows`].
struct MetricItems<'r, 'a> {
    rows: &'r mut MetricRows,
    metadata: AttrList<'a>,
    points: PointLists<'a>,
}

impl<'a> WireItems<'a> for MetricItems<'_, 'a> {
    fn append_item(&mut self, metric: FieldCursor<'a>, group: &Group<'_>) -> Result<(), WireError> {
        self.metadata.clear();
        let head = read_head(metric, Some(&mut self.metadata))?;
        let Some(data) = head.data else {
            return Ok(());
        };
        let kind = kind(data.0);
        // The last temporality and monotonicity of the run (they may follow its points).
        let (mut temporality, mut monotonic) = (0i32, false);
        if matches!(kind, Kind::Sum | Kind::Histogram | Kind::Exponential) {
            each_data(metric, data, |mut fields| {
                while let Some((tag, field)) = fields.next_field()? {
                    match tag {
                        2 => temporality = varint(field)? as i32,
                        3 if kind == Kind::Sum => monotonic = varint(field)? != 0,
                        _ => {}
                    }
                }
                Ok(())
            })?;
        }
        let cx = Context {
            name: head.name,
            description: head.description,
            unit: head.unit,
            metadata: Metadata::Wire(&self.metadata),
            resource: group.resource,
            resource_schema_url: group.resource_schema_url,
            scope: group.scope,
            scope_schema_url: group.scope_schema_url,
        };
        let (rows, points) = (&mut *self.rows, &mut self.points);
        each_data(metric, data, |data_fields| {
            let mut fields = data_fields;
            while let Some((tag, field)) = fields.next_field()? {
                if tag != 1 {
                    continue;
                }
                let point = data_fields.enter(message(field)?)?;
                let (start, time) =
                    rows.append_point_wire(kind, point, (temporality, monotonic), points)?;
                rows.end_row(&cx, kind, start, time);
            }
            Ok(())
        })
    }

    fn end_resource(&mut self) {
        self.rows.resource.forget();
    }

    fn end_scope(&mut self) {
        self.rows.scope.forget();
    }
}

impl MetricRows {
    /// Appends one row per data point of a wire request; returns how many.
    pub(crate) fn append_wire(&mut self, request: &[u8]) -> Result<usize, WireError> {
        let before = self.rows;
        let mut items = MetricItems {
            rows: self,
            metadata: AttrList::default(),
            points: PointLists::default(),
        };
        walk_request(request, &mut items)?;
        Ok(self.rows - before)
    }

    /// Appends one data point of `kind` to its type struct; the caller ends the row.
    fn append_point_wire<'a>(
        &mut self,
        kind: Kind,
        point: FieldCursor<'a>,
        (temporality, monotonic): (i32, bool),
        lists: &mut PointLists<'a>,
    ) -> Result<PointTimes, WireError> {
        let scratch = &mut self.scratch;
        match kind {
            Kind::Gauge => self.gauge.append_wire(point, None, lists, scratch),
            Kind::Sum => {
                self.sum
                    .append_wire(point, Some((temporality, monotonic)), lists, scratch)
            }
            Kind::Histogram => self
                .histogram
                .append_wire(point, temporality, lists, scratch),
            Kind::Exponential => self
                .exponential
                .append_wire(point, temporality, lists, scratch),
            Kind::Summary => self.summary.append_wire(point, lists, scratch),
        }
    }
}
