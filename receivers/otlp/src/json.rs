//! OTLP/JSON decoding: the OTLP specification's JSON mapping of the protobuf messages.
//!
//! opentelemetry-proto's `with-serde` does the mapping itself (hex trace and span ids, integer enums, 64-bit
//! integers as strings or numbers, base64 `bytesValue`), but it only knows the lowerCamelCase field names,
//! while the spec (proto3 JSON) also allows the original snake_case names, and it silently ignores unknown
//! fields, so a `resource_spans` would be dropped without a word. So the body is parsed to a
//! `serde_json::Value` first and every object key rewritten snake_case → lowerCamelCase before the typed
//! deserialisation. That is safe because in OTLP/JSON every object key is a protobuf field name: attribute
//! keys are values (`{"key": "my_attr", "value": ...}`) and are left alone.
//!
//! JSON is not the hot path (SDKs send protobuf by default); the extra `Value` pass is the price of the
//! snake_case names. Known gaps of `with-serde`: `"NaN"`/`"Infinity"` strings are accepted only for summary
//! quantiles, not for other double fields.

use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::{Payload, Signal};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, message_name};

/// Decodes an OTLP/JSON export request of `signal`.
pub fn decode_json(signal: Signal, bytes: &[u8]) -> Result<Payload, Error> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(Error::JsonSyntax)?;
    camel_case_keys(&mut value);
    Ok(match signal {
        Signal::Traces => Payload::from(typed::<ExportTraceServiceRequest>(signal, value)?),
        Signal::Logs => Payload::from(typed::<ExportLogsServiceRequest>(signal, value)?),
        Signal::Metrics => Payload::from(typed::<ExportMetricsServiceRequest>(signal, value)?),
    })
}

fn typed<T: DeserializeOwned>(signal: Signal, value: Value) -> Result<T, Error> {
    if !value.is_object() {
        return Err(Error::JsonShape {
            message: message_name(signal),
            path: ".".into(),
            reason: "the request must be a JSON object".into(),
        });
    }
    serde_path_to_error::deserialize(value).map_err(|err| Error::JsonShape {
        message: message_name(signal),
        path: err.path().to_string(),
        reason: err.into_inner().to_string(),
    })
}

/// Rewrites every object key from snake_case to lowerCamelCase, in place (see the module docs for why this
/// is safe). Keys without `_` are not touched, so a camelCase body costs one walk and no allocation.
/// Depth is bounded by serde_json's own recursion limit when the body was parsed.
pub fn camel_case_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('_')) {
                let old = std::mem::take(map);
                *map = old
                    .into_iter()
                    .map(|(k, v)| {
                        if k.contains('_') {
                            (to_camel(&k), v)
                        } else {
                            (k, v)
                        }
                    })
                    .collect::<Map<String, Value>>();
            }
            map.values_mut().for_each(camel_case_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(camel_case_keys),
        _ => {}
    }
}

fn to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::ExportRequest;
    use otlake_core::proto::common::v1::any_value::Value as AnyValue;
    use serde_json::json;

    #[test]
    fn snake_case_names_become_camel_case() {
        assert_eq!(to_camel("resource_spans"), "resourceSpans");
        assert_eq!(
            to_camel("dropped_attributes_count"),
            "droppedAttributesCount"
        );
        assert_eq!(to_camel("kvlist_value"), "kvlistValue");
        assert_eq!(to_camel("traceId"), "traceId");
    }

    #[test]
    fn attribute_keys_with_underscores_stay_untouched() {
        let body = json!({"resource_logs": [{"scope_logs": [{"log_records": [{
            "severity_text": "WARN",
            "attributes": [{"key": "gen_ai.request_model", "value": {"string_value": "m_1"}}]
        }]}]}]});
        let payload = decode_json(Signal::Logs, body.to_string().as_bytes()).expect("decodes");
        let Ok(ExportRequest::Logs(request)) = payload.request() else {
            panic!("logs")
        };
        let record = &request.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(record.severity_text, "WARN");
        assert_eq!(record.attributes[0].key, "gen_ai.request_model");
        assert_eq!(
            record.attributes[0]
                .value
                .as_ref()
                .and_then(|v| v.value.clone()),
            Some(AnyValue::StringValue("m_1".into()))
        );
    }

    #[test]
    fn int64_as_string_or_number_and_bytes_as_base64() {
        for time in [json!("1544712660300000000"), json!(1544712660300000000u64)] {
            let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
                "timeUnixNano": time,
                "attributes": [
                    {"key": "i", "value": {"intValue": "-7"}},
                    {"key": "j", "value": {"intValue": 8}},
                    {"key": "b", "value": {"bytesValue": "AQID"}}
                ]
            }]}]}]});
            let payload = decode_json(Signal::Logs, body.to_string().as_bytes()).expect("decodes");
            let Ok(ExportRequest::Logs(request)) = payload.request() else {
                panic!("logs")
            };
            let record = &request.resource_logs[0].scope_logs[0].log_records[0];
            assert_eq!(record.time_unix_nano, 1_544_712_660_300_000_000);
            let values: Vec<_> = record
                .attributes
                .iter()
                .map(|a| a.value.as_ref().and_then(|v| v.value.clone()))
                .collect();
            assert_eq!(
                values,
                vec![
                    Some(AnyValue::IntValue(-7)),
                    Some(AnyValue::IntValue(8)),
                    Some(AnyValue::BytesValue(vec![1, 2, 3]))
                ]
            );
        }
    }

    #[test]
    fn errors_name_what_was_wrong() {
        let err = decode_json(Signal::Traces, b"{\"resourceSpans\": [").expect_err("truncated");
        assert!(err.to_string().starts_with("invalid JSON"), "{err}");

        let body =
            json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not-hex"}]}]}]});
        let err = decode_json(Signal::Traces, body.to_string().as_bytes()).expect_err("bad id");
        let text = err.to_string();
        assert!(text.contains("ExportTraceServiceRequest"), "{text}");
        assert!(text.contains("traceId"), "{text}");

        let err = decode_json(Signal::Traces, b"[1, 2]").expect_err("not an object");
        assert!(err.to_string().contains("JSON object"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut body =
            br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "ab"}]}]}]}"#.to_vec();
        let at = body.windows(2).position(|w| w == b"ab").expect("name");
        body[at] = 0xff;
        let err = decode_json(Signal::Traces, &body).expect_err("invalid UTF-8");
        assert!(err.to_string().contains("invalid JSON"), "{err}");
    }
}
