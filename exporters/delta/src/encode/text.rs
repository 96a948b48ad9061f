//! An AnyValue as the text of a v1 map value or log body: a string as is (borrowed, not copied); int, double
//! and bool as their canonical text; arrays and kvlists as JSON; bytes as base64.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use otlake_core::proto::common::v1::{AnyValue, any_value::Value};

use super::double::push_double_text;
use super::json::{push_json_array, push_json_object};

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
        Value::IntValue(i) => out.push_str(itoa::Buffer::new().format(*i)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::proto::common::v1::{ArrayValue, KeyValue, KeyValueList};

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
}
