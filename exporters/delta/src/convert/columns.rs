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
    ArrayRef, BinaryBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, ListArray,
    MapArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use deltalake::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::error::ArrowError;
use otlake_core::proto::common::v1::{InstrumentationScope, KeyValue, any_value};
use otlake_core::proto::metrics::v1::{Exemplar, exemplar};
use otlake_core::proto::resource::v1::Resource;

use super::column::{ArrowResult, Column, child, finish_struct, struct_fields};
use super::presized::Presized;
use super::variant::{Root, VariantEncoder};
use super::wire_attrs::{self, AttrList, ValueRef};
use crate::encode;

/// How attribute maps (and log bodies) are written: v1 text maps or v2 Variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    Text,
    Variant,
}

/// A v2 `VARIANT` column (unshredded: `STRUCT<metadata BINARY, value BINARY>`).
pub(crate) struct VariantColumn {
    metadata: Presized<BinaryBuilder>,
    value: Presized<BinaryBuilder>,
    nulls: NullBufferBuilder,
    encoder: VariantEncoder,
}

impl VariantColumn {
    pub(crate) fn new() -> Self {
        VariantColumn {
            metadata: Presized::default(),
            value: Presized::default(),
            nulls: NullBufferBuilder::new(0),
            encoder: VariantEncoder::default(),
        }
    }

    pub(crate) fn append(&mut self, root: Root<'_>) {
        self.encoder.encode(root);
        self.metadata.append_value(&self.encoder.metadata);
        self.value.append_value(&self.encoder.value);
        self.nulls.append_non_null();
    }

    /// Like `append(Root::Value(..))`, for a value read from the wire.
    pub(crate) fn append_value_ref(&mut self, value: ValueRef<'_>, list: &AttrList<'_>) {
        self.encoder.encode_value_ref(value, list);
        self.metadata.append_value(&self.encoder.metadata);
        self.value.append_value(&self.encoder.value);
        self.nulls.append_non_null();
    }

    pub(crate) fn append_null(&mut self) {
        // The two fields are NOT NULL inside the struct: empty values under a null struct.
        self.metadata.append_value([]);
        self.value.append_value([]);
        self.nulls.append_null();
    }
}

impl Column for VariantColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        finish_struct(data_type, nulls, |f| {
            Ok(vec![
                self.metadata.finish_as(child(f, 0)?)?,
                self.value.finish_as(child(f, 1)?)?,
            ])
        })
    }
}

/// An attribute map: `MAP<STRING,STRING>` (v1) or `VARIANT` (v2).
pub(crate) enum AttrColumn {
    Map(MapColumn, Repeat),
    Variant(VariantColumn, Repeat),
}

/// The encoded form of the attributes that every row of a resource or scope group repeats, made once per
/// group instead of once per row. Keyed by the address and length of the attribute slice, which identify it
/// only while one request is borrowed: [`AttrColumn::forget`] runs at the end of each request.
#[derive(Default)]
pub(crate) struct Repeat {
    key: Option<(usize, usize)>,
    text: Vec<(String, Option<String>)>,
    metadata: Vec<u8>,
    value: Vec<u8>,
}

