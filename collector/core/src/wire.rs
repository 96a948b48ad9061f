//! Validation of OTLP protobuf export requests without decoding them.
//!
//! Most pipelines never look inside a request: they count it, batch it, and write or forward it. Decoding into
//! prost's owned types (one allocation per string, id and attribute, freed one by one afterwards) was the largest
//! CPU cost of the receive path, so a receiver keeps the request in its wire form and checks here that it *would*
//! decode: [`validate`] walks every field of every nested message, as prost's decoder does, and refuses exactly
//! the inputs prost refuses (invalid varints and keys, wrong wire types for known fields, lengths beyond the
//! message, invalid UTF-8 in string fields, unbalanced groups, nesting past prost's recursion limit). It
//! allocates nothing. A stage that needs the structured request decodes it later with prost (see
//! [`crate::Payload::request`]), and that decode cannot fail on validated bytes: the differential test in this
//! module's tests and `tests/wire_differential.rs` hold [`validate`] to prost's verdict on mutated inputs.
//!
//! [`count`] reads the item and entry counts of a validated request from its outer levels only.

use crate::Signal;

/// Why a request is not valid OTLP protobuf: where (message and field path) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}{}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
pub struct WireError {
    /// From the outermost message to the field that was wrong, e.g. `ResourceSpans.scope_spans.Span.name`.
    pub path: String,
    pub reason: &'static str,
}

impl WireError {
    fn new(reason: &'static str) -> Self {
        WireError {
            path: String::new(),
            reason,
        }
    }

    /// Prepends `message.field` on the way out of the recursion (error path only).
    fn within(mut self, message: &str, field: &str) -> Self {
        self.path = if self.path.is_empty() {
            format!("{message}.{field}")
        } else {
            format!("{message}.{field}.{}", self.path)
        };
        self
    }
}

/// prost's recursion limit (`prost::RECURSION_LIMIT`, not configurable without a crate feature).
const RECURSION_LIMIT: u32 = 100;

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LENGTH_DELIMITED: u64 = 2;
const START_GROUP: u64 = 3;
const END_GROUP: u64 = 4;
const FIXED32: u64 = 5;

/// What a known field holds, as far as decoding can fail on it.
#[derive(Clone, Copy)]
enum Kind {
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

struct Field {
    tag: u32,
    name: &'static str,
    kind: Kind,
}

struct Schema {
    name: &'static str,
    fields: &'static [Field],
}

const fn f(tag: u32, name: &'static str, kind: Kind) -> Field {
    Field { tag, name, kind }
}

use Kind::{Bytes, Fixed32, Fixed64, Message, RepeatedFixed64, RepeatedVarint, Str, Varint};

// The OTLP messages, field for field as opentelemetry-proto 0.33 generates them (proto 1.7); a field missing here
// is skipped as unknown, which is what prost does with it too, so only the wire-type and UTF-8 checks of that
// field would be lost. The differential tests catch a table that disagrees with the generated decoder.

static ANY_VALUE: Schema = Schema {
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
static KEY_VALUE: Schema = Schema {
    name: "KeyValue",
    fields: &[
        f(1, "key", Str),
        f(2, "value", Message(&ANY_VALUE)),
        f(3, "key_strindex", Varint),
    ],
};
static SCOPE: Schema = Schema {
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
static RESOURCE: Schema = Schema {
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
static GAUGE: Schema = Schema {
    name: "Gauge",
    fields: &[f(1, "data_points", Message(&NUMBER_DATA_POINT))],
};
static SUM: Schema = Schema {
    name: "Sum",
    fields: &[
        f(1, "data_points", Message(&NUMBER_DATA_POINT)),
        f(2, "aggregation_temporality", Varint),
        f(3, "is_monotonic", Varint),
    ],
};
static HISTOGRAM: Schema = Schema {
    name: "Histogram",
    fields: &[
        f(1, "data_points", Message(&HISTOGRAM_DATA_POINT)),
        f(2, "aggregation_temporality", Varint),
    ],
};
static EXPONENTIAL_HISTOGRAM: Schema = Schema {
    name: "ExponentialHistogram",
    fields: &[
        f(1, "data_points", Message(&EXPONENTIAL_HISTOGRAM_DATA_POINT)),
        f(2, "aggregation_temporality", Varint),
    ],
};
static SUMMARY: Schema = Schema {
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

fn request_schema(signal: Signal) -> &'static Schema {
    match signal {
        Signal::Traces => &TRACES_REQUEST,
        Signal::Logs => &LOGS_REQUEST,
        Signal::Metrics => &METRICS_REQUEST,
    }
}

/// Checks that `bytes` decode as an export request of `signal` (see the module docs for what is checked).
pub fn validate(signal: Signal, bytes: &[u8]) -> Result<(), WireError> {
    let mut reader = Reader(bytes);
    walk(request_schema(signal), &mut reader, RECURSION_LIMIT)
}

/// A cursor over protobuf bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A varint, refused past 10 bytes or beyond `u64::MAX`, as prost refuses it.
    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                if i == 9 && byte >= 0x02 {
                    break;
                }
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError::new("invalid varint"))
    }

    #[inline]
    fn take(&mut self, len: u64) -> Result<&'a [u8], WireError> {
        if len > self.0.len() as u64 {
            return Err(WireError::new("buffer underflow"));
        }
        let (head, tail) = self.0.split_at(len as usize);
        self.0 = tail;
        Ok(head)
    }

