//! Log records straight from wire bytes: walks a validated `ExportLogsServiceRequest` (`wire_groups`) and
//! appends to the same builders as [`LogRows::append`], borrowing strings and ids from the buffer. No prost
//! struct is built for records or for attributes and bodies with scalar values (or arrays of them); a body
//! or attribute value that nests further is decoded with prost (`wire_attrs`).
//!
//! Semantics are prost's, field for field, as the differential tests check against the decoded path: a scalar
//! field given twice keeps its last value, a body given twice merges, unknown fields are skipped, and whatever
//! prost refuses is an error here. On error the rows appended so far are not rolled back: see
//! [`crate::convert::Rows::append_wire`].

use otlake_core::proto::common::v1::AnyValue;
use otlake_core::wire::{FieldCursor, Part, WireError};
use prost::Message as _;

use super::super::columns::append_id;
use super::super::wire_attrs::{
    self, AttrList, ValueRef, bytes, fixed32, fixed64, message, string, varint, wire_error,
};
use super::super::wire_groups::{Group, WireItems, walk_request};
use super::{Body, LogRows};
use crate::encode;

/// The scalar fields of one log record (their last values on the wire).
#[derive(Default)]
struct RecordFields<'a> {
    time: u64,
    observed_time: u64,
    severity_number: i32,
    severity_text: &'a str,
    dropped_attributes: u32,
    flags: u32,
    trace_id: &'a [u8],
    span_id: &'a [u8],
    event_name: &'a str,
}

/// The records of one request going into a [`LogRows`].
struct LogItems<'r, 'a> {
    rows: &'r mut LogRows,
    attributes: AttrList<'a>,
    /// The body's arrays and decoded values.
    body: AttrList<'a>,
}

impl<'a> WireItems<'a> for LogItems<'_, 'a> {
    fn append_item(&mut self, record: FieldCursor<'a>, group: &Group<'_>) -> Result<(), WireError> {
        let rows = &mut *self.rows;
        let time = rows.append_record_wire(record, &mut self.attributes, &mut self.body)?;
        rows.group.append(
            time,
            (group.resource, group.resource_schema_url),
            (group.scope, group.scope_schema_url),
            &mut rows.scratch,
        );
        rows.rows += 1;
        Ok(())
    }

    fn end_resource(&mut self) {
        self.rows.group.forget_resource();
    }

    fn end_scope(&mut self) {
        self.rows.group.forget_scope();
    }
}

impl LogRows {
    /// Appends every log record of a wire request; returns how many.
    pub(crate) fn append_wire(&mut self, request: &[u8]) -> Result<usize, WireError> {
        let before = self.rows;
        let mut items = LogItems {
            rows: self,
            attributes: AttrList::default(),
            body: AttrList::default(),
        };
        walk_request(request, &mut items)?;
        Ok(self.rows - before)
    }

    /// Appends one record's own columns; returns its time for the v2 columns (the observed time when it has
    /// none, as `append` does).
    fn append_record_wire<'a>(
        &mut self,
        record: FieldCursor<'a>,
        attributes: &mut AttrList<'a>,
        body_list: &mut AttrList<'a>,
    ) -> Result<u64, WireError> {
        attributes.clear();
        body_list.clear();
        let mut f = RecordFields::default();
        // `None`: no body field (NULL); a body field that is an empty AnyValue is `Some(Empty)`.
        let mut body: Option<ValueRef<'a>> = None;
        let mut body_nested = false;
        let mut fields = record;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                1 => f.time = fixed64(field)?,
                2 => f.severity_number = varint(field)? as i32,
                3 => f.severity_text = string(field)?,
                5 => {
                    let any = record.enter(message(field)?)?;
                    let value = body.get_or_insert(ValueRef::Empty);
                    body_nested |= body_list.read_value(any, value)?;
                }
                6 => {
                    let kv = message(field)?;
                    attributes.read_key_value(record.enter(kv)?, kv)?;
                }
                7 => f.dropped_attributes = varint(field)? as u32,
                8 => f.flags = fixed32(field)?,
                9 => f.trace_id = bytes(field)?,
                10 => f.span_id = bytes(field)?,
                11 => f.observed_time = fixed64(field)?,
                12 => f.event_name = string(field)?,
                _ => {}
            }
        }
        if body_nested {
            // A body that nests further: every body field of the record decoded by prost and merged, as
            // prost merges them, after the check that prost would accept each at this depth.
            let mut decoded = AnyValue::default();
            let mut again = record;
            while let Some((tag, field)) = again.next_field()? {
                if tag == 5 {
                    let any = message(field)?;
                    record.enter(any)?.validate_as(Part::AnyValue)?;
                    decoded
                        .merge(any)
                        .map_err(|_| wire_error("a log body does not decode"))?;
                }
            }
            body = Some(body_list.push_owned(decoded));
        }

        let scratch = &mut self.scratch;
        self.event_name.append_value(f.event_name);
        append_id(&mut self.trace_id, f.trace_id, scratch);
        append_id(&mut self.span_id, f.span_id, scratch);
        self.time.append_value(f.time as i64);
        self.observed_time.append_value(f.observed_time as i64);
        self.severity_number.append_value(encode::severity_number(
            f.severity_number,
            self.severity_format,
            scratch,
        ));
        self.severity_text.append_value(f.severity_text);
        match (&mut self.body, body) {
            (Body::Text(column), Some(value)) => {
                match wire_attrs::value_text(value, body_list, scratch) {
                    Some(text) => column.append_value(text),
                    None => column.append_null(),
                }
            }
            (Body::Text(column), None) => column.append_null(),
            (Body::Variant(column), Some(value)) => column.append_value_ref(value, body_list),
            (Body::Variant(column), None) => column.append_null(),
        }
        self.attributes.append_refs(attributes, scratch);
        self.dropped_attributes
            .append_value(f.dropped_attributes as i32);
        self.flags.append_value(f.flags as i32);
        Ok(if f.time != 0 { f.time } else { f.observed_time })
    }
}
