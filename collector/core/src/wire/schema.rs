//! The OTLP messages as the validator sees them: for each message, its known fields with their numbers, names
//! and what they hold, as far as decoding can fail on them. The table is data only; [`super::validate`] walks
//! a request against it and [`super::FieldCursor::validate_as`] checks a part of one.

use crate::Signal;

/// What a known field holds, as far as decoding can fail on it.
#[derive(Clone, Copy)]
pub(super) enum FieldType {
    /// int32/int64/uint32/uint64/sint32/bool/enum: one varint.
    Varint,
    /// fixed32.
    Fixed32,
    /// fixed64, sfixed64, double.
    Fixed64,
    /// bytes: any length-delimited content.
    Bytes,
    /// string: length-delimited UTF-8.
    Str,
    /// A nested message.
    Message(&'static Schema),
    /// repeated uint64: packed (length-delimited varints) or one varint.
    RepeatedVarint,
    /// repeated fixed64/double: packed (length-delimited, 8 bytes each) or one fixed64.
    RepeatedFixed64,
}

pub(super) struct Field {
    pub(super) tag: u32,
    pub(super) name: &'static str,
    pub(super) field_type: FieldType,
}

pub(super) struct Schema {
    pub(super) name: &'static str,
    pub(super) fields: &'static [Field],
}

impl Schema {
    /// The known field numbered `tag`.
    #[inline]
    pub(super) fn field(&self, tag: u32) -> Option<&'static Field> {
        // Most OTLP messages number their fields 1, 2, 3, ... in order: the tag's own slot is looked at first,
        // so the walk does not search a span's 16 fields for each of its attributes.
        match self.fields.get((tag as usize).wrapping_sub(1)) {
            Some(field) if field.tag == tag => Some(field),
            _ => self.fields.iter().find(|field| field.tag == tag),
        }
    }
}

const fn f(tag: u32, name: &'static str, field_type: FieldType) -> Field {
    Field {
        tag,
        name,
        field_type,
    }
}

use FieldType::{Bytes, Fixed32, Fixed64, Message, RepeatedFixed64, RepeatedVarint, Str, Varint};

// The OTLP messages, field for field as opentelemetry-proto 0.33 generates them (proto 1.7); a field missing here
// is skipped as unknown, which is what prost does with it too, so only the wire-type and UTF-8 checks of that
// field would be lost. The differential tests catch a table that disagrees with the generated decoder.

pub(super) static ANY_VALUE: Schema = Schema {
    name: "AnyValue",
    fields: &[
        f(1, "string_value", Str),
        f(2, "bool_value", Varint),
        f(3, "int_value", Varint),
        f(4, "double_value", Fixed64),
        f(5, "array_value", Message(&ARRAY_VALUE)),
        f(6, "kvlist_value", Message(&KEY_VALUE_LIST)),
        f(7, "bytes_value", Bytes),
        f(8, "string_value_strindex", Varint),
    ],
};
static ARRAY_VALUE: Schema = Schema {
    name: "ArrayValue",
    fields: &[f(1, "values", Message(&ANY_VALUE))],
};
static KEY_VALUE_LIST: Schema = Schema {
    name: "KeyValueList",
    fields: &[f(1, "values", Message(&KEY_VALUE))],
};
pub(super) static KEY_VALUE: Schema = Schema {
    name: "KeyValue",
    fields: &[
        f(1, "key", Str),
        f(2, "value", Message(&ANY_VALUE)),
        f(3, "key_strindex", Varint),
    ],
};
pub(super) static SCOPE: Schema = Schema {
    name: "InstrumentationScope",
    fields: &[
        f(1, "name", Str),
        f(2, "version", Str),
        f(3, "attributes", Message(&KEY_VALUE)),
        f(4, "dropped_attributes_count", Varint),
    ],
};
static ENTITY_REF: Schema = Schema {
    name: "EntityRef",
    fields: &[
        f(1, "schema_url", Str),
        f(2, "type", Str),
        f(3, "id_keys", Str),
        f(4, "description_keys", Str),
    ],
};
pub(super) static RESOURCE: Schema = Schema {
    name: "Resource",
    fields: &[
        f(1, "attributes", Message(&KEY_VALUE)),
        f(2, "dropped_attributes_count", Varint),
        f(3, "entity_refs", Message(&ENTITY_REF)),
    ],
};

