//! Timestamps: the `time_parser` operator and the `timestamp:` block of the parsers, with the Collector's keys
//! (`parse_from`, `layout_type`, `layout`, `location`).
//!
//! `strptime` layouts are the Collector's (its `%L` milliseconds, `%f` microseconds and `%s` nanoseconds are
//! translated to chrono's fixed-width fractions); `gotime` layouts (`2006-01-02T15:04:05.000Z07:00`) are translated
//! to the same; a layout without a year (`%m-%d %H:%M:%S`, as vLLM prints)
//! takes the current year. `epoch` layouts: `s`, `ms`, `us`, `ns`, `s.ms`, `s.us`, `s.ns`. Without an offset in
//! the text, `location` (an IANA zone, `Local`, default `UTC`) says which zone the wall time is in.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use otlake_core::ConfigError;
use serde::Deserialize;
use serde_json::Value;

use super::{Applying, OnError, Operator, field};
use crate::entry::{Entry, Field};

/// The `timestamp:` block of a parser.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    /// The field holding the time. Required.
    pub parse_from: String,
    /// `strptime` (default), `gotime` (a Go reference layout) or `epoch`.
    pub layout_type: Option<String>,
    /// The layout: a strptime pattern or an epoch unit. Required.
    pub layout: String,
    /// The zone of a time written without an offset: an IANA name (`Europe/Paris`), `Local`, or `UTC` (default).
    pub location: Option<String>,
}

/// `time_parser`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeParserConfig {
    /// The operator's id (default: its type and position).
    pub id: Option<String>,
    /// The id of a later operator to send entries to (default: the next one).
    pub output: Option<String>,
    /// What to do with an entry whose time does not parse: `send` (default), `send_quiet`, `drop`, `drop_quiet`.
    pub on_error: OnError,
    /// The field holding the time. Required.
    pub parse_from: String,
    /// `strptime` (default), `gotime` (a Go reference layout) or `epoch`.
    pub layout_type: Option<String>,
    /// The layout: a strptime pattern or an epoch unit. Required.
    pub layout: String,
    /// The zone of a time written without an offset (IANA name, `Local`, `UTC`).
    pub location: Option<String>,
}

/// Where wall times are.
#[derive(Clone, Copy, Debug)]
enum Zone {
    Utc,
    Local,
    Named(chrono_tz::Tz),
}

#[derive(Clone, Debug)]
enum Layout {
    Strptime {
        format: String,
        has_offset: bool,
        has_year: bool,
    },
    /// Nanoseconds per unit of the integer part, and whether a fraction is expected.
    Epoch { unit_nanos: i64 },
}

/// A compiled time layout.
#[derive(Clone, Debug)]
pub struct TimeLayout {
    from: Field,
    layout: Layout,
    zone: Zone,
}

