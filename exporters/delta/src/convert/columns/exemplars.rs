//! The exemplars of a metric data point: [`ExemplarsColumn`], a list of [`ExemplarColumn`] structs
//! (`STRUCT<time_unix_nano, value, span_id, trace_id, filtered_attributes>`), ids as hex, from decoded
//! exemplars or read from wire bytes (with prost's semantics: the last value wins, unknown fields skipped).

use deltalake::arrow::array::{ArrayRef, Float64Builder, Int64Builder, StringBuilder};
use deltalake::arrow::datatypes::DataType;
use otlake_core::proto::metrics::v1::{Exemplar, exemplar};
use otlake_core::wire::{FieldCursor, WireError};

use super::super::column::{ArrowResult, Column, child, finish_struct};
use super::super::presized::Presized;
use super::super::wire_attrs::{AttrList, bytes, fixed64, message};
use super::attrs::{AttrColumn, Encoding};
use super::ids::append_id;
use super::list::ListColumn;

/// One exemplar struct: `STRUCT<time_unix_nano, value, span_id, trace_id, filtered_attributes>`.
pub(crate) struct ExemplarColumn {
    time: Presized<Int64Builder>,
    value: Presized<Float64Builder>,
    span_id: Presized<StringBuilder>,
    trace_id: Presized<StringBuilder>,
    attributes: AttrColumn,
}

impl ExemplarColumn {
    pub(crate) fn new(encoding: Encoding) -> Self {
        ExemplarColumn {
            time: Presized::default(),
            value: Presized::default(),
            span_id: Presized::default(),
            trace_id: Presized::default(),
            attributes: AttrColumn::new(encoding),
        }
    }
}

impl Column for ExemplarColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        finish_struct(data_type, None, |f| {
            Ok(vec![
                self.time.finish_as(child(f, 0)?)?,
                self.value.finish_as(child(f, 1)?)?,
                self.span_id.finish_as(child(f, 2)?)?,
                self.trace_id.finish_as(child(f, 3)?)?,
                self.attributes.finish_as(child(f, 4)?)?,
            ])
        })
    }
}

/// `X`: the exemplars of one data point.
pub(crate) type ExemplarsColumn = ListColumn<ExemplarColumn>;

impl ExemplarColumn {
    /// One exemplar's scalar fields (its attributes are appended by the caller).
    fn push(&mut self, time: u64, value: Option<f64>, ids: (&[u8], &[u8]), scratch: &mut String) {
        self.time.append_value(time as i64);
        self.value.append_option(value);
        append_id(&mut self.span_id, ids.0, scratch);
        append_id(&mut self.trace_id, ids.1, scratch);
    }
}

impl ExemplarsColumn {
    pub(crate) fn append(&mut self, exemplars: &[Exemplar], scratch: &mut String) {
        for e in exemplars {
            let value = e.value.map(|v| match v {
                exemplar::Value::AsDouble(d) => d,
                exemplar::Value::AsInt(i) => i as f64,
            });
            let x = &mut self.values;
            x.push(e.time_unix_nano, value, (&e.span_id, &e.trace_id), scratch);
            x.attributes.append(&e.filtered_attributes, scratch);
        }
        self.close(exemplars.len());
    }

    /// Appends one exemplar read from the wire (`list` holds its attributes meanwhile); the caller closes
    /// the point's list with the number appended.
    pub(crate) fn append_wire<'a>(
        &mut self,
        exemplar: FieldCursor<'a>,
        list: &mut AttrList<'a>,
        scratch: &mut String,
    ) -> Result<(), WireError> {
        list.clear();
        let (mut time, mut value) = (0u64, None);
        let (mut span_id, mut trace_id) = (&[][..], &[][..]);
        let mut fields = exemplar;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                2 => time = fixed64(field)?,
                3 => value = Some(f64::from_bits(fixed64(field)?)),
                4 => span_id = bytes(field)?,
                5 => trace_id = bytes(field)?,
                6 => value = Some(fixed64(field)? as i64 as f64),
                7 => {
                    let kv = message(field)?;
                    list.read_key_value(exemplar.enter(kv)?, kv)?;
                }
                _ => {}
            }
        }
        let x = &mut self.values;
        x.push(time, value, (span_id, trace_id), scratch);
        x.attributes.append_refs(list, scratch);
        Ok(())
    }
}