static TRACES_REQUEST: Schema = Schema {
    name: "ExportTraceServiceRequest",
    fields: &[f(1, "resource_spans", Message(&RESOURCE_SPANS))],
};
static RESOURCE_SPANS: Schema = Schema {
    name: "ResourceSpans",
    fields: &[
        f(1, "resource", Message(&RESOURCE)),
        f(2, "scope_spans", Message(&SCOPE_SPANS)),
        f(3, "schema_url", Str),
    ],
};
static SCOPE_SPANS: Schema = Schema {
    name: "ScopeSpans",
    fields: &[
        f(1, "scope", Message(&SCOPE)),
        f(2, "spans", Message(&SPAN)),
        f(3, "schema_url", Str),
    ],
};
static SPAN: Schema = Schema {
    name: "Span",
    fields: &[
        f(1, "trace_id", Bytes),
        f(2, "span_id", Bytes),
        f(3, "trace_state", Str),
        f(4, "parent_span_id", Bytes),
        f(5, "name", Str),
        f(6, "kind", Varint),
        f(7, "start_time_unix_nano", Fixed64),
        f(8, "end_time_unix_nano", Fixed64),
        f(9, "attributes", Message(&KEY_VALUE)),
        f(10, "dropped_attributes_count", Varint),
        f(11, "events", Message(&SPAN_EVENT)),
        f(12, "dropped_events_count", Varint),
        f(13, "links", Message(&SPAN_LINK)),
        f(14, "dropped_links_count", Varint),
        f(15, "status", Message(&STATUS)),
        f(16, "flags", Fixed32),
    ],
};
static SPAN_EVENT: Schema = Schema {
    name: "Event",
    fields: &[
        f(1, "time_unix_nano", Fixed64),
        f(2, "name", Str),
        f(3, "attributes", Message(&KEY_VALUE)),
        f(4, "dropped_attributes_count", Varint),
    ],
};
static SPAN_LINK: Schema = Schema {
    name: "Link",
    fields: &[
        f(1, "trace_id", Bytes),
        f(2, "span_id", Bytes),
        f(3, "trace_state", Str),
        f(4, "attributes", Message(&KEY_VALUE)),
        f(5, "dropped_attributes_count", Varint),
        f(6, "flags", Fixed32),
    ],
};
static STATUS: Schema = Schema {
    name: "Status",
    fields: &[f(2, "message", Str), f(3, "code", Varint)],
};

static LOGS_REQUEST: Schema = Schema {
    name: "ExportLogsServiceRequest",
    fields: &[f(1, "resource_logs", Message(&RESOURCE_LOGS))],
};
static RESOURCE_LOGS: Schema = Schema {
    name: "ResourceLogs",
    fields: &[
        f(1, "resource", Message(&RESOURCE)),
        f(2, "scope_logs", Message(&SCOPE_LOGS)),
        f(3, "schema_url", Str),
    ],
};
static SCOPE_LOGS: Schema = Schema {
    name: "ScopeLogs",
    fields: &[
        f(1, "scope", Message(&SCOPE)),
        f(2, "log_records", Message(&LOG_RECORD)),
        f(3, "schema_url", Str),
    ],
};
static LOG_RECORD: Schema = Schema {
    name: "LogRecord",
    fields: &[
        f(1, "time_unix_nano", Fixed64),
        f(2, "severity_number", Varint),
        f(3, "severity_text", Str),
        f(5, "body", Message(&ANY_VALUE)),
        f(6, "attributes", Message(&KEY_VALUE)),
        f(7, "dropped_attributes_count", Varint),
        f(8, "flags", Fixed32),
        f(9, "trace_id", Bytes),
        f(10, "span_id", Bytes),
        f(11, "observed_time_unix_nano", Fixed64),
        f(12, "event_name", Str),
    ],
};