impl TimeLayout {
    /// Compiles the keys of a timestamp block; errors are relative to the block.
    pub fn compile(
        parse_from: &str,
        layout_type: Option<&str>,
        layout: &str,
        location: Option<&str>,
    ) -> Result<TimeLayout, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let from = if parse_from.is_empty() {
            errors.push(ConfigError::new("parse_from", "is required"));
            None
        } else {
            field("parse_from", parse_from, &mut errors)
        };
        let compiled = match layout_type.unwrap_or("strptime") {
            _ if layout.is_empty() => {
                errors.push(ConfigError::new("layout", "is required"));
                None
            }
            "strptime" => Some(strptime(layout)),
            "gotime" => match gotime(layout) {
                Ok(format) => Some(Layout::strptime_of(format)),
                Err(message) => {
                    errors.push(ConfigError::new("layout", message));
                    None
                }
            },
            "epoch" => match layout {
                "s" | "s.ms" | "s.us" | "s.ns" => Some(Layout::Epoch {
                    unit_nanos: 1_000_000_000,
                }),
                "ms" => Some(Layout::Epoch {
                    unit_nanos: 1_000_000,
                }),
                "us" => Some(Layout::Epoch { unit_nanos: 1_000 }),
                "ns" => Some(Layout::Epoch { unit_nanos: 1 }),
                other => {
                    errors.push(ConfigError::new(
                        "layout",
                        format!("unknown epoch layout `{other}`: expected s, ms, us, ns, s.ms, s.us or s.ns"),
                    ));
                    None
                }
            },
            other => {
                errors.push(ConfigError::new(
                    "layout_type",
                    format!("unknown layout_type `{other}`: expected strptime, gotime or epoch"),
                ));
                None
            }
        };
        let zone = match location.unwrap_or("UTC") {
            "UTC" | "utc" => Zone::Utc,
            "Local" | "local" => Zone::Local,
            name => {
                match name.parse::<chrono_tz::Tz>() {
                    Ok(tz) => Zone::Named(tz),
                    Err(_) => {
                        errors.push(ConfigError::new(
                        "location",
                        format!("unknown time zone `{name}`: an IANA name (Europe/Paris), Local or UTC"),
                    ));
                        Zone::Utc
                    }
                }
            }
        };
        if let Some(Layout::Strptime { format, .. }) = &compiled {
            // A layout chrono cannot use at all shows up here, once, rather than on every line.
            if chrono::format::StrftimeItems::new(format)
                .any(|i| matches!(i, chrono::format::Item::Error))
            {
                errors.push(ConfigError::new(
                    "layout",
                    format!("`{layout}` is not a strptime layout"),
                ));
            }
        }
        match (from, compiled) {
            (Some(from), Some(layout)) if errors.is_empty() => {
                Ok(TimeLayout { from, layout, zone })
            }
            _ => Err(errors),
        }
    }

    /// Sets the entry's timestamp from its field.
    pub fn apply_to(&self, entry: &mut Entry) -> Result<(), String> {
        let value = self
            .from
            .get(entry)
            .ok_or_else(|| "the time field is missing".to_owned())?;
        entry.timestamp = Some(self.parse(value)?);
        Ok(())
    }

    /// Nanoseconds since the epoch of `value`.
    pub fn parse(&self, value: &Value) -> Result<i64, String> {
        match &self.layout {
            Layout::Epoch { unit_nanos } => {
                let number = match value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| format!("`{value}` is not an epoch time"))?;
                // Integers keep every digit (an f64 holds nanoseconds since 1970 only to ~256 ns).
                if let Some(int) = value
                    .as_i64()
                    .or_else(|| value.as_str()?.trim().parse().ok())
                {
                    return int
                        .checked_mul(*unit_nanos)
                        .ok_or_else(|| format!("`{value}` is out of range"));
                }
                Ok((number * *unit_nanos as f64) as i64)
            }
            Layout::Strptime {
                format,
                has_offset,
                has_year,
            } => {
                let text = value
                    .as_str()
                    .ok_or_else(|| format!("`{value}` is not a string"))?;
                let parsed = if *has_offset {
                    DateTime::parse_from_str(text, format)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| e.to_string())
                } else {
                    let naive = if *has_year {
                        naive(text, format)
                    } else {
                        let year = Utc::now().year();
                        naive(&format!("{year} {text}"), &format!("%Y {format}"))
                    }?;
                    self.localize(naive)
                };
                let time =
                    parsed.map_err(|e| format!("`{text}` does not match the layout: {e}"))?;
                time.timestamp_nanos_opt()
                    .ok_or_else(|| format!("`{text}` is out of range"))
            }
        }
    }

    fn localize(&self, naive: NaiveDateTime) -> Result<DateTime<Utc>, String> {
        let local = match self.zone {
            Zone::Utc => return Ok(Utc.from_utc_datetime(&naive)),
            Zone::Local => chrono::Local
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
            Zone::Named(tz) => tz
                .from_local_datetime(&naive)
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
        };
        local.ok_or_else(|| "the wall time does not exist in the zone".to_owned())
    }
}

fn naive(text: &str, format: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(text, format)
        .or_else(|e| {
            // A date-only layout: midnight.
            NaiveDate::parse_from_str(text, format)
                .map(|d| d.and_time(chrono::NaiveTime::MIN))
                .map_err(|_| e)
        })
        .map_err(|e| e.to_string())
}