impl AttrColumn {
    pub(crate) fn new(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Text => AttrColumn::Map(MapColumn::new(), Repeat::default()),
            Encoding::Variant => AttrColumn::Variant(VariantColumn::new(), Repeat::default()),
        }
    }

    pub(crate) fn append(&mut self, attributes: &[KeyValue], scratch: &mut String) {
        match self {
            AttrColumn::Map(m, _) => m.append(attributes, scratch),
            AttrColumn::Variant(v, _) => v.append(Root::Attributes(attributes)),
        }
    }

    /// Like `append`, for attributes read from the wire.
    pub(crate) fn append_refs(&mut self, list: &AttrList<'_>, scratch: &mut String) {
        match self {
            AttrColumn::Map(m, _) => m.append_refs(list, scratch),
            AttrColumn::Variant(v, _) => {
                v.encoder.encode_refs(list);
                v.metadata.append_value(&v.encoder.metadata);
                v.value.append_value(&v.encoder.value);
                v.nulls.append_non_null();
            }
        }
    }

    /// Like `append`, for attributes that the following rows repeat (a resource's, a scope's): they are
    /// encoded once and copied for each row.
    pub(crate) fn append_repeated(&mut self, attributes: &[KeyValue], scratch: &mut String) {
        let key = Some((attributes.as_ptr() as usize, attributes.len()));
        match self {
            AttrColumn::Map(m, repeat) => {
                if repeat.key != key {
                    repeat.key = key;
                    repeat.text.clear();
                    let repeats = encode::key_repeats(attributes);
                    for (i, kv) in attributes.iter().enumerate() {
                        if encode::superseded(attributes, i, &repeats) {
                            continue;
                        }
                        let text = kv
                            .value
                            .as_ref()
                            .and_then(|v| encode::any_value_text(v, scratch))
                            .map(str::to_owned);
                        repeat.text.push((kv.key.clone(), text));
                    }
                }
                for (k, v) in &repeat.text {
                    m.keys.append_value(k);
                    m.values.append_option(v.as_deref());
                }
                m.offsets.push(next_offset(m.keys.len()));
                m.nulls.append_non_null();
            }
            AttrColumn::Variant(v, repeat) => {
                if repeat.key != key {
                    repeat.key = key;
                    v.encoder.encode(Root::Attributes(attributes));
                    repeat.metadata.clone_from(&v.encoder.metadata);
                    repeat.value.clone_from(&v.encoder.value);
                }
                v.metadata.append_value(&repeat.metadata);
                v.value.append_value(&repeat.value);
                v.nulls.append_non_null();
            }
        }
    }

    /// Drops the repeated encoding (the request it was made from is no longer borrowed).
    pub(crate) fn forget(&mut self) {
        match self {
            AttrColumn::Map(_, repeat) | AttrColumn::Variant(_, repeat) => repeat.key = None,
        }
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            AttrColumn::Map(m, _) => m.append_null(),
            AttrColumn::Variant(v, _) => v.append_null(),
        }
    }
}

impl Column for AttrColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        match self {
            AttrColumn::Map(m, _) => m.finish_as(data_type),
            AttrColumn::Variant(v, _) => v.finish_as(data_type),
        }
    }
}

/// The v2 columns in front of every table (`record_id`, `time`, `date`, `service_name`) and the metrics
/// table's top-level `start_time_unix_nano` / `time_unix_nano`. Empty and unused for v1.
pub(crate) struct V2Columns {
    enabled: bool,
    record_id: Presized<StringBuilder>,
    time: Presized<TimestampMicrosecondBuilder>,
    date: Presized<Date32Builder>,
    service_name: Presized<StringBuilder>,
    start: Presized<Int64Builder>,
    point_time: Presized<Int64Builder>,
}

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

