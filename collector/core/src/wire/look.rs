//! Read-only looks into a validated request's wire bytes, for the editing processors that decide "nothing to
//! do" without decoding: the resource → scope → item walk all three export requests share
//! ([`any_resource_group`]), attribute lists read in place ([`WireAttributes`], an
//! [`Attributes`](crate::attributes::Attributes) like a decoded `&[KeyValue]`), and values read as prost would
//! decode them ([`value_of`]). Everything is borrowed from the bytes: nothing is allocated.
//!
//! They read what prost would decode: every occurrence of a repeated field in order; for a singular field the
//! last occurrence (a scalar) or all occurrences together (a message, which prost merges); the key of an
//! attribute is its last `key` field. Bytes they cannot read (impossible after [`validate`](super::validate))
//! are an error, or, inside an attribute list, a note in [`Misread`]: a look that meets one must answer "would
//! change", sending the request to the decoded path, where the decode refuses it.

use std::cell::Cell;

use super::{FieldCursor, WireError, WireValue};
use crate::attributes::{Attributes, ValueRef};
use crate::proto::common::v1::InstrumentationScope;

/// Set when an attribute list read on the wire met bytes it could not read (its [`Attributes::any`] then answered
/// no). A look that finds it set answers "would change".
#[derive(Debug, Default)]
pub struct Misread(Cell<bool>);

impl Misread {
    /// Whether any read noted here failed.
    pub fn happened(&self) -> bool {
        self.0.get()
    }

    fn note(&self) {
        self.0.set(true);
    }
}

/// A string field's text (refused when it is not UTF-8, as prost refuses it).
pub fn text(bytes: &[u8]) -> Result<&str, WireError> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| WireError::new("invalid UTF-8"))
}

impl<'a> FieldCursor<'a> {
    /// Whether `f` says yes for any occurrence of the message field `tag` (a repeated field's elements, or the
    /// parts prost merges into a singular one), each entered with its recursion budget, in order.
    pub fn any_message<E: From<WireError>>(
        self,
        tag: u32,
        mut f: impl FnMut(FieldCursor<'a>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let mut fields = self;
        while let Some((t, value)) = fields.next_field()? {
            if t != tag {
                continue;
            }
            let WireValue::LengthDelimited(body) = value else {
                return Err(WireError::new("a message field with another wire type").into());
            };
            if f(self.enter(body)?)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The value of the `AnyValue` field `tag` of `message` (an attribute's value, a log record's body), as prost
/// decodes it: the last variant set across every occurrence of the field (prost merges them).
pub fn value_of<'a>(message: FieldCursor<'a>, tag: u32) -> Result<ValueRef<'a>, WireError> {
    let mut value = ValueRef::Empty;
    message.any_message(tag, |mut any| {
        while let Some((t, v)) = any.next_field()? {
            value = match (t, v) {
                (1, WireValue::LengthDelimited(s)) => ValueRef::Str(text(s)?),
                (2, WireValue::Varint(b)) => ValueRef::Bool(b != 0),
                (3, WireValue::Varint(i)) => ValueRef::Int(i as i64),
                (4, WireValue::Fixed64(x)) => ValueRef::Double(f64::from_bits(x)),
                (5, WireValue::LengthDelimited(_)) => ValueRef::Array,
                (6, WireValue::LengthDelimited(_)) => ValueRef::Kvlist,
                (7, WireValue::LengthDelimited(b)) => ValueRef::Bytes(b),
                (8, WireValue::Varint(i)) => ValueRef::StrIndex(i as i32),
                (1..=8, _) => {
                    return Err(WireError::new("an AnyValue field with another wire type"));
                }
                _ => continue,
            };
        }
        Ok::<_, WireError>(false)
    })?;
    Ok(value)
}

/// One `KeyValue`: its key (the last `key` field; none is the empty key) and its value.
fn key_value(kv: FieldCursor<'_>) -> Result<(&str, ValueRef<'_>), WireError> {
    let mut key: &[u8] = &[];
    let mut fields = kv;
    while let Some((tag, value)) = fields.next_field()? {
        if tag == 1 {
            let WireValue::LengthDelimited(bytes) = value else {
                return Err(WireError::new("a key with another wire type"));
            };
            key = bytes;
        }
    }
    Ok((text(key)?, value_of(kv, 2)?))
}

/// A list of attributes (`repeated KeyValue`) read in place from a message's wire bytes: a span's, a log
/// record's, an event's or a data point's own field, or a resource's (every occurrence of the group's
/// `resource`, merged as prost merges them).
#[derive(Clone, Copy, Debug)]
pub struct WireAttributes<'a> {
    message: FieldCursor<'a>,
    /// The singular message field of `message` that holds the list, when it is not `message`'s own.
    within: Option<u32>,
    tag: u32,
    misread: &'a Misread,
}

impl<'a> WireAttributes<'a> {
    /// The attributes in field `tag` of `message`; a read that fails is noted in `misread`.
    pub fn new(message: FieldCursor<'a>, tag: u32, misread: &'a Misread) -> Self {
        WireAttributes {
            message,
            within: None,
            tag,
            misread,
        }
    }

    fn try_any(self, f: &mut impl FnMut(&'a str, ValueRef<'a>) -> bool) -> Result<bool, WireError> {
        let mut list = |message: FieldCursor<'a>| {
            message.any_message(self.tag, |kv| {
                let (key, value) = key_value(kv)?;
                Ok::<_, WireError>(f(key, value))
            })
        };
        match self.within {
            None => list(self.message),
            Some(field) => self.message.any_message(field, list),
        }
    }
}

impl<'a> Attributes<'a> for WireAttributes<'a> {
    fn any(self, mut f: impl FnMut(&'a str, ValueRef<'a>) -> bool) -> bool {
        self.try_any(&mut f).unwrap_or_else(|_| {
            self.misread.note();
            false
        })
    }
}