/// Translates the Collector's strptime directives to chrono's.
fn strptime(layout: &str) -> Layout {
    let mut format = String::with_capacity(layout.len() + 8);
    let mut chars = layout.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            format.push(c);
            continue;
        }
        match chars.next() {
            Some('L') => format.push_str("%3f"),
            Some('f') => format.push_str("%6f"),
            Some('s') => format.push_str("%9f"),
            Some(d) => {
                format.push('%');
                format.push(d);
            }
            None => format.push('%'),
        }
    }
    Layout::strptime_of(format)
}

impl Layout {
    /// A chrono format, with what it holds: an offset (then the text says its own zone) and a year.
    fn strptime_of(format: String) -> Layout {
        use chrono::format::{Fixed, Item, Numeric};
        // `%#z` (an offset or `Z`) is an item chrono keeps private: found by its text.
        let (mut has_offset, mut has_year) = (format.contains("%#z"), false);
        for item in chrono::format::StrftimeItems::new(&format) {
            match item {
                Item::Fixed(
                    Fixed::TimezoneOffset
                    | Fixed::TimezoneOffsetColon
                    | Fixed::TimezoneOffsetDoubleColon
                    | Fixed::TimezoneOffsetTripleColon
                    | Fixed::TimezoneOffsetColonZ
                    | Fixed::TimezoneOffsetZ
                    | Fixed::RFC3339,
                ) => has_offset = true,
                Item::Fixed(Fixed::RFC2822) => {
                    has_offset = true;
                    has_year = true;
                }
                Item::Numeric(Numeric::Year | Numeric::YearMod100 | Numeric::IsoYear, _) => {
                    has_year = true
                }
                _ => {}
            }
        }
        Layout::Strptime {
            format,
            has_offset,
            has_year,
        }
    }
}

