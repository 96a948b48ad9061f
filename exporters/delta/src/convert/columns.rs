//! Column builders shared by the three signals: attribute maps, lists, the resource and scope structs, the
//! exemplar list.
//!
//! Each builder appends one row at a time straight from the proto types (no intermediate rows, no `String` per
//! value) and is finished against the Arrow data type taken from the table's schema, so map and list fields
//! carry Delta's names and a mismatch is an error instead of a silently different file. A builder is reusable
//! after `finish`.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayBuilder, NullBufferBuilder};
use deltalake::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListArray, MapArray,
    StringBuilder, StructArray,
};
use deltalake::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use deltalake::arrow::datatypes::{DataType, Fields};
use deltalake::arrow::error::ArrowError;
use otlake_core::proto::common::v1::{InstrumentationScope, KeyValue};
use otlake_core::proto::metrics::v1::{Exemplar, exemplar};
use otlake_core::proto::resource::v1::Resource;

use crate::encode;

pub(crate) type ArrowResult<T> = Result<T, ArrowError>;

/// Something that becomes one Arrow array of a given data type.
pub(crate) trait Column {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef>;
}

macro_rules! plain_column {
    ($($builder:ty),*) => {$(
        impl Column for $builder {
            fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
                let array: ArrayRef = Arc::new(<$builder>::finish(self));
                if array.data_type() != data_type {
                    return Err(ArrowError::SchemaError(format!(
                        "column built as {} but the table expects {data_type}",
                        array.data_type()
                    )));
                }
                Ok(array)
            }
        }
    )*};
}
plain_column!(
    StringBuilder,
    Int64Builder,
    Int32Builder,
    Float64Builder,
    BooleanBuilder
);

/// The child fields of a struct data type.
pub(crate) fn struct_fields(data_type: &DataType) -> ArrowResult<&Fields> {
    match data_type {
        DataType::Struct(fields) => Ok(fields),
        other => Err(ArrowError::SchemaError(format!(
            "expected a struct in the table schema, found {other}"
        ))),
    }
}

/// Finishes a struct from children finished against its fields, in schema order.
pub(crate) fn finish_struct(
    data_type: &DataType,
    nulls: Option<NullBuffer>,
    children: impl FnOnce(&Fields) -> ArrowResult<Vec<ArrayRef>>,
) -> ArrowResult<ArrayRef> {
    let fields = struct_fields(data_type)?;
    let arrays = children(fields)?;
    Ok(Arc::new(StructArray::try_new(
        fields.clone(),
        arrays,
        nulls,
    )?))
}

/// The data type of field `i` of a struct (for finishing children in order).
pub(crate) fn child(fields: &Fields, i: usize) -> ArrowResult<&DataType> {
    fields
        .get(i)
        .map(|f| f.data_type())
        .ok_or_else(|| ArrowError::SchemaError(format!("struct has no field {i}")))
}

fn offset_buffer(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    let taken = std::mem::replace(offsets, vec![0]);
    OffsetBuffer::new(ScalarBuffer::from(taken))
}

fn next_offset(len: usize) -> i32 {
    // Chunks are finished long before 2^31 entries (see `convert::CHUNK_ROWS`).
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// `MAP<STRING,STRING>` of attributes, with the v1 text encoding of values.
pub(crate) struct MapColumn {
    keys: StringBuilder,
    values: StringBuilder,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl MapColumn {
    pub(crate) fn new() -> Self {
        MapColumn {
            keys: StringBuilder::new(),
            values: StringBuilder::new(),
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
        }
    }

    /// Appends one map. A key given twice keeps its last value (a map cannot hold a key twice).
    pub(crate) fn append(&mut self, attributes: &[KeyValue], scratch: &mut String) {
        for (i, kv) in attributes.iter().enumerate() {
            if attributes[i + 1..].iter().any(|later| later.key == kv.key) {
                continue;
            }
            self.keys.append_value(&kv.key);
            match kv
                .value
                .as_ref()
                .and_then(|v| encode::any_value_text(v, scratch))
            {
                Some(text) => self.values.append_value(text),
                None => self.values.append_null(),
            }
        }
        self.offsets.push(next_offset(self.keys.len()));
        self.nulls.append_non_null();
    }

    pub(crate) fn append_null(&mut self) {
        self.offsets.push(next_offset(self.keys.len()));
        self.nulls.append_null();
    }
}

impl Column for MapColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let DataType::Map(entries_field, sorted) = data_type else {
            return Err(ArrowError::SchemaError(format!(
                "expected a map in the table schema, found {data_type}"
            )));
        };
        let entry_fields = struct_fields(entries_field.data_type())?;
        let keys = self.keys.finish();
        let values = self.values.finish();
        let entries = StructArray::try_new(
            entry_fields.clone(),
            vec![Arc::new(keys), Arc::new(values)],
            None,
        )?;
        Ok(Arc::new(MapArray::try_new(
            entries_field.clone(),
            offset_buffer(&mut self.offsets),
            entries,
            self.nulls.finish(),
            *sorted,
        )?))
    }
}

