//! OTLP protobuf straight from entries: a `LogRecord`'s fields, its attributes and a resource's attributes
//! written into a byte buffer, without building prost's structs first.
//!
//! The receiver used to turn every entry into prost structs (one allocation per attribute, key and value) that
//! the OTLP exporter then encoded again and the pipeline freed one by one. Writing the protobuf once, here,
//! makes the batch a wire payload (`otlake_core::Payload`'s wire form): counted, merged and forwarded without
//! being decoded. The bytes are what prost would decode into the structs the receiver built before (the batch
//! module's differential test holds them to it): fields with proto3 default values are left out, as prost
//! leaves them out, except a `oneof` value and message fields that are set (the body, a resource, a scope).
//!
//! Field numbers are those of `opentelemetry/proto/{logs,common,resource}/v1/*.proto`.

use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use serde_json::{Map, Value};

/// JSON nesting kept as OTLP values; anything deeper is kept as its JSON text. Each JSON level is two or three
/// nested protobuf messages (`AnyValue` → `KeyValueList` → `KeyValue`), and decoders refuse nesting past 100
/// messages (prost's limit, which `otlake_core::wire::validate` enforces too), so 24 levels stay well within.
pub const MAX_DEPTH: usize = 24;

/// `LogRecord` field numbers.
mod log_record {
    pub const TIME_UNIX_NANO: u32 = 1;
    pub const SEVERITY_NUMBER: u32 = 2;
    pub const SEVERITY_TEXT: u32 = 3;
    pub const BODY: u32 = 5;
    pub const ATTRIBUTES: u32 = 6;
    pub const TRACE_ID: u32 = 9;
    pub const SPAN_ID: u32 = 10;
    pub const OBSERVED_TIME_UNIX_NANO: u32 = 11;
}

/// `AnyValue` field numbers (a `oneof`).
mod any_value {
    pub const STRING: u32 = 1;
    pub const BOOL: u32 = 2;
    pub const INT: u32 = 3;
    pub const DOUBLE: u32 = 4;
    pub const ARRAY: u32 = 5;
    pub const KVLIST: u32 = 6;
}

/// The one repeated field of `ArrayValue` and `KeyValueList`; `Resource.attributes`; `KeyValue.key`;
/// `InstrumentationScope.name`; `ResourceLogs.resource`; `ScopeLogs.scope`.
const FIRST: u32 = 1;
/// `KeyValue.value`; `ResourceLogs.scope_logs`; `ScopeLogs.log_records`.
const SECOND: u32 = 2;

/// The fields of one log record, borrowed from its entry.
pub struct Record<'a> {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: &'a str,
    pub body: &'a Value,
    pub attributes: &'a Map<String, Value>,
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
}

/// Appends `record` as field `tag` (a length-delimited `LogRecord`) to `buf`; returns the bytes written.
pub fn write_record(tag: u32, record: &Record<'_>, buf: &mut Vec<u8>) -> usize {
    let before = buf.len();
    let len = record_len(record);
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
    if record.time_unix_nano != 0 {
        fixed64(log_record::TIME_UNIX_NANO, record.time_unix_nano, buf);
    }
    if record.severity_number != 0 {
        encode_key(log_record::SEVERITY_NUMBER, WireType::Varint, buf);
        // An enum is an int32: negative values are sign-extended to ten bytes, as prost writes them.
        encode_varint(i64::from(record.severity_number) as u64, buf);
    }
    if !record.severity_text.is_empty() {
        bytes_field(
            log_record::SEVERITY_TEXT,
            record.severity_text.as_bytes(),
            buf,
        );
    }
    write_any_value(log_record::BODY, record.body, 0, buf);
    for (key, value) in record.attributes {
        write_key_value(log_record::ATTRIBUTES, key, value, 0, buf);
    }
    if !record.trace_id.is_empty() {
        bytes_field(log_record::TRACE_ID, record.trace_id, buf);
    }
    if !record.span_id.is_empty() {
        bytes_field(log_record::SPAN_ID, record.span_id, buf);
    }
    if record.observed_time_unix_nano != 0 {
        fixed64(
            log_record::OBSERVED_TIME_UNIX_NANO,
            record.observed_time_unix_nano,
            buf,
        );
    }
    buf.len() - before
}

/// The body of a `Resource` with these attributes.
pub fn resource(attributes: &Map<String, Value>) -> Vec<u8> {
    let mut buf = Vec::new();
    for (key, value) in attributes {
        write_key_value(FIRST, key, value, 0, &mut buf);
    }
    buf
}

/// Appends one `ResourceLogs` (field 1 of the export request): the resource's body, then per scope its name and
/// its records (each already a whole `log_records` field).
pub fn write_resource_logs<'a>(
    resource: &[u8],
    scopes: impl Iterator<Item = (&'a str, &'a [u8])> + Clone,
    buf: &mut Vec<u8>,
) {
    let scope_len = |name: &str| {
        if name.is_empty() {
            0
        } else {
            delimited(name.len())
        }
    };
    let scope_logs_len = |name: &str, records: &[u8]| delimited(scope_len(name)) + records.len();
    let len = delimited(resource.len())
        + scopes
            .clone()
            .map(|(name, records)| delimited(scope_logs_len(name, records)))
            .sum::<usize>();
    bytes_header(FIRST, len, buf);
    bytes_field(FIRST, resource, buf);
    for (name, records) in scopes {
        bytes_header(SECOND, scope_logs_len(name, records), buf);
        bytes_header(FIRST, scope_len(name), buf);
        if !name.is_empty() {
            bytes_field(FIRST, name.as_bytes(), buf);
        }
        buf.extend_from_slice(records);
    }
}

