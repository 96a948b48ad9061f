//! The read-only look on a request still in its wire form: whether any condition would drop something, decided
//! on the validated protobuf bytes without decoding. Each span, span event, log record, metric or data point
//! becomes an [`Item`] whose strings are borrowed from the bytes and whose attribute lists are read in place
//! ([`WireAttributes`]), and the same evaluator as the decoded look ([`any_matches`]) judges it: nothing is
//! allocated per item or attribute, and a request nothing matches goes on as the bytes it came in.
//!
//! Guarantee: when this says no, the decoded look (`FilterProcessor::drops_any`) says no. It reads what prost
//! would decode: a scalar field's last occurrence, a singular message field's occurrences merged (a status,
//! a scope, a resource, a body), a metric's data points of its last data variant only (prost's oneof), an
//! attribute's last `key`. Bytes it cannot read (impossible after validation) count as "would drop", which
//! sends the request to the decoded path, where the decode refuses it.

use otlake_core::Signal;
use otlake_core::wire::look::{MetricData, ResourceGroup, any_resource_group, text, value_of};
use otlake_core::wire::{FieldCursor, Misread, WireAttributes, WireError, WireValue};

use crate::ottl::{Item, any_matches};
use crate::processor::Conditions;

/// The bytes could not be read as the message they should be.
struct Unreadable;

impl From<WireError> for Unreadable {
    fn from(_: WireError) -> Self {
        Unreadable
    }
}

type Look = Result<bool, Unreadable>;

/// Whether filtering the request in `chunks` (wire chunks of one `signal`, see `Payload::wire_chunks`) would
/// drop anything.
pub fn drops_any<'a>(
    conditions: &Conditions,
    signal: Signal,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> bool {
    chunks.into_iter().any(|chunk| {
        let misread = Misread::default();
        let look = Wire {
            c: conditions,
            misread: &misread,
        };
        let request = FieldCursor::new(chunk);
        let result = match signal {
            Signal::Traces => look.items(request, Wire::span),
            Signal::Logs => look.items(request, Wire::log_record),
            Signal::Metrics => look.items(request, Wire::metric),
        };
        result.unwrap_or(true) || misread.happened()
    })
}

/// One item as a condition reads it on the wire.
type WireItem<'a> = Item<'a, WireAttributes<'a>>;

struct Wire<'a> {
    c: &'a Conditions,
    misread: &'a Misread,
}

impl<'a> Wire<'a> {
    /// Whether `item` says yes for any item of the request, given its group's resource attributes and scope
    /// name.
    fn items(
        &self,
        request: FieldCursor<'a>,
        item: fn(&Self, WireAttributes<'a>, &'a str, FieldCursor<'a>) -> Look,
    ) -> Look {
        any_resource_group(request, |group: ResourceGroup<'a>| {
            let resource = group.attributes(self.misread);
            group.any_scope_group(|scopes| {
                let scope = scopes.scope()?.map_or("", |s| s.name);
                scopes.any_item(|i| item(self, resource, scope, i))
            })
        })
    }