/// Whether `f` says yes for any top-level group of a request (field 1 of all three export requests: a
/// `ResourceSpans`, `ResourceLogs` or `ResourceMetrics`).
pub fn any_resource_group<'a, E: From<WireError>>(
    request: FieldCursor<'a>,
    mut f: impl FnMut(ResourceGroup<'a>) -> Result<bool, E>,
) -> Result<bool, E> {
    request.any_message(1, |group| f(ResourceGroup(group)))
}

/// A `ResourceSpans`, `ResourceLogs` or `ResourceMetrics`: its resource (field 1) and its scope groups (field
/// 2), the same layout in all three.
#[derive(Clone, Copy, Debug)]
pub struct ResourceGroup<'a>(FieldCursor<'a>);

impl<'a> ResourceGroup<'a> {
    /// Whether `f` says yes for any occurrence of the resource (prost merges them into one).
    pub fn any_resource<E: From<WireError>>(
        self,
        f: impl FnMut(FieldCursor<'a>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        self.0.any_message(1, f)
    }

    /// The resource's attributes (field 1 of every occurrence of the resource).
    pub fn attributes(self, misread: &'a Misread) -> WireAttributes<'a> {
        WireAttributes {
            message: self.0,
            within: Some(1),
            tag: 1,
            misread,
        }
    }

    /// Whether `f` says yes for any scope group.
    pub fn any_scope_group<E: From<WireError>>(
        self,
        mut f: impl FnMut(ScopeGroup<'a>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        self.0.any_message(2, |scope| f(ScopeGroup(scope)))
    }
}

/// A `ScopeSpans`, `ScopeLogs` or `ScopeMetrics`: its scope (field 1) and its items (field 2: spans, log
/// records or metrics).
#[derive(Clone, Copy, Debug)]
pub struct ScopeGroup<'a>(FieldCursor<'a>);

impl<'a> ScopeGroup<'a> {
    /// Whether `f` says yes for any occurrence of the scope (prost merges them into one).
    pub fn any_scope<E: From<WireError>>(
        self,
        f: impl FnMut(FieldCursor<'a>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        self.0.any_message(1, f)
    }

    /// The scope as prost decodes it: `None` without one, else its name and version.
    pub fn scope(self) -> Result<Option<Scope<'a>>, WireError> {
        let mut scope = None;
        self.any_scope(|mut fields| {
            let s: &mut Scope<'a> = scope.get_or_insert_default();
            while let Some((tag, value)) = fields.next_field()? {
                match (tag, value) {
                    (1, WireValue::LengthDelimited(name)) => s.name = text(name)?,
                    (2, WireValue::LengthDelimited(version)) => s.version = text(version)?,
                    (1 | 2, _) => {
                        return Err(WireError::new("a scope field with another wire type"));
                    }
                    _ => {}
                }
            }
            Ok::<_, WireError>(false)
        })?;
        Ok(scope)
    }

    /// Whether `f` says yes for any item.
    pub fn any_item<E: From<WireError>>(
        self,
        f: impl FnMut(FieldCursor<'a>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        self.0.any_message(2, f)
    }
}

/// An instrumentation scope's name and version, borrowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scope<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

impl<'a> Scope<'a> {
    /// The name and version of a decoded scope.
    pub fn of(scope: Option<&'a InstrumentationScope>) -> Option<Self> {
        scope.map(|s| Scope {
            name: &s.name,
            version: &s.version,
        })
    }
}

/// A `Metric` read as prost decodes it: its name (field 1) and its data, the last variant set of the `data`
/// oneof (gauge 5, sum 7, histogram 9, exponential histogram 10, summary 11), whose occurrences since the
/// variant was last set prost merges (earlier ones of another variant are replaced).
#[derive(Clone, Copy, Debug)]
pub struct MetricData<'a> {
    pub name: &'a str,
    /// The field number of the data variant; 0 without data.
    pub variant: u32,
    /// Where the last run of `variant` starts.
    run: FieldCursor<'a>,
}

impl<'a> MetricData<'a> {
    pub fn read(metric: FieldCursor<'a>) -> Result<Self, WireError> {
        let mut data = MetricData {
            name: "",
            variant: 0,
            run: metric,
        };
        let mut fields = metric;
        loop {
            let here = fields;
            let Some((tag, value)) = fields.next_field()? else {
                return Ok(data);
            };
            match (tag, value) {
                (1, WireValue::LengthDelimited(name)) => data.name = text(name)?,
                // Another variant replaces the data; the same one merges into it.
                (5 | 7 | 9 | 10 | 11, WireValue::LengthDelimited(_)) if tag != data.variant => {
                    data.variant = tag;
                    data.run = here;
                }
                (5 | 7 | 9 | 10 | 11, WireValue::LengthDelimited(_)) => {}
                (1 | 5 | 7 | 9 | 10 | 11, _) => {
                    return Err(WireError::new("a metric field with another wire type"));
                }
                _ => {}
            }
        }
    }

    /// The field of a data point's attributes for this variant (7, histogram 9, exponential histogram 1).
    pub fn point_attributes_field(&self) -> u32 {
        match self.variant {
            9 => 9,
            10 => 1,
            _ => 7,
        }
    }

    /// Whether `f` says yes for any data point (field 1 of the data).
    pub fn any_point<E: From<WireError>>(
        self,
        mut f: impl FnMut(FieldCursor<'a>) -> Result<bool, E>,
    ) -> Result<bool, E> {
        if self.variant == 0 {
            return Ok(false);
        }
        self.run
            .any_message(self.variant, |data| data.any_message(1, &mut f))
    }
}