/// Go reference-time elements and their chrono directives, longest first where one starts another.
const GO_ELEMENTS: &[(&str, &str)] = &[
    ("January", "%B"),
    ("Jan", "%b"),
    ("Monday", "%A"),
    ("Mon", "%a"),
    ("2006", "%Y"),
    ("Z07:00", "%#z"),
    ("Z0700", "%#z"),
    ("-07:00", "%:z"),
    ("-0700", "%z"),
    (".000000000", "%.9f"),
    (".000000", "%.6f"),
    (".000", "%.3f"),
    (".999999999", "%.f"),
    (".999999", "%.f"),
    (".999", "%.f"),
    ("01", "%m"),
    ("02", "%d"),
    ("_2", "%e"),
    ("15", "%H"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("06", "%y"),
    ("PM", "%p"),
    ("pm", "%P"),
    ("1", "%m"),
    ("2", "%d"),
    ("3", "%I"),
    ("4", "%M"),
    ("5", "%S"),
];

/// Translates a Go layout (`2006-01-02T15:04:05.000Z07:00`) to a chrono format.
fn gotime(layout: &str) -> Result<String, String> {
    let mut format = String::with_capacity(layout.len() * 2);
    let mut rest = layout;
    'next: while let Some(c) = rest.chars().next() {
        for (element, directive) in GO_ELEMENTS {
            if let Some(after) = rest.strip_prefix(element) {
                format.push_str(directive);
                rest = after;
                continue 'next;
            }
        }
        if rest.starts_with("MST") {
            return Err(
                "zone abbreviations (MST) cannot be parsed: use -0700 or Z07:00".to_owned(),
            );
        }
        if c == '%' {
            format.push_str("%%");
        } else {
            format.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(format)
}

impl super::Apply for TimeLayout {
    fn apply(&self, entry: &mut Entry) -> Result<(), String> {
        self.apply_to(entry)
    }
}

pub(super) fn compile_operator(
    id: &str,
    c: &TimeParserConfig,
) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let layout = TimeLayout::compile(
        &c.parse_from,
        c.layout_type.as_deref(),
        &c.layout,
        c.location.as_deref(),
    )?;
    Ok(Box::new(Applying {
        id: id.to_owned(),
        inner: layout,
        on_error: c.on_error,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_one, run};
    use super::*;
    use serde_json::json;

    fn layout(layout_type: &str, layout: &str, location: Option<&str>) -> TimeLayout {
        TimeLayout::compile("body", Some(layout_type), layout, location).expect("valid")
    }

    #[test]
    fn strptime_with_the_collectors_fractions_and_offsets() {
        let l = layout("strptime", "%Y-%m-%d %H:%M:%S.%L", None);
        assert_eq!(
            l.parse(&json!("2024-12-01 10:00:00.123")),
            Ok(1_733_047_200_123_000_000)
        );
        let l = layout("strptime", "%Y-%m-%dT%H:%M:%S%z", None);
        assert_eq!(
            l.parse(&json!("2024-12-01T11:00:00+0100")),
            Ok(1_733_047_200_000_000_000)
        );
        let l = layout("strptime", "%Y-%m-%d %H:%M:%S", Some("Europe/Paris"));
        assert_eq!(
            l.parse(&json!("2024-12-01 11:00:00")),
            Ok(1_733_047_200_000_000_000)
        );
        assert!(l.parse(&json!("yesterday")).is_err());
    }

    #[test]
    fn a_layout_without_a_year_takes_this_one() {
        let l = layout("strptime", "%m-%d %H:%M:%S", None);
        let nanos = l.parse(&json!("12-01 10:00:00")).expect("parses");
        let parsed = Utc.timestamp_nanos(nanos);
        assert_eq!(parsed.year(), Utc::now().year());
        assert_eq!((parsed.month(), parsed.day()), (12, 1));
    }

    #[test]
    fn go_layouts() {
        let l = layout("gotime", "2006-01-02T15:04:05.000Z07:00", None);
        assert_eq!(
            l.parse(&json!("2024-12-01T11:00:00.250+01:00")),
            Ok(1_733_047_200_250_000_000)
        );
        assert_eq!(
            l.parse(&json!("2024-12-01T10:00:00.250Z")),
            Ok(1_733_047_200_250_000_000)
        );
        let l = layout("gotime", "Jan _2 15:04:05", None);
        let parsed = Utc.timestamp_nanos(l.parse(&json!("Dec  1 10:00:00")).expect("parses"));
        assert_eq!((parsed.month(), parsed.day()), (12, 1));
        let l = layout("strptime", "%Y-%m-%dT%H:%M:%S%:z", None);
        assert_eq!(
            l.parse(&json!("2024-12-01T11:00:00+01:00")),
            Ok(1_733_047_200_000_000_000)
        );
        assert!(
            TimeLayout::compile("body", Some("gotime"), "15:04 MST", None).is_err(),
            "MST is refused, not misread"
        );
    }

    #[test]
    fn epoch_layouts() {
        assert_eq!(
            layout("epoch", "s", None).parse(&json!(1_700_000_000)),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            layout("epoch", "ms", None).parse(&json!("1700000000123")),
            Ok(1_700_000_000_123_000_000)
        );
        assert_eq!(layout("epoch", "ns", None).parse(&json!(5)), Ok(5));
        let fractional = layout("epoch", "s.ms", None)
            .parse(&json!(1.5))
            .expect("parses");
        assert_eq!(fractional, 1_500_000_000);
        assert!(layout("epoch", "s", None).parse(&json!("soon")).is_err());
    }

    #[test]
    fn config_errors_and_on_error() {
        let errors = compile_one(json!({
            "type": "time_parser", "parse_from": "body", "layout_type": "javatime",
            "layout": "x", "location": "Mars/Olympus"
        }))
        .err()
        .expect("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["operators.0.layout_type", "operators.0.location"]);

        let mut chain = compile_one(json!({
            "type": "time_parser", "parse_from": "body", "layout_type": "epoch", "layout": "s",
            "on_error": "drop_quiet"
        }))
        .expect("valid");
        let out = run(&mut chain, &["12", "not a time"]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].timestamp, Some(12_000_000_000));
    }
}