    #[inline]
    fn length_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        self.take(len)
    }

    /// A field key: (tag, wire type), checked as prost's `decode_key` checks it.
    #[inline]
    fn key(&mut self) -> Result<(u32, u64), WireError> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError::new("invalid key value"));
        }
        let wire_type = key & 7;
        if wire_type > FIXED32 {
            return Err(WireError::new("invalid wire type value"));
        }
        let tag = (key >> 3) as u32;
        if tag == 0 {
            return Err(WireError::new("invalid tag value: 0"));
        }
        Ok((tag, wire_type))
    }
}

/// Checks the fields of one message. `depth_left` is prost's recursion budget for this message's fields.
fn walk(
    schema: &'static Schema,
    reader: &mut Reader<'_>,
    depth_left: u32,
) -> Result<(), WireError> {
    while !reader.is_empty() {
        let (tag, wire_type) = reader.key()?;
        match schema.fields.iter().find(|field| field.tag == tag) {
            Some(field) => check_field(field.kind, wire_type, reader, depth_left)
                .map_err(|err| err.within(schema.name, field.name))?,
            None => skip(wire_type, tag, reader, depth_left)?,
        }
    }
    Ok(())
}

fn expect(wire_type: u64, expected: u64) -> Result<(), WireError> {
    if wire_type == expected {
        Ok(())
    } else {
        Err(WireError::new("invalid wire type"))
    }
}

#[inline]
fn check_field(
    kind: Kind,
    wire_type: u64,
    reader: &mut Reader<'_>,
    depth_left: u32,
) -> Result<(), WireError> {
    match kind {
        Kind::Varint => {
            expect(wire_type, VARINT)?;
            reader.varint()?;
        }
        Kind::Fixed32 => {
            expect(wire_type, FIXED32)?;
            reader.take(4)?;
        }
        Kind::Fixed64 => {
            expect(wire_type, FIXED64)?;
            reader.take(8)?;
        }
        Kind::Bytes => {
            expect(wire_type, LENGTH_DELIMITED)?;
            reader.length_delimited()?;
        }
        Kind::Str => {
            expect(wire_type, LENGTH_DELIMITED)?;
            let text = reader.length_delimited()?;
            if simdutf8::basic::from_utf8(text).is_err() {
                return Err(WireError::new("invalid UTF-8 in a string field"));
            }
        }
        Kind::Message(schema) => {
            expect(wire_type, LENGTH_DELIMITED)?;
            let body = reader.length_delimited()?;
            if depth_left == 0 {
                return Err(WireError::new("recursion limit reached"));
            }
            walk(schema, &mut Reader(body), depth_left - 1)?;
        }
        Kind::RepeatedVarint => match wire_type {
            LENGTH_DELIMITED => {
                let mut packed = Reader(reader.length_delimited()?);
                while !packed.is_empty() {
                    packed.varint()?;
                }
            }
            _ => {
                expect(wire_type, VARINT)?;
                reader.varint()?;
            }
        },
        Kind::RepeatedFixed64 => match wire_type {
            LENGTH_DELIMITED => {
                if !reader.length_delimited()?.len().is_multiple_of(8) {
                    return Err(WireError::new("buffer underflow"));
                }
            }
            _ => {
                expect(wire_type, FIXED64)?;
                reader.take(8)?;
            }
        },
    }
    Ok(())
}

