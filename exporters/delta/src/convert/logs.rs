//! Log records → rows of the logs table (v1 and v2). The body becomes text by the AnyValue rules (v1): a
//! string as is, numbers and booleans as text, arrays and maps as JSON, bytes as base64; an absent body is
//! NULL. From decoded requests here, from wire bytes in [`wire`].

mod wire;

use deltalake::arrow::array::{Int32Builder, Int64Builder, StringBuilder};
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::logs::v1::LogRecord;

use super::column::{ArrowResult, Column, finish_batch};
use super::columns::{AttrColumn, Encoding, GroupColumns, VariantColumn, append_id};
use super::presized::Presized;
use super::variant::Root;
use crate::config::SeverityNumberFormat;
use crate::encode;

/// Builds record batches of the logs table.
pub(crate) struct LogRows {
    rows: usize,
    severity_format: SeverityNumberFormat,
    event_name: Presized<StringBuilder>,
    trace_id: Presized<StringBuilder>,
    span_id: Presized<StringBuilder>,
    time: Presized<Int64Builder>,
    observed_time: Presized<Int64Builder>,
    severity_number: Presized<StringBuilder>,
    severity_text: Presized<StringBuilder>,
    body: Body,
    attributes: AttrColumn,
    dropped_attributes: Presized<Int32Builder>,
    flags: Presized<Int32Builder>,
    group: GroupColumns,
    scratch: String,
}

/// The log body: text (v1) or a Variant of the AnyValue (v2).
enum Body {
    Text(Presized<StringBuilder>),
    Variant(Box<VariantColumn>),
}

impl Column for Body {
    fn finish_as(
        &mut self,
        data_type: &deltalake::arrow::datatypes::DataType,
    ) -> ArrowResult<deltalake::arrow::array::ArrayRef> {
        match self {
            Body::Text(b) => b.finish_as(data_type),
            Body::Variant(v) => v.finish_as(data_type),
        }
    }
}

impl LogRows {
    pub(crate) fn new(severity_format: SeverityNumberFormat, encoding: Encoding) -> Self {
        LogRows {
            rows: 0,
            severity_format,
            event_name: Presized::default(),
            trace_id: Presized::default(),
            span_id: Presized::default(),
            time: Presized::default(),
            observed_time: Presized::default(),
            severity_number: Presized::default(),
            severity_text: Presized::default(),
            body: match encoding {
                Encoding::Text => Body::Text(Presized::default()),
                Encoding::Variant => Body::Variant(Box::new(VariantColumn::new())),
            },
            attributes: AttrColumn::new(encoding),
            dropped_attributes: Presized::default(),
            flags: Presized::default(),
            group: GroupColumns::new(encoding, "log_schema_url"),
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
                    // A record without a time keeps its observed time as `time` (v2).
                    let time = if record.time_unix_nano != 0 {
                        record.time_unix_nano
                    } else {
                        record.observed_time_unix_nano
                    };
                    self.group.append(
                        time,
                        (rl.resource.as_ref(), &rl.schema_url),
                        (sl.scope.as_ref(), &sl.schema_url),
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
        match &mut self.body {
            Body::Text(body) => match record
                .body
                .as_ref()
                .and_then(|b| encode::any_value_text(b, scratch))
            {
                Some(text) => body.append_value(text),
                None => body.append_null(),
            },
            Body::Variant(body) => match &record.body {
                Some(value) => body.append(Root::Value(value)),
                None => body.append_null(),
            },
        }
        self.attributes.append(&record.attributes, scratch);
        self.dropped_attributes
            .append_value(record.dropped_attributes_count as i32);
        self.flags.append_value(record.flags as i32);
    }

    /// Finishes the rows appended so far into one record batch of `schema`; the builder is empty afterwards.
    pub(crate) fn finish(&mut self, schema: &SchemaRef) -> ArrowResult<RecordBatch> {
        self.rows = 0;
        let mut columns: Vec<(&str, &mut dyn Column)> = vec![
            ("event_name", &mut self.event_name),
            ("trace_id", &mut self.trace_id),
            ("span_id", &mut self.span_id),
            ("time_unix_nano", &mut self.time),
            ("observed_time_unix_nano", &mut self.observed_time),
            ("severity_number", &mut self.severity_number),
            ("severity_text", &mut self.severity_text),
            ("body", &mut self.body),
            ("attributes", &mut self.attributes),
            ("dropped_attributes_count", &mut self.dropped_attributes),
            ("flags", &mut self.flags),
        ];
        self.group.add(&mut columns);
        finish_batch(schema, columns)
    }
}