static METRICS_REQUEST: Schema = Schema {
    name: "ExportMetricsServiceRequest",
    fields: &[f(1, "resource_metrics", Message(&RESOURCE_METRICS))],
};
static RESOURCE_METRICS: Schema = Schema {
    name: "ResourceMetrics",
    fields: &[
        f(1, "resource", Message(&RESOURCE)),
        f(2, "scope_metrics", Message(&SCOPE_METRICS)),
        f(3, "schema_url", Str),
    ],
};
static SCOPE_METRICS: Schema = Schema {
    name: "ScopeMetrics",
    fields: &[
        f(1, "scope", Message(&SCOPE)),
        f(2, "metrics", Message(&METRIC)),
        f(3, "schema_url", Str),
    ],
};
static METRIC: Schema = Schema {
    name: "Metric",
    fields: &[
        f(1, "name", Str),
        f(2, "description", Str),
        f(3, "unit", Str),
        f(5, "gauge", Message(&GAUGE)),
        f(7, "sum", Message(&SUM)),
        f(9, "histogram", Message(&HISTOGRAM)),
        f(10, "exponential_histogram", Message(&EXPONENTIAL_HISTOGRAM)),
        f(11, "summary", Message(&SUMMARY)),
        f(12, "metadata", Message(&KEY_VALUE)),
    ],
};
pub(super) static GAUGE: Schema = Schema {
    name: "Gauge",
    fields: &[f(1, "data_points", Message(&NUMBER_DATA_POINT))],
};
pub(super) static SUM: Schema = Schema {
    name: "Sum",
    fields: &[
        f(1, "data_points", Message(&NUMBER_DATA_POINT)),
        f(2, "aggregation_temporality", Varint),
        f(3, "is_monotonic", Varint),
    ],
};
pub(super) static HISTOGRAM: Schema = Schema {
    name: "Histogram",
    fields: &[
        f(1, "data_points", Message(&HISTOGRAM_DATA_POINT)),
        f(2, "aggregation_temporality", Varint),
    ],
};
pub(super) static EXPONENTIAL_HISTOGRAM: Schema = Schema {
    name: "ExponentialHistogram",
    fields: &[
        f(1, "data_points", Message(&EXPONENTIAL_HISTOGRAM_DATA_POINT)),
        f(2, "aggregation_temporality", Varint),
    ],
};
pub(super) static SUMMARY: Schema = Schema {
    name: "Summary",
    fields: &[f(1, "data_points", Message(&SUMMARY_DATA_POINT))],
};
static NUMBER_DATA_POINT: Schema = Schema {
    name: "NumberDataPoint",
    fields: &[
        f(2, "start_time_unix_nano", Fixed64),
        f(3, "time_unix_nano", Fixed64),
        f(4, "as_double", Fixed64),
        f(5, "exemplars", Message(&EXEMPLAR)),
        f(6, "as_int", Fixed64),
        f(7, "attributes", Message(&KEY_VALUE)),
        f(8, "flags", Varint),
    ],
};
static HISTOGRAM_DATA_POINT: Schema = Schema {
    name: "HistogramDataPoint",
    fields: &[
        f(2, "start_time_unix_nano", Fixed64),
        f(3, "time_unix_nano", Fixed64),
        f(4, "count", Fixed64),
        f(5, "sum", Fixed64),
        f(6, "bucket_counts", RepeatedFixed64),
        f(7, "explicit_bounds", RepeatedFixed64),
        f(8, "exemplars", Message(&EXEMPLAR)),
        f(9, "attributes", Message(&KEY_VALUE)),
        f(10, "flags", Varint),
        f(11, "min", Fixed64),
        f(12, "max", Fixed64),
    ],
};
static EXPONENTIAL_HISTOGRAM_DATA_POINT: Schema = Schema {
    name: "ExponentialHistogramDataPoint",
    fields: &[
        f(1, "attributes", Message(&KEY_VALUE)),
        f(2, "start_time_unix_nano", Fixed64),
        f(3, "time_unix_nano", Fixed64),
        f(4, "count", Fixed64),
        f(5, "sum", Fixed64),
        f(6, "scale", Varint),
        f(7, "zero_count", Fixed64),
        f(8, "positive", Message(&BUCKETS)),
        f(9, "negative", Message(&BUCKETS)),
        f(10, "flags", Varint),
        f(11, "exemplars", Message(&EXEMPLAR)),
        f(12, "min", Fixed64),
        f(13, "max", Fixed64),
        f(14, "zero_threshold", Fixed64),
    ],
};
static BUCKETS: Schema = Schema {
    name: "Buckets",
    fields: &[
        f(1, "offset", Varint),
        f(2, "bucket_counts", RepeatedVarint),
    ],
};
static SUMMARY_DATA_POINT: Schema = Schema {
    name: "SummaryDataPoint",
    fields: &[
        f(2, "start_time_unix_nano", Fixed64),
        f(3, "time_unix_nano", Fixed64),
        f(4, "count", Fixed64),
        f(5, "sum", Fixed64),
        f(6, "quantile_values", Message(&VALUE_AT_QUANTILE)),
        f(7, "attributes", Message(&KEY_VALUE)),
        f(8, "flags", Varint),
    ],
};
static VALUE_AT_QUANTILE: Schema = Schema {
    name: "ValueAtQuantile",
    fields: &[f(1, "quantile", Fixed64), f(2, "value", Fixed64)],
};
static EXEMPLAR: Schema = Schema {
    name: "Exemplar",
    fields: &[
        f(2, "time_unix_nano", Fixed64),
        f(3, "as_double", Fixed64),
        f(4, "span_id", Bytes),
        f(5, "trace_id", Bytes),
        f(6, "as_int", Fixed64),
        f(7, "filtered_attributes", Message(&KEY_VALUE)),
    ],
};

pub(super) fn request_schema(signal: Signal) -> &'static Schema {
    match signal {
        Signal::Traces => &TRACES_REQUEST,
        Signal::Logs => &LOGS_REQUEST,
        Signal::Metrics => &METRICS_REQUEST,
    }
}