/// The length of a length-delimited field's key (every tag here is below 16: one byte) and value.
fn delimited(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

fn bytes_header(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn bytes_field(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    bytes_header(tag, bytes.len(), buf);
    buf.extend_from_slice(bytes);
}

fn fixed64(tag: u32, value: u64, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn record_len(record: &Record<'_>) -> usize {
    let mut len = 0;
    if record.time_unix_nano != 0 {
        len += 9;
    }
    if record.severity_number != 0 {
        len += 1 + encoded_len_varint(i64::from(record.severity_number) as u64);
    }
    if !record.severity_text.is_empty() {
        len += delimited(record.severity_text.len());
    }
    len += delimited(any_value_len(record.body, 0));
    len += record
        .attributes
        .iter()
        .map(|(key, value)| delimited(key_value_len(key, value, 0)))
        .sum::<usize>();
    if !record.trace_id.is_empty() {
        len += delimited(record.trace_id.len());
    }
    if !record.span_id.is_empty() {
        len += delimited(record.span_id.len());
    }
    if record.observed_time_unix_nano != 0 {
        len += 9;
    }
    len
}

/// What a JSON value is as an OTLP value: maps become key-value lists, `null` an empty `AnyValue`, a number
/// that fits an `i64` an int and any other a double, and a value nested past [`MAX_DEPTH`] its JSON text.
enum Kind<'a> {
    Empty,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(&'a str),
    Array(&'a [Value]),
    Map(&'a Map<String, Value>),
    Text(String),
}

fn kind(value: &Value, depth: usize) -> Kind<'_> {
    match value {
        Value::Null => Kind::Empty,
        Value::Bool(b) => Kind::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::Int(i),
            None => Kind::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Kind::Str(s),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => Kind::Text(value.to_string()),
        Value::Array(values) => Kind::Array(values),
        Value::Object(map) => Kind::Map(map),
    }
}

/// The length of an `AnyValue` message's body.
fn any_value_len(value: &Value, depth: usize) -> usize {
    match kind(value, depth) {
        Kind::Empty => 0,
        Kind::Bool(_) => 2,
        Kind::Int(i) => 1 + encoded_len_varint(i as u64),
        Kind::Double(_) => 9,
        Kind::Str(s) => delimited(s.len()),
        Kind::Text(s) => delimited(s.len()),
        Kind::Array(values) => delimited(
            values
                .iter()
                .map(|v| delimited(any_value_len(v, depth + 1)))
                .sum(),
        ),
        Kind::Map(map) => delimited(
            map.iter()
                .map(|(k, v)| delimited(key_value_len(k, v, depth + 1)))
                .sum(),
        ),
    }
}

/// The length of a `KeyValue` message's body.
fn key_value_len(key: &str, value: &Value, depth: usize) -> usize {
    let key_len = if key.is_empty() {
        0
    } else {
        delimited(key.len())
    };
    key_len + delimited(any_value_len(value, depth))
}

/// Appends an `AnyValue` as field `tag`.
fn write_any_value(tag: u32, value: &Value, depth: usize, buf: &mut Vec<u8>) {
    bytes_header(tag, any_value_len(value, depth), buf);
    match kind(value, depth) {
        Kind::Empty => {}
        Kind::Bool(b) => {
            encode_key(any_value::BOOL, WireType::Varint, buf);
            buf.push(u8::from(b));
        }
        Kind::Int(i) => {
            encode_key(any_value::INT, WireType::Varint, buf);
            encode_varint(i as u64, buf);
        }
        Kind::Double(d) => fixed64(any_value::DOUBLE, d.to_bits(), buf),
        Kind::Str(s) => bytes_field(any_value::STRING, s.as_bytes(), buf),
        Kind::Text(s) => bytes_field(any_value::STRING, s.as_bytes(), buf),
        Kind::Array(values) => {
            let len = values
                .iter()
                .map(|v| delimited(any_value_len(v, depth + 1)))
                .sum();
            bytes_header(any_value::ARRAY, len, buf);
            for v in values {
                write_any_value(FIRST, v, depth + 1, buf);
            }
        }
        Kind::Map(map) => {
            let len = map
                .iter()
                .map(|(k, v)| delimited(key_value_len(k, v, depth + 1)))
                .sum();
            bytes_header(any_value::KVLIST, len, buf);
            for (k, v) in map {
                write_key_value(FIRST, k, v, depth + 1, buf);
            }
        }
    }
}

/// Appends a `KeyValue` as field `tag`.
fn write_key_value(tag: u32, key: &str, value: &Value, depth: usize, buf: &mut Vec<u8>) {
    bytes_header(tag, key_value_len(key, value, depth), buf);
    if !key.is_empty() {
        bytes_field(FIRST, key.as_bytes(), buf);
    }
    write_any_value(SECOND, value, depth, buf);
}