/// `ARRAY<T>`: offsets and validity around a child column of the element type.
pub(crate) struct ListColumn<T> {
    pub(crate) values: T,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    len: usize,
}

impl<T: Column> ListColumn<T> {
    pub(crate) fn new(values: T) -> Self {
        ListColumn {
            values,
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
            len: 0,
        }
    }

    /// Closes the current list after `count` elements were appended to `values`.
    pub(crate) fn close(&mut self, count: usize) {
        self.len += count;
        self.offsets.push(next_offset(self.len));
        self.nulls.append_non_null();
    }

    pub(crate) fn append_null(&mut self) {
        self.offsets.push(next_offset(self.len));
        self.nulls.append_null();
    }
}

impl<T: Column> Column for ListColumn<T> {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let DataType::List(element) = data_type else {
            return Err(ArrowError::SchemaError(format!(
                "expected a list in the table schema, found {data_type}"
            )));
        };
        let values = self.values.finish_as(element.data_type())?;
        self.len = 0;
        Ok(Arc::new(ListArray::try_new(
            element.clone(),
            offset_buffer(&mut self.offsets),
            values,
            self.nulls.finish(),
        )?))
    }
}

impl ListColumn<Int64Builder> {
    /// Appends a list of unsigned counts (bucket counts) as BIGINT.
    pub(crate) fn append_u64s(&mut self, values: &[u64]) {
        for v in values {
            self.values.append_value(*v as i64);
        }
        self.close(values.len());
    }
}

impl ListColumn<Float64Builder> {
    pub(crate) fn append_f64s(&mut self, values: &[f64]) {
        self.values.append_slice(values);
        self.close(values.len());
    }
}

/// `R = STRUCT<attributes, dropped_attributes_count>`.
pub(crate) struct ResourceColumn {
    attributes: MapColumn,
    dropped: Int32Builder,
    nulls: NullBufferBuilder,
}

impl ResourceColumn {
    pub(crate) fn new() -> Self {
        ResourceColumn {
            attributes: MapColumn::new(),
            dropped: Int32Builder::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    pub(crate) fn append(&mut self, resource: Option<&Resource>, scratch: &mut String) {
        match resource {
            Some(r) => {
                self.attributes.append(&r.attributes, scratch);
                self.dropped.append_value(r.dropped_attributes_count as i32);
                self.nulls.append_non_null();
            }
            None => {
                self.attributes.append_null();
                self.dropped.append_null();
                self.nulls.append_null();
            }
        }
    }
}

impl Column for ResourceColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        finish_struct(data_type, nulls, |f| {
            Ok(vec![
                self.attributes.finish_as(child(f, 0)?)?,
                self.dropped.finish_as(child(f, 1)?)?,
            ])
        })
    }
}

/// `S = STRUCT<name, version, attributes, dropped_attributes_count>`.
pub(crate) struct ScopeColumn {
    name: StringBuilder,
    version: StringBuilder,
    attributes: MapColumn,
    dropped: Int32Builder,
    nulls: NullBufferBuilder,
}

impl ScopeColumn {
    pub(crate) fn new() -> Self {
        ScopeColumn {
            name: StringBuilder::new(),
            version: StringBuilder::new(),
            attributes: MapColumn::new(),
            dropped: Int32Builder::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    pub(crate) fn append(&mut self, scope: Option<&InstrumentationScope>, scratch: &mut String) {
        match scope {
            Some(s) => {
                self.name.append_value(&s.name);
                self.version.append_value(&s.version);
                self.attributes.append(&s.attributes, scratch);
                self.dropped.append_value(s.dropped_attributes_count as i32);
                self.nulls.append_non_null();
            }
            None => {
                self.name.append_null();
                self.version.append_null();
                self.attributes.append_null();
                self.dropped.append_null();
                self.nulls.append_null();
            }
        }
    }
}

impl Column for ScopeColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        finish_struct(data_type, nulls, |f| {
            Ok(vec![
                self.name.finish_as(child(f, 0)?)?,
                self.version.finish_as(child(f, 1)?)?,
                self.attributes.finish_as(child(f, 2)?)?,
                self.dropped.finish_as(child(f, 3)?)?,
            ])
        })
    }
}

/// Appends an id as hex, or NULL when empty.
pub(crate) fn append_id(builder: &mut StringBuilder, id: &[u8], scratch: &mut String) {
    if encode::hex_id(id, scratch) {
        builder.append_value(scratch.as_str());
    } else {
        builder.append_null();
    }
}

/// One exemplar struct: `STRUCT<time_unix_nano, value, span_id, trace_id, filtered_attributes>`.
pub(crate) struct ExemplarColumn {
    time: Int64Builder,
    value: Float64Builder,
    span_id: StringBuilder,
    trace_id: StringBuilder,
    attributes: MapColumn,
}

impl ExemplarColumn {
    pub(crate) fn new() -> Self {
        ExemplarColumn {
            time: Int64Builder::new(),
            value: Float64Builder::new(),
            span_id: StringBuilder::new(),
            trace_id: StringBuilder::new(),
            attributes: MapColumn::new(),
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
