//! Spans → rows of the spans table (v1 and v2), one row per span, resource and scope repeated on every row:
//! from decoded requests here, from wire bytes in [`wire`].

mod wire;

use deltalake::arrow::array::NullBufferBuilder;
use deltalake::arrow::array::{ArrayRef, Int32Builder, Int64Builder, StringBuilder};
use deltalake::arrow::datatypes::{DataType, SchemaRef};
use deltalake::arrow::record_batch::RecordBatch;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::trace::v1::Span;

use super::column::{ArrowResult, Column, child, finish_batch, finish_struct};
use super::columns::{AttrColumn, Encoding, GroupColumns, ListColumn, append_id};
use super::presized::Presized;
use crate::encode;

/// `STRUCT<time_unix_nano, name, attributes, dropped_attributes_count>`.
struct EventColumn {
    time: Presized<Int64Builder>,
    name: Presized<StringBuilder>,
    attributes: AttrColumn,
    dropped: Presized<Int32Builder>,
}

impl Column for EventColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        finish_struct(data_type, None, |f| {
            Ok(vec![
                self.time.finish_as(child(f, 0)?)?,
                self.name.finish_as(child(f, 1)?)?,
                self.attributes.finish_as(child(f, 2)?)?,
                self.dropped.finish_as(child(f, 3)?)?,
            ])
        })
    }
}

/// `STRUCT<trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags>`.
struct LinkColumn {
    trace_id: Presized<StringBuilder>,
    span_id: Presized<StringBuilder>,
    trace_state: Presized<StringBuilder>,
    attributes: AttrColumn,
    dropped: Presized<Int32Builder>,
    flags: Presized<Int32Builder>,
}

impl Column for LinkColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        finish_struct(data_type, None, |f| {
            Ok(vec![
                self.trace_id.finish_as(child(f, 0)?)?,
                self.span_id.finish_as(child(f, 1)?)?,
                self.trace_state.finish_as(child(f, 2)?)?,
                self.attributes.finish_as(child(f, 3)?)?,
                self.dropped.finish_as(child(f, 4)?)?,
                self.flags.finish_as(child(f, 5)?)?,
            ])
        })
    }
}

/// `STRUCT<message, code>`.
struct StatusColumn {
    message: Presized<StringBuilder>,
    code: Presized<StringBuilder>,
    nulls: NullBufferBuilder,
}

impl Column for StatusColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        finish_struct(data_type, nulls, |f| {
            Ok(vec![
                self.message.finish_as(child(f, 0)?)?,
                self.code.finish_as(child(f, 1)?)?,
            ])
        })
    }
}

/// Builds record batches of the spans table.
pub(crate) struct SpanRows {
    rows: usize,
    trace_id: Presized<StringBuilder>,
    span_id: Presized<StringBuilder>,
    trace_state: Presized<StringBuilder>,
    parent_span_id: Presized<StringBuilder>,
    flags: Presized<Int32Builder>,
    name: Presized<StringBuilder>,
    kind: Presized<StringBuilder>,
    start: Presized<Int64Builder>,
    end: Presized<Int64Builder>,
    attributes: AttrColumn,
    dropped_attributes: Presized<Int32Builder>,
    events: ListColumn<EventColumn>,
    dropped_events: Presized<Int32Builder>,
    links: ListColumn<LinkColumn>,
    dropped_links: Presized<Int32Builder>,
    status: StatusColumn,
    group: GroupColumns,
    scratch: String,
}