/// Skips an unknown field as prost's `skip_field` does, groups and their recursion budget included.
fn skip(
    wire_type: u64,
    tag: u32,
    reader: &mut Reader<'_>,
    depth_left: u32,
) -> Result<(), WireError> {
    if depth_left == 0 {
        return Err(WireError::new("recursion limit reached"));
    }
    match wire_type {
        VARINT => {
            reader.varint()?;
        }
        FIXED64 => {
            reader.take(8)?;
        }
        LENGTH_DELIMITED => {
            reader.length_delimited()?;
        }
        START_GROUP => loop {
            let (inner_tag, inner_wire_type) = reader.key()?;
            if inner_wire_type == END_GROUP {
                if inner_tag != tag {
                    return Err(WireError::new("unexpected end group tag"));
                }
                break;
            }
            skip(inner_wire_type, inner_tag, reader, depth_left - 1)?;
        },
        END_GROUP => return Err(WireError::new("unexpected end group tag")),
        _ => {
            reader.take(4)?;
        }
    }
    Ok(())
}

/// The value of one field of a message, as the wire carries it (see [`FieldCursor`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// Bytes, a string or a nested message, borrowed from the buffer.
    LengthDelimited(&'a [u8]),
    /// A group (a proto2 encoding no OTLP field uses), already skipped as prost skips it.
    Group,
}

/// A zero-copy cursor over the fields of one protobuf message, for stages that read a request straight from
/// its wire form instead of decoding it into prost's owned types. It checks what prost's decoder checks while
/// reading keys and values (varints, keys, lengths, groups and their recursion budget); the caller checks what
/// depends on the schema: wire types of known fields, UTF-8 of strings, and entering nested messages through
/// [`FieldCursor::enter`], which applies prost's recursion limit. One thing is left to callers that nest that
/// deep: prost also refuses an unknown field of a message at the recursion limit (`depth_left() == 0`).
#[derive(Clone, Copy, Debug)]
pub struct FieldCursor<'a> {
    bytes: &'a [u8],
    depth_left: u32,
}

/// A message whose bytes [`FieldCursor::validate_as`] can check at its place in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Resource,
    InstrumentationScope,
    KeyValue,
    AnyValue,
}

impl<'a> FieldCursor<'a> {
    /// The fields of an export request (the top-level message, with prost's full recursion budget).
    pub fn new(bytes: &'a [u8]) -> Self {
        FieldCursor {
            bytes,
            depth_left: RECURSION_LIMIT,
        }
    }

    /// prost's recursion budget left for this message's fields.
    pub fn depth_left(&self) -> u32 {
        self.depth_left
    }

    /// The next field: its number and value, or `None` at the end of the message.
    #[inline]
    pub fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, WireError> {
        let bytes = self.bytes;
        let Some(&key) = bytes.first() else {
            return Ok(None);
        };
        // The common case inline: a one-byte key (fields 1 to 15) and, for varints and lengths, a one-byte
        // value. Anything else, errors included, takes the general path.
        if (8..0x80).contains(&key) {
            let tag = u32::from(key >> 3);
            match u64::from(key & 7) {
                LENGTH_DELIMITED => {
                    if let Some(&len) = bytes.get(1)
                        && len < 0x80
                        && let Some(body) = bytes.get(2..2 + usize::from(len))
                    {
                        self.bytes = &bytes[2 + usize::from(len)..];
                        return Ok(Some((tag, WireValue::LengthDelimited(body))));
                    }
                }
                VARINT => {
                    if let Some(&value) = bytes.get(1)
                        && value < 0x80
                    {
                        self.bytes = &bytes[2..];
                        return Ok(Some((tag, WireValue::Varint(u64::from(value)))));
                    }
                    // A longer varint (token counts, ports): the key is read already.
                    let mut reader = Reader(&bytes[1..]);
                    let value = reader.varint()?;
                    self.bytes = reader.0;
                    return Ok(Some((tag, WireValue::Varint(value))));
                }
                FIXED64 => {
                    if let Some(word) = bytes.get(1..9).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
                        self.bytes = &bytes[9..];
                        return Ok(Some((tag, WireValue::Fixed64(u64::from_le_bytes(word)))));
                    }
                }
                FIXED32 => {
                    if let Some(word) = bytes.get(1..5).and_then(|w| <[u8; 4]>::try_from(w).ok()) {
                        self.bytes = &bytes[5..];
                        return Ok(Some((tag, WireValue::Fixed32(u32::from_le_bytes(word)))));
                    }
                }
                _ => {}
            }
        }
        self.next_field_general()
    }

    #[inline(never)]
    fn next_field_general(&mut self) -> Result<Option<(u32, WireValue<'a>)>, WireError> {
        let mut reader = Reader(self.bytes);
        let (tag, wire_type) = reader.key()?;
        let value = match wire_type {
            VARINT => WireValue::Varint(reader.varint()?),
            FIXED64 => {
                let raw = reader.take(8)?;
                let mut word = [0u8; 8];
                word.copy_from_slice(raw);
                WireValue::Fixed64(u64::from_le_bytes(word))
            }
            LENGTH_DELIMITED => WireValue::LengthDelimited(reader.length_delimited()?),
            FIXED32 => {
                let raw = reader.take(4)?;
                let mut word = [0u8; 4];
                word.copy_from_slice(raw);
                WireValue::Fixed32(u32::from_le_bytes(word))
            }
            _ => {
                // START_GROUP (skipped whole) or END_GROUP (refused), as prost's `skip_field` does.
                skip(wire_type, tag, &mut reader, self.depth_left)?;
                WireValue::Group
            }
        };
        self.bytes = reader.0;
        Ok(Some((tag, value)))
    }

    /// The fields of `body`, a message nested in this one (refused past prost's recursion limit).
    #[inline]
    pub fn enter(&self, body: &'a [u8]) -> Result<FieldCursor<'a>, WireError> {
        if self.depth_left == 0 {
            return Err(WireError::new("recursion limit reached"));
        }
        Ok(FieldCursor {
            bytes: body,
            depth_left: self.depth_left - 1,
        })
    }

    /// Checks the rest of this message as [`validate`] checks a `part` at this depth of a request: after it
    /// passes, prost decodes the bytes as that message.
    pub fn validate_as(&self, part: Part) -> Result<(), WireError> {
        let schema = match part {
            Part::Resource => &RESOURCE,
            Part::InstrumentationScope => &SCOPE,
            Part::KeyValue => &KEY_VALUE,
            Part::AnyValue => &ANY_VALUE,
        };
        walk(schema, &mut Reader(self.bytes), self.depth_left)
    }
}

