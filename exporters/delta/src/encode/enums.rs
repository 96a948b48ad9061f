//! Proto enums as their proto names (`SPAN_KIND_SERVER`, `STATUS_CODE_ERROR`, ...) and the `metric_type`
//! values. A value the proto does not know is written as its number, so nothing is lost.

use otlake_core::proto::logs::v1::SeverityNumber;
use otlake_core::proto::metrics::v1::AggregationTemporality;
use otlake_core::proto::trace::v1::{span::SpanKind, status::StatusCode};

use crate::config::SeverityNumberFormat;

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
    out.push_str(itoa::Buffer::new().format(value));
    out.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
