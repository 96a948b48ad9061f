//! The encoding rules of the OTel tables (docs/otel-tables.md, "Encoding rules"), in one place.
//!
//! - ids: lowercase hex; an empty id is NULL (so `parent_span_id IS NULL` finds root spans);
//! - enums: the proto enum names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`, ...); a value the proto does not
//!   know is written as its number, so nothing is lost;
//! - AnyValue to text: a string as is; int, double and bool as their canonical text; arrays and kvlists as
//!   JSON; bytes as base64 (inside JSON: a base64 string).
//!
//! Everything writes into a caller-owned `String` so that converting a batch allocates no string per value.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use otlake_core::proto::logs::v1::SeverityNumber;
use otlake_core::proto::metrics::v1::AggregationTemporality;
use otlake_core::proto::trace::v1::{span::SpanKind, status::StatusCode};

use crate::config::SeverityNumberFormat;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `id` as lowercase hex into `out` (cleared first). Returns `false` for an empty id (written as NULL).
pub fn hex_id(id: &[u8], out: &mut String) -> bool {
    out.clear();
    if id.is_empty() {
        return false;
    }
    out.reserve(id.len() * 2);
    for byte in id {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    true
}

/// `SPAN_KIND_SERVER` etc.
pub fn span_kind(kind: i32, out: &mut String) -> &str {
    match SpanKind::try_from(kind) {
        Ok(known) => known.as_str_name(),
        Err(_) => number(kind, out),
    }
}

/// `STATUS_CODE_ERROR` etc.
pub fn status_code(code: i32, out: &mut String) -> &str {
    match StatusCode::try_from(code) {
        Ok(known) => known.as_str_name(),
        Err(_) => number(code, out),
    }
}

/// `AGGREGATION_TEMPORALITY_DELTA` / `AGGREGATION_TEMPORALITY_CUMULATIVE` (unverified against the managed
/// tables, kept here so a change is one line).
pub fn aggregation_temporality(value: i32, out: &mut String) -> &str {
    match AggregationTemporality::try_from(value) {
        Ok(known) => known.as_str_name(),
        Err(_) => number(value, out),
    }
}

/// `metric_type` values (unverified against the managed tables).
pub mod metric_type {
    pub const GAUGE: &str = "GAUGE";
    pub const SUM: &str = "SUM";
    pub const HISTOGRAM: &str = "HISTOGRAM";
    pub const EXPONENTIAL_HISTOGRAM: &str = "EXPONENTIAL_HISTOGRAM";
    pub const SUMMARY: &str = "SUMMARY";
}

/// `severity_number` as configured: `"9"` or `"SEVERITY_NUMBER_INFO"`.
pub fn severity_number(value: i32, format: SeverityNumberFormat, out: &mut String) -> &str {
    match format {
        SeverityNumberFormat::Number => number(value, out),
        SeverityNumberFormat::Name => match SeverityNumber::try_from(value) {
            Ok(known) => known.as_str_name(),
            Err(_) => number(value, out),
        },
    }
}

fn number(value: i32, out: &mut String) -> &str {
    out.clear();
    let _ = write!(out, "{value}");
    out.as_str()
}

/// The text of an AnyValue in a v1 map or body, or `None` for an empty AnyValue (written as NULL). A string
/// value is returned borrowed, without copying; other kinds are written into `out`.
pub fn any_value_text<'a>(value: &'a AnyValue, out: &'a mut String) -> Option<&'a str> {
    let inner = value.value.as_ref()?;
    if let Value::StringValue(s) = inner {
        return Some(s.as_str());
    }
    out.clear();
    match inner {
        Value::StringValue(_) => {}
        Value::BoolValue(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::IntValue(i) => {
            let _ = write!(out, "{i}");
        }
        Value::DoubleValue(d) => push_double_text(*d, out),
        Value::BytesValue(bytes) => BASE64.encode_string(bytes, out),
        Value::ArrayValue(array) => push_json_array(&array.values, out),
        Value::KvlistValue(list) => push_json_object(&list.values, out),
        // Dictionary-encoded strings (profiles only) have no dictionary here: keep the index as text.
        Value::StringValueStrindex(index) => {
            let _ = write!(out, "{index}");
        }
    }
    Some(out.as_str())
}

/// Doubles as the OTel Collector prints them: shortest round-trip decimal, no exponent, `NaN`, `+Inf`, `-Inf`.
fn push_double_text(d: f64, out: &mut String) {
    if d.is_nan() {
        out.push_str("NaN");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{d}");
    }
}

/// Writes `value` as JSON into `out` (appending).
pub fn push_json_value(value: &AnyValue, out: &mut String) {
    match &value.value {
        None => out.push_str("null"),
        Some(Value::StringValue(s)) => push_json_string(s, out),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) => {
            if d.is_finite() {
                let _ = write!(out, "{d}");
            } else {
                // JSON has no NaN or infinity: keep them as strings rather than write invalid JSON.
                out.push('"');
                push_double_text(*d, out);
                out.push('"');
            }
        }
        Some(Value::BytesValue(bytes)) => {
            out.push('"');
            BASE64.encode_string(bytes, out);
            out.push('"');
        }
        Some(Value::ArrayValue(array)) => push_json_array(&array.values, out),
        Some(Value::KvlistValue(list)) => push_json_object(&list.values, out),
        Some(Value::StringValueStrindex(index)) => {
            let _ = write!(out, "{index}");
        }
    }
}

fn push_json_array(values: &[AnyValue], out: &mut String) {
    out.push('[');
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_value(value, out);
    }
    out.push(']');
}