impl V2Columns {
    pub(crate) fn new(encoding: Encoding) -> Self {
        V2Columns {
            enabled: encoding == Encoding::Variant,
            record_id: Presized::default(),
            time: Presized::new(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            date: Presized::default(),
            service_name: Presized::default(),
            start: Presized::default(),
            point_time: Presized::default(),
        }
    }

    /// One row's leading columns: a fresh UUIDv7, the row's time (and its UTC date), `service.name`.
    pub(crate) fn append(&mut self, time_unix_nano: u64, resource: Option<&Resource>) {
        if !self.enabled {
            return;
        }
        let mut id = [0u8; 36];
        self.record_id
            .append_value(uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id));
        self.time
            .append_value((time_unix_nano / NANOS_PER_MICRO) as i64);
        self.date
            .append_value((time_unix_nano / NANOS_PER_DAY) as i32);
        let service = resource.and_then(|r| {
            r.attributes
                .iter()
                .rev()
                .find(|kv| kv.key == "service.name")
                .and_then(
                    |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
                        _ => None,
                    },
                )
        });
        self.service_name.append_option(service);
    }

    /// The metrics table's top-level point times.
    pub(crate) fn append_point_times(&mut self, start: u64, time: u64) {
        if self.enabled {
            self.start.append_value(start as i64);
            self.point_time.append_value(time as i64);
        }
    }

    /// Adds the leading columns to a batch's named columns (v2 only).
    pub(crate) fn add<'a>(
        &'a mut self,
        columns: &mut Vec<(&'a str, &'a mut dyn Column)>,
        metrics: bool,
    ) {
        if !self.enabled {
            return;
        }
        columns.push(("record_id", &mut self.record_id));
        columns.push(("time", &mut self.time));
        columns.push(("date", &mut self.date));
        columns.push(("service_name", &mut self.service_name));
        if metrics {
            columns.push(("start_time_unix_nano", &mut self.start));
            columns.push(("time_unix_nano", &mut self.point_time));
        }
    }
}

/// The columns a row of the spans or logs table takes from its resource and scope group: `resource`,
/// `resource_schema_url`, `instrumentation_scope`, the item's schema URL (`span_schema_url`,
/// `log_schema_url`), and the v2 columns. One place for both tables and both readers (decoded and wire).
pub(crate) struct GroupColumns {
    resource: ResourceColumn,
    resource_schema_url: Presized<StringBuilder>,
    scope: ScopeColumn,
    item_schema_url: Presized<StringBuilder>,
    /// The name of the item's schema URL column.
    item_schema_url_name: &'static str,
    v2: V2Columns,
}

impl GroupColumns {
    pub(crate) fn new(encoding: Encoding, item_schema_url_name: &'static str) -> Self {
        GroupColumns {
            resource: ResourceColumn::new(encoding),
            resource_schema_url: Presized::default(),
            scope: ScopeColumn::new(encoding),
            item_schema_url: Presized::default(),
            item_schema_url_name,
            v2: V2Columns::new(encoding),
        }
    }

    /// The group columns of one row; `time` is the item's time for the v2 columns.
    pub(crate) fn append(
        &mut self,
        time: u64,
        resource: (Option<&Resource>, &str),
        scope: (Option<&InstrumentationScope>, &str),
        scratch: &mut String,
    ) {
        self.v2.append(time, resource.0);
        self.resource.append(resource.0, scratch);
        self.resource_schema_url.append_value(resource.1);
        self.scope.append(scope.0, scratch);
        self.item_schema_url.append_value(scope.1);
    }

    /// A resource group ended: forget the encoding kept for its `Resource` (keyed by its address).
    pub(crate) fn forget_resource(&mut self) {
        self.resource.forget();
    }

    /// A scope group ended: forget the encoding kept for its scope (keyed by its address).
    pub(crate) fn forget_scope(&mut self) {
        self.scope.forget();
    }

    /// Adds these columns, by name, to those a record batch is finished from.
    pub(crate) fn add<'a>(&'a mut self, columns: &mut Vec<(&'a str, &'a mut dyn Column)>) {
        columns.push(("resource", &mut self.resource));
        columns.push(("resource_schema_url", &mut self.resource_schema_url));
        columns.push(("instrumentation_scope", &mut self.scope));
        columns.push((self.item_schema_url_name, &mut self.item_schema_url));
        self.v2.add(columns, false);
    }
}

fn offset_buffer(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    // The next chunk likely has as many rows: room for them up front (4 bytes a row).
    let mut next = Vec::with_capacity(offsets.len());
    next.push(0);
    let taken = std::mem::replace(offsets, next);
    OffsetBuffer::new(ScalarBuffer::from(taken))
}

