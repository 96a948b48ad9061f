//! AnyValues as JSON (arrays and kvlists in v1 text, and JSON strings with the escapes RFC 8259 requires).
//! Bytes become a base64 string; NaN and infinities, which JSON cannot hold, become strings; a kvlist key given
//! twice keeps its last value, as maps do.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};

use super::double::{push_double_text, push_finite_double};
use super::key_repeats::{key_repeats, superseded};

/// Writes `value` as JSON into `out` (appending).
pub fn push_json_value(value: &AnyValue, out: &mut String) {
    match &value.value {
        None => out.push_str("null"),
        Some(Value::StringValue(s)) => push_json_string(s, out),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => out.push_str(itoa::Buffer::new().format(*i)),
        Some(Value::DoubleValue(d)) => {
            if d.is_finite() {
                push_finite_double(*d, out);
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

pub(super) fn push_json_array(values: &[AnyValue], out: &mut String) {
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
pub(super) fn push_json_object(values: &[KeyValue], out: &mut String) {
    out.push('{');
    let mut first = true;
    let repeats = key_repeats(values);
    for (i, kv) in values.iter().enumerate() {
        if superseded(values, i, &repeats) {
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

    #[test]
    fn json_strings_escape_control_characters() {
        let mut out = String::new();
        push_json_string("x\u{1}y\\é", &mut out);
        assert_eq!(out, "\"x\\u0001y\\\\é\"");
        let parsed: String = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(parsed, "x\u{1}y\\é");
    }
}
