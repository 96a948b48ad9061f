//! [`Presized`]: an Arrow builder that, after each `finish`, starts its next chunk with the capacity the last
//! chunks needed, so the buffers of a chunk are allocated once instead of growing by doubling (each growth
//! copies the whole buffer: ~15 % of conversion's instructions before this).
//!
//! The capacity is allocated lazily, at the first append of the next chunk, so an idle exporter holds no
//! builder memory between commits. The hint is the larger of the last chunk's size and half the previous hint,
//! so a small last chunk of a commit window does not undersize the next full one, and the hint decays when
//! the traffic drops.

use std::ops::{Deref, DerefMut};

use deltalake::arrow::array::{
    ArrayBuilder, ArrayRef, ArrowPrimitiveType, BooleanBuilder, GenericByteBuilder,
    PrimitiveBuilder,
};
use deltalake::arrow::datatypes::{ByteArrayType, DataType};

use super::column::{ArrowResult, Column};

/// A builder type that can report how much a chunk used and be created with a capacity.
pub(crate) trait Capacity: Sized {
    /// (items, value bytes) appended since the last finish.
    fn used(&self) -> (usize, usize);
    /// An empty builder of `data_type` with room for `items` items and `bytes` value bytes.
    fn with_room(items: usize, bytes: usize, data_type: &DataType) -> Self;
}

impl<T: ByteArrayType> Capacity for GenericByteBuilder<T> {
    fn used(&self) -> (usize, usize) {
        (self.len(), self.values_slice().len())
    }
    fn with_room(items: usize, bytes: usize, _: &DataType) -> Self {
        Self::with_capacity(items, bytes)
    }
}

impl<T: ArrowPrimitiveType> Capacity for PrimitiveBuilder<T> {
    fn used(&self) -> (usize, usize) {
        (self.len(), 0)
    }
    fn with_room(items: usize, _: usize, data_type: &DataType) -> Self {
        // The data type carries a timestamp's time zone.
        Self::with_capacity(items).with_data_type(data_type.clone())
    }
}

impl Capacity for BooleanBuilder {
    fn used(&self) -> (usize, usize) {
        (self.len(), 0)
    }
    fn with_room(items: usize, _: usize, _: &DataType) -> Self {
        Self::with_capacity(items)
    }
}

/// See the module docs.
pub(crate) struct Presized<B> {
    builder: B,
    /// (items, bytes) to reserve at the next chunk's first append, and the data type to build.
    hint: (usize, usize),
    pending: Option<DataType>,
}

impl<B> Presized<B> {
    pub(crate) fn new(builder: B) -> Self {
        Presized {
            builder,
            hint: (0, 0),
            pending: None,
        }
    }
}

impl<B: Default> Default for Presized<B> {
    fn default() -> Self {
        Presized::new(B::default())
    }
}

impl<B> Deref for Presized<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.builder
    }
}

impl<B: Capacity> DerefMut for Presized<B> {
    #[inline]
    fn deref_mut(&mut self) -> &mut B {
        // Every append passes here: keep it to one test.
        if self.pending.is_some() {
            self.allocate();
        }
        &mut self.builder
    }
}

impl<B: Capacity> Presized<B> {
    #[cold]
    #[inline(never)]
    fn allocate(&mut self) {
        if let Some(data_type) = self.pending.take() {
            self.builder = B::with_room(self.hint.0, self.hint.1, &data_type);
        }
    }
}

impl<B: Capacity + Column> Column for Presized<B> {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let (items, bytes) = self.builder.used();
        let array = self.builder.finish_as(data_type)?;
        self.hint = (items.max(self.hint.0 / 2), bytes.max(self.hint.1 / 2));
        self.pending = Some(data_type.clone());
        Ok(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::{Array, AsArray, StringBuilder, TimestampMicrosecondBuilder};

    #[test]
    fn the_next_chunk_starts_with_the_room_the_last_one_needed() {
        let mut b: Presized<StringBuilder> = Presized::default();
        for i in 0..1000 {
            b.append_value(format!("value {i}"));
        }
        let array = b.finish_as(&DataType::Utf8).expect("finish");
        assert_eq!(array.len(), 1000);
        assert_eq!(
            b.values_capacity(),
            0,
            "nothing allocated until the next append"
        );
        b.append_value("x");
        assert!(b.values_capacity() >= 8890, "{}", b.values_capacity());
        let array = b.finish_as(&DataType::Utf8).expect("finish");
        assert_eq!(array.as_string::<i32>().value(0), "x");
    }

    #[test]
    fn a_timestamp_keeps_its_time_zone_across_chunks() {
        let tz = DataType::Timestamp(
            deltalake::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        );
        let mut b = Presized::new(TimestampMicrosecondBuilder::new().with_timezone("UTC"));
        b.append_value(1);
        b.finish_as(&tz).expect("first chunk");
        b.append_value(2);
        assert_eq!(b.finish_as(&tz).expect("second chunk").data_type(), &tz);
    }
}
