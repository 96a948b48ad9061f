//! Attribute columns: [`AttrColumn`] writes a list of attributes as a v1 `MAP<STRING,STRING>` ([`MapColumn`],
//! values as text by the encoding rules) or a v2 `VARIANT` ([`VariantColumn`]), from decoded attributes or
//! attributes read from the wire. A key given twice keeps its last value, as maps do; the attributes every row
//! of a group repeats are encoded once per group ([`Repeat`]).

use deltalake::arrow::array::ArrayBuilder;
use deltalake::arrow::array::{
    ArrayRef, BinaryBuilder, MapArray, NullBufferBuilder, StringBuilder, StructArray,
};
use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::error::ArrowError;
use otlake_core::proto::common::v1::KeyValue;
use std::sync::Arc;

use super::super::column::{ArrowResult, Column, child, finish_struct, struct_fields};
use super::super::presized::Presized;
use super::super::variant::{Root, VariantEncoder};
use super::super::wire_attrs::{self, AttrList, ValueRef};
use super::list::{next_offset, offset_buffer};
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
