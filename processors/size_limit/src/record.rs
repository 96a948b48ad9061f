//! What the limits see of a record (a span, a log record, a metric data point): its name in messages, its
//! attributes (where the truncation marker goes) and the string values truncation may shorten.

use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::proto::logs::v1::LogRecord;
use otlake_core::proto::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};
use otlake_core::proto::trace::v1::Span;
use prost::Message;

/// The attribute a truncated record carries: its encoded size in bytes before any truncation.
pub const TRUNCATED_ATTRIBUTE: &str = "otlake.truncated";

pub(crate) trait Record: Message {
    /// What one record is called in messages to clients ("span", "log record", "data point").
    const NAME: &'static str;

    fn attributes_mut(&mut self) -> &mut Vec<KeyValue>;

    /// Every string value truncation may shorten: attribute values (nested too), a log body, event and link
    /// attributes. Keys, names and ids are left alone: they identify the record.
    fn strings_mut<'a>(&'a mut self, out: &mut Vec<&'a mut String>);
}

fn strings_of_value<'a>(value: &'a mut AnyValue, out: &mut Vec<&'a mut String>) {
    match &mut value.value {
        Some(any_value::Value::StringValue(s)) => out.push(s),
        Some(any_value::Value::ArrayValue(array)) => {
            for v in &mut array.values {
                strings_of_value(v, out);
            }
        }
        Some(any_value::Value::KvlistValue(list)) => strings_of_attributes(&mut list.values, out),
        _ => {}
    }
}

fn strings_of_attributes<'a>(attributes: &'a mut [KeyValue], out: &mut Vec<&'a mut String>) {
    for kv in attributes {
        if let Some(v) = &mut kv.value {
            strings_of_value(v, out);
        }
    }
}

/// Sets `otlake.truncated` to `original_size`, replacing an earlier marker (an upstream otlake's).
pub(crate) fn mark_truncated(attributes: &mut Vec<KeyValue>, original_size: usize) {
    let value = Some(AnyValue {
        value: Some(any_value::Value::IntValue(
            i64::try_from(original_size).unwrap_or(i64::MAX),
        )),
    });
    match attributes
        .iter_mut()
        .find(|kv| kv.key == TRUNCATED_ATTRIBUTE)
    {
        Some(kv) => kv.value = value,
        None => attributes.push(KeyValue {
            key: TRUNCATED_ATTRIBUTE.to_owned(),
            value,
            ..Default::default()
        }),
    }
}

impl Record for Span {
    const NAME: &'static str = "span";

    fn attributes_mut(&mut self) -> &mut Vec<KeyValue> {
        &mut self.attributes
    }

    fn strings_mut<'a>(&'a mut self, out: &mut Vec<&'a mut String>) {
        strings_of_attributes(&mut self.attributes, out);
        for event in &mut self.events {
            strings_of_attributes(&mut event.attributes, out);
        }
        for link in &mut self.links {
            strings_of_attributes(&mut link.attributes, out);
        }
    }
}

impl Record for LogRecord {
    const NAME: &'static str = "log record";

    fn attributes_mut(&mut self) -> &mut Vec<KeyValue> {
        &mut self.attributes
    }

    fn strings_mut<'a>(&'a mut self, out: &mut Vec<&'a mut String>) {
        if let Some(body) = &mut self.body {
            strings_of_value(body, out);
        }
        strings_of_attributes(&mut self.attributes, out);
    }
}

/// Data points with exemplars: attributes and the exemplars' filtered attributes.
macro_rules! data_point_record {
    ($($point:ty),*) => {$(
        impl Record for $point {
            const NAME: &'static str = "data point";

            fn attributes_mut(&mut self) -> &mut Vec<KeyValue> {
                &mut self.attributes
            }

            fn strings_mut<'a>(&'a mut self, out: &mut Vec<&'a mut String>) {
                strings_of_attributes(&mut self.attributes, out);
                for exemplar in &mut self.exemplars {
                    strings_of_attributes(&mut exemplar.filtered_attributes, out);
                }
            }
        }
    )*};
}

data_point_record!(
    NumberDataPoint,
    HistogramDataPoint,
    ExponentialHistogramDataPoint
);

impl Record for SummaryDataPoint {
    const NAME: &'static str = "data point";

    fn attributes_mut(&mut self) -> &mut Vec<KeyValue> {
        &mut self.attributes
    }

    fn strings_mut<'a>(&'a mut self, out: &mut Vec<&'a mut String>) {
        strings_of_attributes(&mut self.attributes, out);
    }
}

/// The log body when it is a plain string (what `max_log_line_bytes` limits).
pub(crate) fn log_line(record: &LogRecord) -> Option<&str> {
    match record.body.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

pub(crate) fn log_line_mut(record: &mut LogRecord) -> Option<&mut String> {
    match record.body.as_mut()?.value.as_mut()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}
