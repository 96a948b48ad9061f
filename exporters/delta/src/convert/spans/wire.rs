//! Spans straight from wire bytes: walks a validated `ExportTraceServiceRequest` with
//! [`otlake_core::wire::FieldCursor`] and appends to the same builders as [`SpanRows::append`], borrowing
//! strings and ids from the buffer. No prost struct is built for spans, events, links, statuses or attributes
//! with scalar values (or arrays of them); `Resource` and `InstrumentationScope` are decoded with prost once
//! per group (`wire_groups`), other nested attribute values as `wire_attrs` explains.
//!
//! Semantics are prost's, field for field, as the differential tests check against the decoded path: a scalar
//! field given twice keeps its last value, repeated fields append, a message field given twice merges, unknown
//! fields are skipped, and whatever prost refuses is an error here (wire types of known fields, UTF-8,
//! lengths, recursion limit).
//!
//! On error the rows appended so far are not rolled back: see [`crate::convert::Rows::append_wire`].

use otlake_core::wire::{FieldCursor, WireError};

use super::super::columns::append_id;
use super::super::wire_attrs::{AttrList, bytes, fixed32, fixed64, message, string, varint};
use super::super::wire_groups::{Group, WireItems, walk_request};
use super::SpanRows;
use crate::encode;

/// The scalar fields of one span (their last values on the wire).
#[derive(Default)]
struct SpanFields<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a str,
    parent_span_id: &'a [u8],
    name: &'a str,
    kind: i32,
    start: u64,
    end: u64,
    dropped_attributes: u32,
    dropped_events: u32,
    dropped_links: u32,
    status_message: &'a str,
    status_code: i32,
    flags: u32,
}

/// Attribute lists reused across the spans of one call.
#[derive(Default)]
struct Lists<'a> {
    span: AttrList<'a>,
    item: AttrList<'a>,
}

/// The spans of one request going into a [`SpanRows`].
struct SpanItems<'r, 'a> {
    rows: &'r mut SpanRows,
    lists: Lists<'a>,
}

impl<'a> WireItems<'a> for SpanItems<'_, 'a> {
    fn append_item(&mut self, span: FieldCursor<'a>, group: &Group<'_>) -> Result<(), WireError> {
        let rows = &mut *self.rows;
        let start = rows.append_span_wire(span, &mut self.lists)?;
        rows.group.append(
            start,
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

impl SpanRows {
    /// Appends every span of a wire request; returns how many.
    pub(crate) fn append_wire(&mut self, request: &[u8]) -> Result<usize, WireError> {
        let before = self.rows;
        let mut items = SpanItems {
            rows: self,
            lists: Lists::default(),
        };
        walk_request(request, &mut items)?;
        Ok(self.rows - before)
    }

    /// Appends one span's own columns; returns its start time (for the v2 columns).
    fn append_span_wire<'a>(
        &mut self,
        span: FieldCursor<'a>,
        lists: &mut Lists<'a>,
    ) -> Result<u64, WireError> {
        let mut f = SpanFields::default();
        lists.span.clear();
        let (mut events, mut links) = (0, 0);
        let mut fields = span;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                1 => f.trace_id = bytes(field)?,
                2 => f.span_id = bytes(field)?,
                3 => f.trace_state = string(field)?,
                4 => f.parent_span_id = bytes(field)?,
                5 => f.name = string(field)?,
                6 => f.kind = varint(field)? as i32,
                7 => f.start = fixed64(field)?,
                8 => f.end = fixed64(field)?,
                9 => {
                    let body = message(field)?;
                    lists.span.read_key_value(span.enter(body)?, body)?;
                }
                10 => f.dropped_attributes = varint(field)? as u32,
                11 => {
                    self.append_event(span.enter(message(field)?)?, &mut lists.item)?;
                    events += 1;
                }
                12 => f.dropped_events = varint(field)? as u32,
                13 => {
                    self.append_link(span.enter(message(field)?)?, &mut lists.item)?;
                    links += 1;
                }
                14 => f.dropped_links = varint(field)? as u32,
                15 => read_status(span.enter(message(field)?)?, &mut f)?,
                16 => f.flags = fixed32(field)?,
                _ => {}
            }
        }

        let scratch = &mut self.scratch;
        append_id(&mut self.trace_id, f.trace_id, scratch);
        append_id(&mut self.span_id, f.span_id, scratch);
        self.trace_state.append_value(f.trace_state);
        append_id(&mut self.parent_span_id, f.parent_span_id, scratch);
        self.flags.append_value(f.flags as i32);
        self.name.append_value(f.name);
        self.kind.append_value(encode::span_kind(f.kind, scratch));
        self.start.append_value(f.start as i64);
        self.end.append_value(f.end as i64);
        self.attributes.append_refs(&lists.span, scratch);
        self.dropped_attributes
            .append_value(f.dropped_attributes as i32);
        self.events.close(events);
        self.dropped_events.append_value(f.dropped_events as i32);
        self.links.close(links);
        self.dropped_links.append_value(f.dropped_links as i32);
        // As in `append_span`: no status is status UNSET, never NULL.
        self.status.message.append_value(f.status_message);
        self.status
            .code
            .append_value(encode::status_code(f.status_code, scratch));
        self.status.nulls.append_non_null();
        Ok(f.start)
    }

