//! [`ListColumn`]: an `ARRAY<T>` column, offsets and validity around a child column of the element type, with
//! the lists of numbers the metrics table writes (bucket counts, explicit bounds), and the offset helpers that
//! lists and maps (a list of entries) share.

use deltalake::arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, ListArray, NullBufferBuilder,
};
use deltalake::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::error::ArrowError;
use std::sync::Arc;

use super::super::column::{ArrowResult, Column};
use super::super::presized::Presized;

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

pub(super) fn offset_buffer(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    // The next chunk likely has as many rows: room for them up front (4 bytes a row).
    let mut next = Vec::with_capacity(offsets.len());
    next.push(0);
    let taken = std::mem::replace(offsets, next);
    OffsetBuffer::new(ScalarBuffer::from(taken))
}

pub(super) fn next_offset(len: usize) -> i32 {
    // Chunks are finished long before 2^31 entries (see `convert::CHUNK_ROWS`).
    i32::try_from(len).unwrap_or(i32::MAX)
}
