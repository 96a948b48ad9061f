//! The v1 table schemas, field by field as in the OTel tables reference (docs/otel-tables.md).
//!
//! Every column is nullable, as a Spark `CREATE TABLE` without `NOT NULL` makes it; maps may hold null values
//! and arrays null elements, as Spark's `MAP<STRING,STRING>` and `ARRAY<...>` do. Only map keys are never null.

use deltalake::kernel::{ArrayType, DataType, MapType, StructField, StructType};

pub(crate) fn field(name: &str, data_type: impl Into<DataType>) -> StructField {
    StructField::new(name, data_type, true)
}

/// Schema construction fails only on duplicate field names, i.e. a bug here; the error says which.
pub(crate) type Built<T> = Result<T, String>;

pub(crate) fn strukt(fields: impl IntoIterator<Item = StructField>) -> Built<DataType> {
    DataType::try_struct_type(fields).map_err(|e| e.to_string())
}

pub(crate) fn top(fields: Vec<StructField>) -> Built<StructType> {
    StructType::try_new(fields).map_err(|e| e.to_string())
}

pub(crate) fn array(element: impl Into<DataType>) -> DataType {
    DataType::Array(Box::new(ArrayType::new(element.into(), true)))
}

/// `MAP<STRING,STRING>`.
pub(crate) fn string_map() -> DataType {
    DataType::Map(Box::new(MapType::new(
        DataType::STRING,
        DataType::STRING,
        true,
    )))
}

/// `R`: the resource struct. `attributes` is passed in so v2 can make it a VARIANT.
pub(crate) fn resource(attributes: DataType) -> Built<DataType> {
    strukt([
        field("attributes", attributes),
        field("dropped_attributes_count", DataType::INTEGER),
    ])
}

/// `S`: the instrumentation scope struct.
pub(crate) fn scope(attributes: DataType) -> Built<DataType> {
    strukt([
        field("name", DataType::STRING),
        field("version", DataType::STRING),
        field("attributes", attributes),
        field("dropped_attributes_count", DataType::INTEGER),
    ])
}

/// `X`: the exemplars array.
pub(crate) fn exemplars(attributes: DataType) -> Built<DataType> {
    Ok(array(strukt([
        field("time_unix_nano", DataType::LONG),
        field("value", DataType::DOUBLE),
        field("span_id", DataType::STRING),
        field("trace_id", DataType::STRING),
        field("filtered_attributes", attributes),
    ])?))
}

/// The spans table's columns, with `attrs` as the type of every attribute map.
pub(crate) fn span_fields(attrs: &DataType) -> Built<Vec<StructField>> {
    Ok(vec![
        field("trace_id", DataType::STRING),
        field("span_id", DataType::STRING),
        field("trace_state", DataType::STRING),
        field("parent_span_id", DataType::STRING),
        field("flags", DataType::INTEGER),
        field("name", DataType::STRING),
        field("kind", DataType::STRING),
        field("start_time_unix_nano", DataType::LONG),
        field("end_time_unix_nano", DataType::LONG),
        field("attributes", attrs.clone()),
        field("dropped_attributes_count", DataType::INTEGER),
        field(
            "events",
            array(strukt([
                field("time_unix_nano", DataType::LONG),
                field("name", DataType::STRING),
                field("attributes", attrs.clone()),
                field("dropped_attributes_count", DataType::INTEGER),
            ])?),
        ),
        field("dropped_events_count", DataType::INTEGER),
        field(
            "links",
            array(strukt([
                field("trace_id", DataType::STRING),
                field("span_id", DataType::STRING),
                field("trace_state", DataType::STRING),
                field("attributes", attrs.clone()),
                field("dropped_attributes_count", DataType::INTEGER),
                field("flags", DataType::INTEGER),
            ])?),
        ),
        field("dropped_links_count", DataType::INTEGER),
        field(
            "status",
            strukt([
                field("message", DataType::STRING),
                field("code", DataType::STRING),
            ])?,
        ),
        field("resource", resource(attrs.clone())?),
        field("resource_schema_url", DataType::STRING),
        field("instrumentation_scope", scope(attrs.clone())?),
        field("span_schema_url", DataType::STRING),
    ])
}

