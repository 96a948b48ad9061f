//! OTLP → Arrow: one builder per table that takes whole export requests and yields record batches of the
//! table's Arrow schema.
//!
//! Conversion is synchronous CPU work; the exporter runs it on its writer threads, never on the receivers'
//! reactor. Values are copied from the proto straight into Arrow buffers (strings borrowed, ids and non-string
//! values formatted into one reused scratch buffer), so no `String` is allocated per attribute. A builder is
//! finished every [`CHUNK_ROWS`] rows, or once its rows repeat 32 MiB of group data (and at each commit), to
//! keep its memory and Arrow's 32-bit offsets small; a request whose rows alone would repeat more than
//! [`MAX_REPEATED_BYTES`] of their resource and scope is refused before conversion ([`repeated`]).

mod column;
mod columns;
mod logs;
mod metrics;
mod presized;
mod repeated;
mod spans;
mod variant;
mod wire_attrs;
mod wire_groups;

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::record_batch::RecordBatch;
use otlake_core::{ExportRequest, Signal};

use crate::config::{SchemaVersion, SeverityNumberFormat};

pub use repeated::{ConvertError, MAX_REPEATED_BYTES};

/// Rows per record batch handed to the Parquet writer: big enough for efficient encoding, small enough that
/// the uncompressed Arrow data of one chunk stays a few MB.
pub const CHUNK_ROWS: usize = 8192;

/// The rows of one table being built.
pub struct Rows {
    inner: Inner,
    /// Group bytes the rows since the last `finish` repeat (see [`repeated`]).
    repeated: u64,
}

enum Inner {
    Spans(Box<spans::SpanRows>),
    Logs(Box<logs::LogRows>),
    Metrics(Box<metrics::MetricRows>),
}

impl Rows {
    /// An empty builder for the table of `signal`.
    pub fn new(signal: Signal, version: SchemaVersion, severity: SeverityNumberFormat) -> Self {
        let encoding = match version {
            SchemaVersion::V1 => columns::Encoding::Text,
            SchemaVersion::V2 => columns::Encoding::Variant,
        };
        let inner = match signal {
            Signal::Traces => Inner::Spans(Box::new(spans::SpanRows::new(encoding))),
            Signal::Logs => Inner::Logs(Box::new(logs::LogRows::new(severity, encoding))),
            Signal::Metrics => Inner::Metrics(Box::new(metrics::MetricRows::new(encoding))),
        };
        Rows { inner, repeated: 0 }
    }