    fn attributes(&self, message: FieldCursor<'a>, tag: u32) -> WireAttributes<'a> {
        WireAttributes::new(message, tag, self.misread)
    }

    /// A span (name 5, kind 6, attributes 9, events 11, status 15) and its events.
    fn span(&self, resource: WireAttributes<'a>, scope: &'a str, span: FieldCursor<'a>) -> Look {
        if !self.c.span.is_empty() {
            let mut item: WireItem<'a> = Item::new(resource, scope, self.attributes(span, 9));
            let mut fields = span;
            while let Some((tag, value)) = fields.next_field()? {
                match (tag, value) {
                    (5, WireValue::LengthDelimited(name)) => item.name = text(name)?,
                    (6, WireValue::Varint(kind)) => item.kind = kind as i32,
                    // Status: code 3, merged over the status's occurrences.
                    (15, WireValue::LengthDelimited(status)) => {
                        let mut status = span.enter(status)?;
                        while let Some((tag, value)) = status.next_field()? {
                            match (tag, value) {
                                (3, WireValue::Varint(code)) => item.status_code = code as i32,
                                (3, _) => return Err(Unreadable),
                                _ => {}
                            }
                        }
                    }
                    (5 | 6 | 15, _) => return Err(Unreadable),
                    _ => {}
                }
            }
            if any_matches(&self.c.span, &item) {
                return Ok(true);
            }
        }
        if self.c.spanevent.is_empty() {
            return Ok(false);
        }
        // An event: name 2, attributes 3.
        span.any_message(11, |event| {
            let mut item: WireItem<'a> = Item::new(resource, scope, self.attributes(event, 3));
            let mut fields = event;
            while let Some((tag, value)) = fields.next_field()? {
                match (tag, value) {
                    (2, WireValue::LengthDelimited(name)) => item.name = text(name)?,
                    (2, _) => return Err(Unreadable),
                    _ => {}
                }
            }
            Ok(any_matches(&self.c.spanevent, &item))
        })
    }

    /// A log record: severity number 2, severity text 3, body 5, attributes 6.
    fn log_record(
        &self,
        resource: WireAttributes<'a>,
        scope: &'a str,
        record: FieldCursor<'a>,
    ) -> Look {
        let mut item: WireItem<'a> = Item::new(resource, scope, self.attributes(record, 6));
        let mut fields = record;
        while let Some((tag, value)) = fields.next_field()? {
            match (tag, value) {
                (2, WireValue::Varint(number)) => item.severity_number = number as i32,
                (3, WireValue::LengthDelimited(severity)) => item.severity_text = text(severity)?,
                (2 | 3, _) => return Err(Unreadable),
                _ => {}
            }
        }
        item.body = value_of(record, 5)?;
        Ok(any_matches(&self.c.log_record, &item))
    }

    /// A metric (its name and data as prost keeps them, `MetricData`) and its data points.
    fn metric(
        &self,
        resource: WireAttributes<'a>,
        scope: &'a str,
        metric: FieldCursor<'a>,
    ) -> Look {
        let data = MetricData::read(metric)?;
        // OTTL's METRIC_DATA_TYPE_* number.
        let metric_type = match data.variant {
            5 => 1,
            7 => 2,
            9 => 3,
            10 => 4,
            11 => 5,
            _ => 0,
        };
        // A metric has no attributes path (validation refuses one): an empty list stands in.
        let none = self.attributes(FieldCursor::new(&[]), 1);
        let mut item: WireItem<'a> = Item::new(resource, scope, none);
        item.name = data.name;
        item.metric_name = data.name;
        item.metric_type = metric_type;
        if any_matches(&self.c.metric, &item) {
            return Ok(true);
        }
        if self.c.datapoint.is_empty() {
            return Ok(false);
        }
        let point_attributes = data.point_attributes_field();
        data.any_point(|point| {
            let mut item: WireItem<'a> =
                Item::new(resource, scope, self.attributes(point, point_attributes));
            item.metric_name = data.name;
            item.metric_type = metric_type;
            Ok(any_matches(&self.c.datapoint, &item))
        })
    }
}

#[cfg(test)]
mod tests {
    use otlake_core::test_util::fuzz::{Rng, requests};
    use otlake_core::{ComponentId, Payload};

    use super::*;
    use crate::FilterProcessor;
    use crate::ottl::{Condition, Context};

    /// Keys, names and string values of the random requests: what the conditions below look for, and others.
    const WORDS: &[&str] = &[
        "GET /health",
        "/health",
        "http.route",
        "user",
        "ana",
        "n",
        "k",
        "service.name",
        "s1",
        "e1",
        "WARN",
        "m1",
        "",
    ];