/// The logs table's columns; `body` is `STRING` in v1 and `VARIANT` in v2.
pub(crate) fn log_fields(attrs: &DataType, body: DataType) -> Built<Vec<StructField>> {
    Ok(vec![
        field("event_name", DataType::STRING),
        field("trace_id", DataType::STRING),
        field("span_id", DataType::STRING),
        field("time_unix_nano", DataType::LONG),
        field("observed_time_unix_nano", DataType::LONG),
        field("severity_number", DataType::STRING),
        field("severity_text", DataType::STRING),
        field("body", body),
        field("attributes", attrs.clone()),
        field("dropped_attributes_count", DataType::INTEGER),
        field("flags", DataType::INTEGER),
        field("resource", resource(attrs.clone())?),
        field("resource_schema_url", DataType::STRING),
        field("instrumentation_scope", scope(attrs.clone())?),
        field("log_schema_url", DataType::STRING),
    ])
}

/// The five metric type structs. With `with_times` false (v2) the start and end times are not repeated inside
/// them, since v2 has them as top-level columns.
pub(crate) fn metric_type_fields(attrs: &DataType, with_times: bool) -> Built<Vec<StructField>> {
    let times = |rest: Vec<StructField>| -> Vec<StructField> {
        let mut fields = Vec::new();
        if with_times {
            fields.push(field("start_time_unix_nano", DataType::LONG));
            fields.push(field("time_unix_nano", DataType::LONG));
        }
        fields.extend(rest);
        fields
    };
    let buckets = || {
        strukt([
            field("offset", DataType::INTEGER),
            field("bucket_counts", array(DataType::LONG)),
        ])
    };
    let mut exp_fields = vec![field("attributes", attrs.clone())];
    if with_times {
        exp_fields.push(field("start_time_unix_nano", DataType::LONG));
        exp_fields.push(field("time_unix_nano", DataType::LONG));
    }
    exp_fields.extend([
        field("count", DataType::LONG),
        field("sum", DataType::DOUBLE),
        field("scale", DataType::INTEGER),
        field("zero_count", DataType::LONG),
        field("positive_bucket", buckets()?),
        field("negative_bucket", buckets()?),
        field("flags", DataType::INTEGER),
        field("exemplars", exemplars(attrs.clone())?),
        field("min", DataType::DOUBLE),
        field("max", DataType::DOUBLE),
        field("zero_threshold", DataType::DOUBLE),
        field("aggregation_temporality", DataType::STRING),
    ]);
    Ok(vec![
        field(
            "gauge",
            strukt(times(vec![
                field("value", DataType::DOUBLE),
                field("exemplars", exemplars(attrs.clone())?),
                field("attributes", attrs.clone()),
                field("flags", DataType::INTEGER),
            ]))?,
        ),
        field(
            "sum",
            strukt(times(vec![
                field("value", DataType::DOUBLE),
                field("exemplars", exemplars(attrs.clone())?),
                field("attributes", attrs.clone()),
                field("flags", DataType::INTEGER),
                field("aggregation_temporality", DataType::STRING),
                field("is_monotonic", DataType::BOOLEAN),
            ]))?,
        ),
        field(
            "histogram",
            strukt(times(vec![
                field("count", DataType::LONG),
                field("sum", DataType::DOUBLE),
                field("bucket_counts", array(DataType::LONG)),
                field("explicit_bounds", array(DataType::DOUBLE)),
                field("exemplars", exemplars(attrs.clone())?),
                field("attributes", attrs.clone()),
                field("flags", DataType::INTEGER),
                field("min", DataType::DOUBLE),
                field("max", DataType::DOUBLE),
                field("aggregation_temporality", DataType::STRING),
            ]))?,
        ),
        field("exponential_histogram", strukt(exp_fields)?),
        field(
            "summary",
            strukt(times(vec![
                field("count", DataType::LONG),
                field("sum", DataType::DOUBLE),
                field(
                    "quantile_values",
                    array(strukt([
                        field("quantile", DataType::DOUBLE),
                        field("value", DataType::DOUBLE),
                    ])?),
                ),
                field("attributes", attrs.clone()),
                field("flags", DataType::INTEGER),
            ]))?,
        ),
    ])
}

pub(crate) fn spans() -> Built<StructType> {
    top(span_fields(&string_map())?)
}

pub(crate) fn logs() -> Built<StructType> {
    top(log_fields(&string_map(), DataType::STRING)?)
}

pub(crate) fn metrics() -> Built<StructType> {
    let attrs = string_map();
    let mut fields = vec![
        field("name", DataType::STRING),
        field("description", DataType::STRING),
        field("unit", DataType::STRING),
        field("metric_type", DataType::STRING),
    ];
    fields.extend(metric_type_fields(&attrs, true)?);
    fields.extend([
        field("metadata", attrs.clone()),
        field("resource", resource(attrs.clone())?),
        field("resource_schema_url", DataType::STRING),
        field("instrumentation_scope", scope(attrs)?),
        field("metric_schema_url", DataType::STRING),
    ]);
    top(fields)
}