impl SpanRows {
    pub(crate) fn new(encoding: Encoding) -> Self {
        SpanRows {
            rows: 0,
            trace_id: Presized::default(),
            span_id: Presized::default(),
            trace_state: Presized::default(),
            parent_span_id: Presized::default(),
            flags: Presized::default(),
            name: Presized::default(),
            kind: Presized::default(),
            start: Presized::default(),
            end: Presized::default(),
            attributes: AttrColumn::new(encoding),
            dropped_attributes: Presized::default(),
            events: ListColumn::new(EventColumn {
                time: Presized::default(),
                name: Presized::default(),
                attributes: AttrColumn::new(encoding),
                dropped: Presized::default(),
            }),
            dropped_events: Presized::default(),
            links: ListColumn::new(LinkColumn {
                trace_id: Presized::default(),
                span_id: Presized::default(),
                trace_state: Presized::default(),
                attributes: AttrColumn::new(encoding),
                dropped: Presized::default(),
                flags: Presized::default(),
            }),
            dropped_links: Presized::default(),
            status: StatusColumn {
                message: Presized::default(),
                code: Presized::default(),
                nulls: NullBufferBuilder::new(0),
            },
            group: GroupColumns::new(encoding, "span_schema_url"),
            scratch: String::with_capacity(64),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// Appends every span of `request`; returns how many.
    pub(crate) fn append(&mut self, request: &ExportTraceServiceRequest) -> usize {
        let before = self.rows;
        for rs in &request.resource_spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    self.append_span(span);
                    self.group.append(
                        span.start_time_unix_nano,
                        (rs.resource.as_ref(), &rs.schema_url),
                        (ss.scope.as_ref(), &ss.schema_url),
                        &mut self.scratch,
                    );
                    self.rows += 1;
                }
            }
        }
        self.group.forget_resource();
        self.group.forget_scope();
        self.rows - before
    }

    fn append_span(&mut self, span: &Span) {
        let scratch = &mut self.scratch;
        append_id(&mut self.trace_id, &span.trace_id, scratch);
        append_id(&mut self.span_id, &span.span_id, scratch);
        self.trace_state.append_value(&span.trace_state);
        append_id(&mut self.parent_span_id, &span.parent_span_id, scratch);
        self.flags.append_value(span.flags as i32);
        self.name.append_value(&span.name);
        self.kind
            .append_value(encode::span_kind(span.kind, scratch));
        self.start.append_value(span.start_time_unix_nano as i64);
        self.end.append_value(span.end_time_unix_nano as i64);
        self.attributes.append(&span.attributes, scratch);
        self.dropped_attributes
            .append_value(span.dropped_attributes_count as i32);

        let events = &mut self.events.values;
        for event in &span.events {
            events.time.append_value(event.time_unix_nano as i64);
            events.name.append_value(&event.name);
            events.attributes.append(&event.attributes, scratch);
            events
                .dropped
                .append_value(event.dropped_attributes_count as i32);
        }
        self.events.close(span.events.len());
        self.dropped_events
            .append_value(span.dropped_events_count as i32);

        let links = &mut self.links.values;
        for link in &span.links {
            append_id(&mut links.trace_id, &link.trace_id, scratch);
            append_id(&mut links.span_id, &link.span_id, scratch);
            links.trace_state.append_value(&link.trace_state);
            links.attributes.append(&link.attributes, scratch);
            links
                .dropped
                .append_value(link.dropped_attributes_count as i32);
            links.flags.append_value(link.flags as i32);
        }
        self.links.close(span.links.len());
        self.dropped_links
            .append_value(span.dropped_links_count as i32);

        // A span without a status has status UNSET: write it as such rather than NULL, so that
        // `status.code = 'STATUS_CODE_UNSET'` finds it.
        let (message, code) = span
            .status
            .as_ref()
            .map_or(("", 0), |s| (s.message.as_str(), s.code));
        self.status.message.append_value(message);
        self.status
            .code
            .append_value(encode::status_code(code, scratch));
        self.status.nulls.append_non_null();
    }

    /// Finishes the rows appended so far into one record batch of `schema`; the builder is empty afterwards.
    pub(crate) fn finish(&mut self, schema: &SchemaRef) -> ArrowResult<RecordBatch> {
        self.rows = 0;
        let mut columns: Vec<(&str, &mut dyn Column)> = vec![
            ("trace_id", &mut self.trace_id),
            ("span_id", &mut self.span_id),
            ("trace_state", &mut self.trace_state),
            ("parent_span_id", &mut self.parent_span_id),
            ("flags", &mut self.flags),
            ("name", &mut self.name),
            ("kind", &mut self.kind),
            ("start_time_unix_nano", &mut self.start),
            ("end_time_unix_nano", &mut self.end),
            ("attributes", &mut self.attributes),
            ("dropped_attributes_count", &mut self.dropped_attributes),
            ("events", &mut self.events),
            ("dropped_events_count", &mut self.dropped_events),
            ("links", &mut self.links),
            ("dropped_links_count", &mut self.dropped_links),
            ("status", &mut self.status),
        ];
        self.group.add(&mut columns);
        finish_batch(schema, columns)
    }
}
