//! [`Column`]: a builder finished into one Arrow array of the data type the table's schema gives, and the
//! helpers that finish a struct or a record batch from such builders.
//!
//! Finishing against the schema's own data type means map and list fields carry Delta's names and a layout
//! difference is an error, never a silently different file or a shifted column. This is the bottom level of
//! the converters: the column builders (`columns`, `presized`) and the tables' row builders stand on it.

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder,
    Int64Builder, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use deltalake::arrow::buffer::NullBuffer;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::datatypes::{DataType, Fields};
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::record_batch::RecordBatch;

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
    BooleanBuilder,
    BinaryBuilder,
    Date32Builder,
    TimestampMicrosecondBuilder
);

/// Finishes a record batch of `schema` from named columns: each schema field takes the column of its name,
/// so a layout difference is an error, never a shifted column.
pub(crate) fn finish_batch(
    schema: &SchemaRef,
    mut columns: Vec<(&str, &mut dyn Column)>,
) -> ArrowResult<RecordBatch> {
    let arrays = finish_named(schema.fields(), &mut columns)?;
    RecordBatch::try_new(Arc::clone(schema), arrays)
}

/// Finishes a struct whose children are matched to its fields by name.
pub(crate) fn finish_struct_named(
    data_type: &DataType,
    nulls: Option<NullBuffer>,
    mut columns: Vec<(&str, &mut dyn Column)>,
) -> ArrowResult<ArrayRef> {
    let fields = struct_fields(data_type)?;
    let arrays = finish_named(fields, &mut columns)?;
    Ok(Arc::new(StructArray::try_new(
        fields.clone(),
        arrays,
        nulls,
    )?))
}

fn finish_named(
    fields: &Fields,
    columns: &mut [(&str, &mut dyn Column)],
) -> ArrowResult<Vec<ArrayRef>> {
    if fields.len() != columns.len() {
        return Err(ArrowError::SchemaError(format!(
            "the table has {} columns here, the converter builds {}",
            fields.len(),
            columns.len()
        )));
    }
    fields
        .iter()
        .map(|field| {
            let (_, column) = columns
                .iter_mut()
                .find(|(name, _)| *name == field.name().as_str())
                .ok_or_else(|| {
                    ArrowError::SchemaError(format!(
                        "the converter builds no column `{}`",
                        field.name()
                    ))
                })?;
            column.finish_as(field.data_type())
        })
        .collect()
}

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