/// Items (spans, log records, metric data points) and entries (spans, log records, `Metric`s) of a request that
/// passed [`validate`], counted as the decoded request would count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub items: usize,
    pub entries: usize,
}

/// The length-delimited values of field `tag` in one message (validated bytes: stops at anything odd).
fn each_message<'a>(bytes: &'a [u8], tag: u32, mut visit: impl FnMut(&'a [u8])) {
    let mut reader = Reader(bytes);
    while !reader.is_empty() {
        let Ok((field, wire_type)) = reader.key() else {
            return;
        };
        if field == tag && wire_type == LENGTH_DELIMITED {
            match reader.length_delimited() {
                Ok(value) => visit(value),
                Err(_) => return,
            }
        } else if skip(wire_type, field, &mut reader, RECURSION_LIMIT).is_err() {
            return;
        }
    }
}

/// Counts the items and entries of a request that passed [`validate`].
pub fn count(signal: Signal, bytes: &[u8]) -> Counts {
    let mut counts = Counts::default();
    // Every level is `repeated` field 2 of the one above (resource → scope → entries), under the request's field 1.
    each_message(bytes, 1, |resource| {
        each_message(resource, 2, |scope| match signal {
            Signal::Traces | Signal::Logs => each_message(scope, 2, |_| {
                counts.items += 1;
                counts.entries += 1;
            }),
            Signal::Metrics => each_message(scope, 2, |metric| {
                counts.entries += 1;
                counts.items += metric_data_points(metric);
            }),
        })
    });
    counts
}

