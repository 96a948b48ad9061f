//! Log records → rows of the logs table (v1). The body becomes text by the AnyValue rules: a string as is,
//! numbers and booleans as text, arrays and maps as JSON, bytes as base64; an absent body is NULL.

use std::sync::Arc;

use deltalake::arrow::array::{Int32Builder, Int64Builder, StringBuilder};
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::logs::v1::LogRecord;

use super::columns::{ArrowResult, Column, MapColumn, ResourceColumn, ScopeColumn, append_id};
use crate::config::SeverityNumberFormat;
use crate::encode;

/// Builds record batches of the logs table.
pub(crate) struct LogRows {
    rows: usize,
    severity_format: SeverityNumberFormat,
    event_name: StringBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    time: Int64Builder,
    observed_time: Int64Builder,
    severity_number: StringBuilder,
    severity_text: StringBuilder,
    body: StringBuilder,
    attributes: MapColumn,
    dropped_attributes: Int32Builder,
    flags: Int32Builder,
    resource: ResourceColumn,
    resource_schema_url: StringBuilder,
    scope: ScopeColumn,
    log_schema_url: StringBuilder,
    scratch: String,
}

impl LogRows {
    pub(crate) fn new(severity_format: SeverityNumberFormat) -> Self {
        LogRows {
            rows: 0,
            severity_format,
            event_name: StringBuilder::new(),
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            time: Int64Builder::new(),
            observed_time: Int64Builder::new(),
            severity_number: StringBuilder::new(),
            severity_text: StringBuilder::new(),
            body: StringBuilder::new(),
            attributes: MapColumn::new(),
            dropped_attributes: Int32Builder::new(),
            flags: Int32Builder::new(),
            resource: ResourceColumn::new(),
            resource_schema_url: StringBuilder::new(),
            scope: ScopeColumn::new(),
            log_schema_url: StringBuilder::new(),
            scratch: String::with_capacity(64),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// Appends every log record of `request`; returns how many.
    pub(crate) fn append(&mut self, request: &ExportLogsServiceRequest) -> usize {
        let before = self.rows;
        for rl in &request.resource_logs {
            for sl in &rl.scope_logs {
                for record in &sl.log_records {
                    self.append_record(record);
                    self.resource
                        .append(rl.resource.as_ref(), &mut self.scratch);
                    self.resource_schema_url.append_value(&rl.schema_url);
                    self.scope.append(sl.scope.as_ref(), &mut self.scratch);
                    self.log_schema_url.append_value(&sl.schema_url);
                    self.rows += 1;
                }
            }
        }
        self.rows - before
    }

    fn append_record(&mut self, record: &LogRecord) {
        let scratch = &mut self.scratch;
        self.event_name.append_value(&record.event_name);
        append_id(&mut self.trace_id, &record.trace_id, scratch);
        append_id(&mut self.span_id, &record.span_id, scratch);
        self.time.append_value(record.time_unix_nano as i64);
        self.observed_time
            .append_value(record.observed_time_unix_nano as i64);
        self.severity_number.append_value(encode::severity_number(
            record.severity_number,
            self.severity_format,
            scratch,
        ));
        self.severity_text.append_value(&record.severity_text);
        match record
            .body
            .as_ref()
            .and_then(|b| encode::any_value_text(b, scratch))
        {
            Some(text) => self.body.append_value(text),
            None => self.body.append_null(),
        }
        self.attributes.append(&record.attributes, scratch);
        self.dropped_attributes
            .append_value(record.dropped_attributes_count as i32);
        self.flags.append_value(record.flags as i32);
    }

    /// Finishes the rows appended so far into one record batch of `schema`; the builder is empty afterwards.
    pub(crate) fn finish(&mut self, schema: &SchemaRef) -> ArrowResult<RecordBatch> {
        super::expect_columns(schema, 15)?;
        let f = |i: usize| schema.field(i).data_type();
        let columns = vec![
            self.event_name.finish_as(f(0))?,
            self.trace_id.finish_as(f(1))?,
            self.span_id.finish_as(f(2))?,
            self.time.finish_as(f(3))?,
            self.observed_time.finish_as(f(4))?,
            self.severity_number.finish_as(f(5))?,
            self.severity_text.finish_as(f(6))?,
            self.body.finish_as(f(7))?,
            self.attributes.finish_as(f(8))?,
            self.dropped_attributes.finish_as(f(9))?,
            self.flags.finish_as(f(10))?,
            self.resource.finish_as(f(11))?,
            self.resource_schema_url.finish_as(f(12))?,
            self.scope.finish_as(f(13))?,
            self.log_schema_url.finish_as(f(14))?,
        ];
        self.rows = 0;
        RecordBatch::try_new(Arc::clone(schema), columns)
    }
}
