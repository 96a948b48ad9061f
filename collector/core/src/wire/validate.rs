//! [`validate`]: checks that a request would decode, walking every field of every nested message against the
//! [schema](super::schema) as prost's decoder would, without decoding or allocating (see the module docs of
//! [`crate::wire`] for what it refuses and why it agrees with prost).

use super::reader::{
    FIXED32, FIXED64, LENGTH_DELIMITED, RECURSION_LIMIT, Reader, VARINT, WireError, skip,
};
use super::schema::{FieldType, Schema, request_schema};
use crate::Signal;

/// Checks that `bytes` decode as an export request of `signal` (see the module docs for what is checked).
pub fn validate(signal: Signal, bytes: &[u8]) -> Result<(), WireError> {
    let mut reader = Reader(bytes);
    walk(request_schema(signal), &mut reader, RECURSION_LIMIT)
}

/// Checks the fields of one message. `depth_left` is prost's recursion budget for this message's fields.
pub(super) fn walk(
    schema: &'static Schema,
    reader: &mut Reader<'_>,
    depth_left: u32,
) -> Result<(), WireError> {
    while !reader.is_empty() {
        let (tag, wire_type) = reader.key()?;
        match schema.field(tag) {
            Some(field) => check_field(field.field_type, wire_type, reader, depth_left)
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
    field_type: FieldType,
    wire_type: u64,
    reader: &mut Reader<'_>,
    depth_left: u32,
) -> Result<(), WireError> {
    match field_type {
        FieldType::Varint => {
            expect(wire_type, VARINT)?;
            reader.varint()?;
        }
        FieldType::Fixed32 => {
            expect(wire_type, FIXED32)?;
            reader.take(4)?;
        }
        FieldType::Fixed64 => {
            expect(wire_type, FIXED64)?;
            reader.take(8)?;
        }
        FieldType::Bytes => {
            expect(wire_type, LENGTH_DELIMITED)?;
            reader.length_delimited()?;
        }
        FieldType::Str => {
            expect(wire_type, LENGTH_DELIMITED)?;
            let text = reader.length_delimited()?;
            // Most OTLP strings are short ASCII: a word-at-a-time check, cheaper than a UTF-8 validator's call.
            if !text.is_ascii() && simdutf8::basic::from_utf8(text).is_err() {
                return Err(WireError::new("invalid UTF-8 in a string field"));
            }
        }
        FieldType::Message(schema) => {
            expect(wire_type, LENGTH_DELIMITED)?;
            let body = reader.length_delimited()?;
            if depth_left == 0 {
                return Err(WireError::new("recursion limit reached"));
            }
            walk(schema, &mut Reader(body), depth_left - 1)?;
        }
        FieldType::RepeatedVarint => match wire_type {
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
        FieldType::RepeatedFixed64 => match wire_type {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::sample_logs;
    use prost::Message;

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