    /// One condition per case, together reading every path of every context.
    const CASES: &[(Context, &str)] = &[
        (Context::Span, r#"name == "GET /health""#),
        (Context::Span, r#"attributes["http.route"] == "/health""#),
        (
            Context::Span,
            "kind == SPAN_KIND_SERVER or status.code == STATUS_CODE_ERROR",
        ),
        (
            Context::Span,
            r#"resource.attributes["service.name"] == "ana""#,
        ),
        (Context::Span, r#"instrumentation_scope.name == "s1""#),
        (Context::Span, r#"attributes["n"] > 3"#),
        (
            Context::Span,
            r#"attributes["k"] != nil and not IsMatch(attributes["user"], "^an")"#,
        ),
        (Context::SpanEvent, r#"name == "e1""#),
        (
            Context::SpanEvent,
            r#"attributes["k"] == 2.5 or attributes["n"] == true"#,
        ),
        (Context::LogRecord, r#"body == "WARN""#),
        (
            Context::LogRecord,
            r#"severity_number >= SEVERITY_NUMBER_WARN and severity_text != "WARN""#,
        ),
        (
            Context::LogRecord,
            r#"IsMatch(body, "^GET") or attributes["user"] == "ana""#,
        ),
        (Context::LogRecord, "body == nil"),
        (Context::Metric, r#"name == "m1""#),
        (Context::Metric, "metric.type == METRIC_DATA_TYPE_SUM"),
        (Context::DataPoint, r#"attributes["k"] == 3"#),
        (
            Context::DataPoint,
            r#"metric.type == METRIC_DATA_TYPE_HISTOGRAM and attributes["n"] != nil"#,
        ),
    ];

    fn processor(context: Context, text: &str) -> (FilterProcessor, Signal) {
        let parsed = vec![Condition::parse(text, context).expect(text)];
        let mut c = Conditions {
            span: Vec::new(),
            spanevent: Vec::new(),
            log_record: Vec::new(),
            metric: Vec::new(),
            datapoint: Vec::new(),
        };
        let signal = match context {
            Context::Span => {
                c.span = parsed;
                Signal::Traces
            }
            Context::SpanEvent => {
                c.spanevent = parsed;
                Signal::Traces
            }
            Context::LogRecord => {
                c.log_record = parsed;
                Signal::Logs
            }
            Context::Metric => {
                c.metric = parsed;
                Signal::Metrics
            }
            Context::DataPoint => {
                c.datapoint = parsed;
                Signal::Metrics
            }
        };
        let id = ComponentId::new("filter");
        (FilterProcessor::new(&id, c, signal), signal)
    }

    /// Random requests with repeated and merged fields at every level (a span's name twice, an attribute's
    /// key twice, a resource, status or body split in two, a metric whose data variant changes): the wire look
    /// answers exactly as the decoded look, for each condition, and both answers occur.
    #[test]
    fn the_wire_look_answers_as_the_decoded_look() {
        let mut rng = Rng(0xf11_7e55);
        for (context, text) in CASES {
            let (p, signal) = processor(*context, text);
            let mut yes = 0;
            const REQUESTS: usize = 600;
            for i in 0..REQUESTS {
                let bytes = requests::request(&mut rng, signal, WORDS);
                let payload = Payload::from_wire(signal, bytes.clone().into()).expect("valid");
                let decoded = p.drops_any(payload.request().expect("decodes"));
                let on_wire = drops_any(&p.conditions, signal, [bytes.as_slice()]);
                assert_eq!(on_wire, decoded, "`{text}`, request {i}: {bytes:?}");
                yes += usize::from(on_wire);
            }
            assert!(
                yes > 0 && yes < REQUESTS,
                "`{text}`: {yes} of {REQUESTS} requests would drop something"
            );
        }
    }

    /// Bytes that are not a request of the signal count as "would drop", so the decoded path (which refuses
    /// them) decides.
    #[test]
    fn unreadable_bytes_count_as_would_drop() {
        let (p, signal) = processor(Context::Span, r#"name == "never""#);
        let valid = requests::request(&mut Rng(7), signal, WORDS);
        assert!(!drops_any(&p.conditions, signal, [valid.as_slice()]));
        let broken = otlake_core::test_util::traces_with_invalid_utf8();
        assert!(drops_any(&p.conditions, signal, [broken.as_slice()]));
        assert!(drops_any(&p.conditions, signal, [&[0x0a, 0x05, 0x12][..]]));
    }
}