    /// Rows appended since the last `finish`.
    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Spans(r) => r.len(),
            Inner::Logs(r) => r.len(),
            Inner::Metrics(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Time to `finish` (before the next request): [`CHUNK_ROWS`] rows, or rows that repeat 32 MiB of their
    /// groups.
    pub fn is_full(&self) -> bool {
        self.len() >= CHUNK_ROWS || self.repeated >= repeated::CHUNK_REPEATED_BYTES
    }

    /// Appends the items of `payload`; returns how many rows were added. A payload of another signal adds
    /// nothing and returns `Ok(None)` (a routing bug, reported by the caller). A request whose rows would
    /// repeat too much of their groups is refused whole, before anything is appended.
    pub fn append(&mut self, request: &ExportRequest) -> Result<Option<usize>, ConvertError> {
        let repeated = repeated::check(repeated::of_request(request))?;
        let added = match (&mut self.inner, request) {
            (Inner::Spans(r), ExportRequest::Traces(req)) => r.append(req),
            (Inner::Logs(r), ExportRequest::Logs(req)) => r.append(req),
            (Inner::Metrics(r), ExportRequest::Metrics(req)) => r.append(req),
            _ => return Ok(None),
        };
        self.repeated += repeated;
        Ok(Some(added))
    }

    /// Whether [`append_wire`](Self::append_wire) reads this signal's bytes itself: it does for the table's
    /// own signal (spans, log records, metric data points).
    pub fn takes_wire(&self, signal: Signal) -> bool {
        matches!(
            (&self.inner, signal),
            (Inner::Spans(_), Signal::Traces)
                | (Inner::Logs(_), Signal::Logs)
                | (Inner::Metrics(_), Signal::Metrics)
        )
    }

    /// Appends the items of a validated wire request of `signal` straight from its bytes, without decoding it
    /// into prost's types; returns how many rows were added, or `Ok(None)` when `signal` is another table's.
    ///
    /// On `Err` (bytes that prost would not decode either) some rows of the request may have been appended
    /// and the builder is no longer consistent: the caller drops it (and its window) and starts a new one. A
    /// request whose rows would repeat too much of their groups is refused before anything is appended.
    pub fn append_wire(
        &mut self,
        signal: Signal,
        bytes: &[u8],
    ) -> Result<Option<usize>, ConvertError> {
        if !self.takes_wire(signal) {
            return Ok(None);
        }
        let repeated = repeated::check(match &self.inner {
            Inner::Metrics(_) => metrics::repeated_wire(bytes)?,
            Inner::Spans(_) | Inner::Logs(_) => repeated::of_wire(bytes)?,
        })?;
        let added = match &mut self.inner {
            Inner::Spans(r) => r.append_wire(bytes)?,
            Inner::Logs(r) => r.append_wire(bytes)?,
            Inner::Metrics(r) => r.append_wire(bytes)?,
        };
        self.repeated += repeated;
        Ok(Some(added))
    }

    /// The rows appended so far as one record batch of `schema`; the builder is empty afterwards.
    pub fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
        self.repeated = 0;
        match &mut self.inner {
            Inner::Spans(r) => r.finish(schema),
            Inner::Logs(r) => r.finish(schema),
            Inner::Metrics(r) => r.finish(schema),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::TableSchema;
    use deltalake::arrow::array::{Array, AsArray, MapArray, StructArray};
    use deltalake::arrow::datatypes::Int64Type;
    use otlake_core::Payload;
    use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
    use otlake_core::test_util::{kv, sample_logs, sample_metrics, sample_traces};

    fn finish(signal: Signal, payload: Payload) -> RecordBatch {
        let schema = TableSchema::new(signal, SchemaVersion::V1).expect("schema");
        let mut rows = Rows::new(signal, SchemaVersion::V1, SeverityNumberFormat::Number);
        let added = rows
            .append(payload.request().expect("decoded"))
            .expect("converts")
            .expect("right signal");
        assert_eq!(added, payload.item_count());
        let batch = rows.finish(&schema.arrow).expect("finish");
        assert!(rows.is_empty(), "finish empties the builder");
        batch
    }

    fn map_entries(map: &MapArray, row: usize) -> Vec<(String, Option<String>)> {
        let entries = map.value(row);
        let keys = entries.column(0).as_string::<i32>();
        let values = entries.column(1).as_string::<i32>();
        (0..entries.len())
            .map(|i| {
                (
                    keys.value(i).to_owned(),
                    values.is_valid(i).then(|| values.value(i).to_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn spans_become_rows_with_hex_ids_enum_names_and_null_root_parents() {
        let mut request = sample_traces(1, 2);
        let span = &mut request.resource_spans[0].scope_spans[0].spans[1];
        span.parent_span_id = vec![0xaa; 8];
        span.attributes.push(KeyValue {
            key: "gen_ai.usage.input_tokens".into(),
            value: Some(AnyValue {
                value: Some(Value::IntValue(120)),
            }),
            ..Default::default()
        });
        span.attributes
            .push(kv("gen_ai.request.model", "second-wins"));
        let batch = finish(Signal::Traces, request.into());
        assert_eq!(batch.num_rows(), 2);
        let col = |name: &str| batch.column_by_name(name).expect(name).clone();
        let trace_id = col("trace_id");
        assert_eq!(
            trace_id.as_string::<i32>().value(0),
            "00000000000000010000000000000001"
        );
        let parent = col("parent_span_id");
        assert!(parent.is_null(0), "a root span's parent is NULL, not ''");
        assert_eq!(parent.as_string::<i32>().value(1), "aaaaaaaaaaaaaaaa");
        assert_eq!(
            col("kind").as_string::<i32>().value(0),
            "SPAN_KIND_INTERNAL"
        );
        let status = col("status");
        let status = status
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("struct");
        assert_eq!(
            status.column(1).as_string::<i32>().value(0),
            "STATUS_CODE_OK"
        );
        assert_eq!(
            col("start_time_unix_nano")
                .as_primitive::<Int64Type>()
                .value(0),
            1_700_000_000_000_000_001
        );
        let attributes = col("attributes");
        let attributes = attributes.as_any().downcast_ref::<MapArray>().expect("map");
        assert_eq!(
            map_entries(attributes, 1),
            vec![
                (
                    "gen_ai.usage.input_tokens".to_owned(),
                    Some("120".to_owned())
                ),
                (
                    "gen_ai.request.model".to_owned(),
                    Some("second-wins".to_owned())
                ),
            ],
            "values as text; a duplicate key keeps its last value"
        );
        let resource = col("resource");
        let resource = resource
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("struct");
        let resource_attributes = resource
            .column(0)
            .as_any()
            .downcast_ref::<MapArray>()
            .expect("map");
        assert_eq!(
            map_entries(resource_attributes, 0),
            vec![("service.name".to_owned(), Some("svc-0".to_owned()))]
        );
    }

    #[test]
    fn log_bodies_of_every_kind_become_text() {
        let mut request = sample_logs(1, 3);
        let records = &mut request.resource_logs[0].scope_logs[0].log_records;
        records[1].body = Some(AnyValue {
            value: Some(Value::BytesValue(vec![1, 2])),
        });
        records[2].body = None;
        let batch = finish(Signal::Logs, request.into());
        let body = batch.column_by_name("body").expect("body");
        let body = body.as_string::<i32>();
        assert_eq!(body.value(0), "log line 0-0");
        assert_eq!(body.value(1), "AQI=");
        assert!(body.is_null(2));
        let severity = batch.column_by_name("severity_number").expect("severity");
        assert_eq!(severity.as_string::<i32>().value(0), "9");
        assert!(
            batch
                .column_by_name("trace_id")
                .expect("trace_id")
                .is_null(0),
            "no trace context: NULL"
        );
    }

    #[test]
    fn metrics_give_one_row_per_point_with_one_type_struct() {
        let batch = finish(Signal::Metrics, sample_metrics(2).into());
        assert_eq!(batch.num_rows(), 6);
        let types = batch.column_by_name("metric_type").expect("metric_type");
        let types = types.as_string::<i32>();
        assert_eq!((types.value(0), types.value(2)), ("GAUGE", "HISTOGRAM"));
        let gauge = batch.column_by_name("gauge").expect("gauge");
        let histogram = batch.column_by_name("histogram").expect("histogram");
        for row in 0..6 {
            let is_gauge = types.value(row) == "GAUGE";
            assert_eq!(gauge.is_valid(row), is_gauge, "row {row}");
            assert_eq!(histogram.is_valid(row), !is_gauge, "row {row}");
        }
        let histogram = histogram
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("struct");
        let temporality = histogram
            .column_by_name("aggregation_temporality")
            .expect("temporality");
        assert_eq!(
            temporality.as_string::<i32>().value(2),
            "AGGREGATION_TEMPORALITY_CUMULATIVE"
        );
    }

    #[test]
    fn a_payload_of_another_signal_is_refused() {
        let mut rows = Rows::new(
            Signal::Traces,
            SchemaVersion::V1,
            SeverityNumberFormat::Number,
        );
        assert_eq!(
            rows.append(&ExportRequest::from(sample_logs(1, 1)))
                .expect("no error"),
            None
        );
        assert!(rows.is_empty());
    }
}
