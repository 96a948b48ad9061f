//! The exemplars of a metric data point: [`ExemplarsColumn`], a list of [`ExemplarColumn`] structs
//! (`STRUCT<time_unix_nano, value, span_id, trace_id, filtered_attributes>`), ids as hex.

use deltalake::arrow::array::{ArrayRef, Float64Builder, Int64Builder, StringBuilder};
use deltalake::arrow::datatypes::DataType;
use otlake_core::proto::metrics::v1::{Exemplar, exemplar};

use super::super::column::{ArrowResult, Column, child, finish_struct};
use super::super::presized::Presized;
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

impl ExemplarsColumn {
    pub(crate) fn append(&mut self, exemplars: &[Exemplar], scratch: &mut String) {
        for e in exemplars {
            let x = &mut self.values;
            x.time.append_value(e.time_unix_nano as i64);
            match e.value {
                Some(exemplar::Value::AsDouble(d)) => x.value.append_value(d),
                Some(exemplar::Value::AsInt(i)) => x.value.append_value(i as f64),
                None => x.value.append_null(),
            }
            append_id(&mut x.span_id, &e.span_id, scratch);
            append_id(&mut x.trace_id, &e.trace_id, scratch);
            x.attributes.append(&e.filtered_attributes, scratch);
        }
        self.close(exemplars.len());
    }
}