/// A JSON object; a key given twice keeps its last value, as maps do.
fn push_json_object(values: &[KeyValue], out: &mut String) {
    out.push('{');
    let mut first = true;
    for (i, kv) in values.iter().enumerate() {
        if values[i + 1..].iter().any(|later| later.key == kv.key) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_json_string(&kv.key, out);
        out.push(':');
        match &kv.value {
            Some(value) => push_json_value(value, out),
            None => out.push_str("null"),
        }
    }
    out.push('}');
}

/// A JSON string literal with the escapes RFC 8259 requires.
pub fn push_json_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::proto::common::v1::{ArrayValue, KeyValueList};

    fn any(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn text(value: Value) -> String {
        let mut out = String::new();
        any_value_text(&any(value), &mut out)
            .expect("not empty")
            .to_owned()
    }

    #[test]
    fn ids_are_lowercase_hex_and_empty_is_null() {
        let mut out = String::new();
        assert!(hex_id(&[0x00, 0xAB, 0x1f], &mut out));
        assert_eq!(out, "00ab1f");
        assert!(!hex_id(&[], &mut out));
    }

    #[test]
    fn enums_use_proto_names() {
        let mut out = String::new();
        assert_eq!(span_kind(2, &mut out), "SPAN_KIND_SERVER");
        assert_eq!(span_kind(0, &mut out), "SPAN_KIND_UNSPECIFIED");
        assert_eq!(span_kind(99, &mut out), "99");
        assert_eq!(status_code(2, &mut out), "STATUS_CODE_ERROR");
        assert_eq!(
            aggregation_temporality(1, &mut out),
            "AGGREGATION_TEMPORALITY_DELTA"
        );
        assert_eq!(
            severity_number(9, SeverityNumberFormat::Number, &mut out),
            "9"
        );
        assert_eq!(
            severity_number(9, SeverityNumberFormat::Name, &mut out),
            "SEVERITY_NUMBER_INFO"
        );
    }

    #[test]
    fn any_values_become_text() {
        assert_eq!(text(Value::StringValue("\"LLM\"".into())), "\"LLM\"");
        assert_eq!(text(Value::IntValue(-42)), "-42");
        assert_eq!(text(Value::DoubleValue(1.5)), "1.5");
        assert_eq!(text(Value::DoubleValue(2.0)), "2");
        assert_eq!(text(Value::BoolValue(true)), "true");
        assert_eq!(text(Value::BytesValue(vec![0, 1, 2, 255])), "AAEC/w==");
        assert_eq!(
            text(Value::ArrayValue(ArrayValue {
                values: vec![
                    any(Value::StringValue("a\"b\n".into())),
                    any(Value::IntValue(1)),
                    any(Value::DoubleValue(f64::NAN)),
                    AnyValue { value: None },
                    any(Value::BytesValue(vec![1])),
                ]
            })),
            r#"["a\"b\n",1,"NaN",null,"AQ=="]"#
        );
        let kv = |k: &str, v: Value| KeyValue {
            key: k.into(),
            value: Some(any(v)),
            ..Default::default()
        };
        assert_eq!(
            text(Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("a", Value::IntValue(1)),
                    kv("b", Value::BoolValue(false)),
                    kv("a", Value::IntValue(2)),
                ]
            })),
            r#"{"b":false,"a":2}"#
        );
        let mut out = String::new();
        assert_eq!(any_value_text(&AnyValue { value: None }, &mut out), None);
    }

    #[test]
    fn json_strings_escape_control_characters() {
        let mut out = String::new();
        push_json_string("x\u{1}y\\é", &mut out);
        assert_eq!(out, "\"x\\u0001y\\\\é\"");
        let parsed: String = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(parsed, "x\u{1}y\\é");
    }
}