    fn append_event<'a>(
        &mut self,
        event: FieldCursor<'a>,
        list: &mut AttrList<'a>,
    ) -> Result<(), WireError> {
        list.clear();
        let (mut time, mut name, mut dropped) = (0u64, "", 0u32);
        let mut fields = event;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                1 => time = fixed64(field)?,
                2 => name = string(field)?,
                3 => {
                    let body = message(field)?;
                    list.read_key_value(event.enter(body)?, body)?;
                }
                4 => dropped = varint(field)? as u32,
                _ => {}
            }
        }
        let events = &mut self.events.values;
        events.time.append_value(time as i64);
        events.name.append_value(name);
        events.attributes.append_refs(list, &mut self.scratch);
        events.dropped.append_value(dropped as i32);
        Ok(())
    }

    fn append_link<'a>(
        &mut self,
        link: FieldCursor<'a>,
        list: &mut AttrList<'a>,
    ) -> Result<(), WireError> {
        list.clear();
        let (mut trace_id, mut span_id, mut trace_state) = (&[][..], &[][..], "");
        let (mut dropped, mut flags) = (0u32, 0u32);
        let mut fields = link;
        while let Some((tag, field)) = fields.next_field()? {
            match tag {
                1 => trace_id = bytes(field)?,
                2 => span_id = bytes(field)?,
                3 => trace_state = string(field)?,
                4 => {
                    let body = message(field)?;
                    list.read_key_value(link.enter(body)?, body)?;
                }
                5 => dropped = varint(field)? as u32,
                6 => flags = fixed32(field)?,
                _ => {}
            }
        }
        let scratch = &mut self.scratch;
        let links = &mut self.links.values;
        append_id(&mut links.trace_id, trace_id, scratch);
        append_id(&mut links.span_id, span_id, scratch);
        links.trace_state.append_value(trace_state);
        links.attributes.append_refs(list, scratch);
        links.dropped.append_value(dropped as i32);
        links.flags.append_value(flags as i32);
        Ok(())
    }
}

/// Reads a `Status` into `f` (a status given twice merges, field by field, as prost merges it).
fn read_status<'a>(mut fields: FieldCursor<'a>, f: &mut SpanFields<'a>) -> Result<(), WireError> {
    while let Some((tag, field)) = fields.next_field()? {
        match tag {
            2 => f.status_message = string(field)?,
            3 => f.status_code = varint(field)? as i32,
            _ => {}
        }
    }
    Ok(())
}