/// The data points of one `Metric`, with prost's oneof semantics: the last `data` variant present wins, and
/// repeated occurrences of the same variant merge.
fn metric_data_points(metric: &[u8]) -> usize {
    let mut variant = 0u32;
    let mut points = 0usize;
    let mut reader = Reader(metric);
    while !reader.is_empty() {
        let Ok((tag, wire_type)) = reader.key() else {
            break;
        };
        if matches!(tag, 5 | 7 | 9 | 10 | 11) && wire_type == LENGTH_DELIMITED {
            let Ok(data) = reader.length_delimited() else {
                break;
            };
            let mut here = 0;
            each_message(data, 1, |_| here += 1);
            if tag == variant {
                points += here;
            } else {
                variant = tag;
                points = here;
            }
        } else if skip(wire_type, tag, &mut reader, RECURSION_LIMIT).is_err() {
            break;
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::ExportRequest;
    use crate::test_util::{sample_logs, sample_metrics, sample_traces};
    use prost::Message;

    fn samples() -> Vec<ExportRequest> {
        vec![
            ExportRequest::Traces(sample_traces(2, 3)),
            ExportRequest::Logs(sample_logs(2, 3)),
            ExportRequest::Metrics(sample_metrics(3)),
        ]
    }

    #[test]
    fn valid_requests_pass_and_count_like_the_decoded_request() {
        for request in samples() {
            let bytes = request.encode_to_vec();
            validate(request.signal(), &bytes).expect("valid");
            assert_eq!(
                count(request.signal(), &bytes),
                Counts {
                    items: request.item_count(),
                    entries: request.entry_count()
                }
            );
        }
    }

    #[test]
    fn the_field_cursor_reads_values_skips_groups_and_limits_depth() {
        use crate::proto::common::v1::{AnyValue, KeyValue, any_value};
        let kv = KeyValue {
            key: "k".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(7)),
            }),
            ..Default::default()
        };
        let mut bytes = kv.encode_to_vec();
        // An unknown group (field 9) holding a varint, then a fixed32 and a fixed64 of unknown fields.
        bytes.extend_from_slice(&[9 << 3 | 3, 1 << 3, 5, 9 << 3 | 4]);
        bytes.extend_from_slice(&[10 << 3 | 5, 1, 0, 0, 0, 11 << 3 | 1, 2, 0, 0, 0, 0, 0, 0, 0]);
        let mut cursor = FieldCursor::new(&bytes);
        let mut seen = Vec::new();
        while let Some(field) = cursor.next_field().expect("valid") {
            seen.push(field);
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0], (1, WireValue::LengthDelimited(b"k")));
        let (2, WireValue::LengthDelimited(value)) = seen[1] else {
            panic!("value: {:?}", seen[1]);
        };
        let mut inner = cursor.enter(value).expect("depth");
        assert_eq!(
            inner.next_field().expect("valid"),
            Some((3, WireValue::Varint(7)))
        );
        assert_eq!(inner.next_field().expect("valid"), None);
        assert_eq!(
            &seen[2..],
            &[
                (9, WireValue::Group),
                (10, WireValue::Fixed32(1)),
                (11, WireValue::Fixed64(2))
            ]
        );
        assert!(
            FieldCursor::new(&[1 << 3 | 4]).next_field().is_err(),
            "a lone end group"
        );
        assert!(
            FieldCursor::new(&[1 << 3 | 2, 5]).next_field().is_err(),
            "past the end"
        );
        let mut deep = FieldCursor::new(&[]);
        for _ in 0..RECURSION_LIMIT {
            deep = deep.enter(&[]).expect("within the limit");
        }
        assert!(deep.enter(&[]).is_err(), "prost's recursion limit");
    }

    #[test]
    fn errors_name_the_field() {
        let bytes = crate::test_util::traces_with_invalid_utf8();
        let err = validate(Signal::Traces, &bytes).expect_err("invalid UTF-8");
        assert_eq!(
            err.to_string(),
            "invalid UTF-8 in a string field at ExportTraceServiceRequest.resource_spans.ResourceSpans\
             .scope_spans.ScopeSpans.spans.Span.name"
        );
        assert!(
            ExportTraceServiceRequestProbe::decode(bytes.as_slice()).is_err(),
            "prost agrees"
        );
    }

    type ExportTraceServiceRequestProbe =
        crate::proto::collector::trace::v1::ExportTraceServiceRequest;

    /// A `KeyValue` whose value nests `levels` key-value lists deep, inside a log record's attributes.
    fn nested_logs(levels: usize) -> Vec<u8> {
        use crate::proto::common::v1::{AnyValue, KeyValue, KeyValueList, any_value};
        let mut value = AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        };
        for _ in 0..levels {
            value = AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![KeyValue {
                        key: "k".into(),
                        value: Some(value),
                        ..Default::default()
                    }],
                })),
            };
        }
        let mut logs = sample_logs(1, 1);
        logs.resource_logs[0].scope_logs[0].log_records[0].body = Some(value);
        logs.encode_to_vec()
    }

    #[test]
    fn the_recursion_limit_is_prosts() {
        use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
        let mut agreed_accept = false;
        let mut agreed_refuse = false;
        for levels in 20..40 {
            let bytes = nested_logs(levels);
            let prost_ok = ExportLogsServiceRequest::decode(bytes.as_slice()).is_ok();
            assert_eq!(
                validate(Signal::Logs, &bytes).is_ok(),
                prost_ok,
                "{levels} levels"
            );
            agreed_accept |= prost_ok;
            agreed_refuse |= !prost_ok;
        }
        assert!(
            agreed_accept && agreed_refuse,
            "the range straddles the limit"
        );
    }
}
