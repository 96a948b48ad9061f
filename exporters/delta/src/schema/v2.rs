//! The v2 table schemas: v1's columns with `VARIANT` attribute maps, log body and metric metadata, plus
//! `record_id`, `time`, `date` (the partition column) and `service_name` in front; metric start and end times
//! move to top-level columns. The position of the added columns is otlake's choice (the reference names them
//! but not where they go); queries select by name, so it matters only for `INSERT INTO ... SELECT *`.

use deltalake::kernel::{DataType, StructField, StructType};

use super::v1::{Built, field, log_fields, metric_type_fields, resource, scope, span_fields, top};

fn variant() -> DataType {
    DataType::unshredded_variant()
}

fn leading() -> Vec<StructField> {
    vec![
        field("record_id", DataType::STRING),
        field("time", DataType::TIMESTAMP),
        field("date", DataType::DATE),
        field("service_name", DataType::STRING),
    ]
}

pub(crate) fn spans() -> Built<StructType> {
    let mut fields = leading();
    fields.extend(span_fields(&variant())?);
    top(fields)
}

pub(crate) fn logs() -> Built<StructType> {
    let mut fields = leading();
    fields.extend(log_fields(&variant(), variant())?);
    top(fields)
}

pub(crate) fn metrics() -> Built<StructType> {
    let attrs = variant();
    let mut fields = leading();
    fields.extend([
        field("name", DataType::STRING),
        field("description", DataType::STRING),
        field("unit", DataType::STRING),
        field("metric_type", DataType::STRING),
        field("start_time_unix_nano", DataType::LONG),
        field("time_unix_nano", DataType::LONG),
    ]);
    fields.extend(metric_type_fields(&attrs, false)?);
    fields.extend([
        field("metadata", attrs.clone()),
        field("resource", resource(attrs.clone())?),
        field("resource_schema_url", DataType::STRING),
        field("instrumentation_scope", scope(attrs)?),
        field("metric_schema_url", DataType::STRING),
    ]);
    top(fields)
}