fn next_offset(len: usize) -> i32 {
    // Chunks are finished long before 2^31 entries (see `convert::CHUNK_ROWS`).
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// `MAP<STRING,STRING>` of attributes, with the v1 text encoding of values.
pub(crate) struct MapColumn {
    keys: Presized<StringBuilder>,
    values: Presized<StringBuilder>,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl MapColumn {
    pub(crate) fn new() -> Self {
        MapColumn {
            keys: Presized::default(),
            values: Presized::default(),
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
        }
    }

    /// Appends one map. A key given twice keeps its last value (a map cannot hold a key twice).
    pub(crate) fn append(&mut self, attributes: &[KeyValue], scratch: &mut String) {
        let repeats = encode::key_repeats(attributes);
        for (i, kv) in attributes.iter().enumerate() {
            if encode::superseded(attributes, i, &repeats) {
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

    /// Like `append`, for attributes read from the wire.
    pub(crate) fn append_refs(&mut self, list: &AttrList<'_>, scratch: &mut String) {
        let attrs = &list.attrs;
        let repeats = wire_attrs::key_repeats(attrs);
        for (i, attr) in attrs.iter().enumerate() {
            if wire_attrs::superseded(attrs, i, &repeats) {
                continue;
            }
            self.keys.append_value(attr.key);
            match wire_attrs::value_text(attr.value, list, scratch) {
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
        let keys = self.keys.finish_as(child(entry_fields, 0)?)?;
        let values = self.values.finish_as(child(entry_fields, 1)?)?;
        let entries = StructArray::try_new(entry_fields.clone(), vec![keys, values], None)?;
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

impl ListColumn<Presized<Int64Builder>> {
    /// Appends a list of unsigned counts (bucket counts) as BIGINT.
    pub(crate) fn append_u64s(&mut self, values: &[u64]) {
        for v in values {
            self.values.append_value(*v as i64);
        }
        self.close(values.len());
    }
}

impl ListColumn<Presized<Float64Builder>> {
    pub(crate) fn append_f64s(&mut self, values: &[f64]) {
        self.values.append_slice(values);
        self.close(values.len());
    }
}

/// `R = STRUCT<attributes, dropped_attributes_count>`.
pub(crate) struct ResourceColumn {
    attributes: AttrColumn,
    dropped: Presized<Int32Builder>,
    nulls: NullBufferBuilder,
}

impl ResourceColumn {
    pub(crate) fn new(encoding: Encoding) -> Self {
        ResourceColumn {
            attributes: AttrColumn::new(encoding),
            dropped: Presized::default(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    pub(crate) fn append(&mut self, resource: Option<&Resource>, scratch: &mut String) {
        match resource {
            Some(r) => {
                self.attributes.append_repeated(&r.attributes, scratch);
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

impl ResourceColumn {
    /// Call at the end of each request (see [`Repeat`]).
    pub(crate) fn forget(&mut self) {
        self.attributes.forget();
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
    name: Presized<StringBuilder>,
    version: Presized<StringBuilder>,
    attributes: AttrColumn,
    dropped: Presized<Int32Builder>,
    nulls: NullBufferBuilder,
}

impl ScopeColumn {
    pub(crate) fn new(encoding: Encoding) -> Self {
        ScopeColumn {
            name: Presized::default(),
            version: Presized::default(),
            attributes: AttrColumn::new(encoding),
            dropped: Presized::default(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    pub(crate) fn append(&mut self, scope: Option<&InstrumentationScope>, scratch: &mut String) {
        match scope {
            Some(s) => {
                self.name.append_value(&s.name);
                self.version.append_value(&s.version);
                self.attributes.append_repeated(&s.attributes, scratch);
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

impl ScopeColumn {
    /// Call at the end of each request (see [`Repeat`]).
    pub(crate) fn forget(&mut self) {
        self.attributes.forget();
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
    let mut buf = [0u8; 2 * encode::MAX_STACK_ID];
    if let Some(hex) = encode::hex_str(id, &mut buf) {
        builder.append_value(hex);
    } else if encode::hex_id(id, scratch) {
        builder.append_value(scratch.as_str());
    } else {
        builder.append_null();
    }
}

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
