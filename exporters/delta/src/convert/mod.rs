//! OTLP → Arrow: one builder per table that takes whole export requests and yields record batches of the
//! table's Arrow schema.
//!
//! Conversion is synchronous CPU work; the exporter runs it on its writer threads, never on the receivers'
//! reactor. Values are copied from the proto straight into Arrow buffers (strings borrowed, ids and non-string
//! values formatted into one reused scratch buffer), so no `String` is allocated per attribute. A builder is
//! finished every [`CHUNK_ROWS`] rows (and at each commit) to keep its memory and Arrow's 32-bit offsets small.

mod columns;
mod logs;
mod metrics;
mod spans;

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::error::ArrowError;
use deltalake::arrow::record_batch::RecordBatch;
use otlake_core::Payload;

use crate::config::{SchemaVersion, SeverityNumberFormat, TableKind};

/// Rows per record batch handed to the Parquet writer: big enough for efficient encoding, small enough that
/// the uncompressed Arrow data of one chunk stays a few MB.
pub const CHUNK_ROWS: usize = 8192;

fn expect_columns(schema: &SchemaRef, count: usize) -> Result<(), ArrowError> {
    if schema.fields().len() == count {
        Ok(())
    } else {
        Err(ArrowError::SchemaError(format!(
            "the table schema has {} columns, the converter writes {count}",
            schema.fields().len()
        )))
    }
}

/// The rows of one table being built.
pub struct Rows(Inner);

enum Inner {
    Spans(Box<spans::SpanRows>),
    Logs(Box<logs::LogRows>),
    Metrics(Box<metrics::MetricRows>),
}

impl Rows {
    /// An empty builder for the table of `kind`.
    pub fn new(kind: TableKind, version: SchemaVersion, severity: SeverityNumberFormat) -> Self {
        // v2 shares the v1 builders until its VARIANT encoding exists; `TableSchema` refuses v2 before that.
        let _ = version;
        Rows(match kind {
            TableKind::Spans => Inner::Spans(Box::new(spans::SpanRows::new())),
            TableKind::Logs => Inner::Logs(Box::new(logs::LogRows::new(severity))),
            TableKind::Metrics => Inner::Metrics(Box::new(metrics::MetricRows::new())),
        })
    }

    /// Rows appended since the last `finish`.
    pub fn len(&self) -> usize {
        match &self.0 {
            Inner::Spans(r) => r.len(),
            Inner::Logs(r) => r.len(),
            Inner::Metrics(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the items of `payload`; returns how many rows were added. A payload of another signal adds
    /// nothing and returns `None` (a routing bug, reported by the caller).
    pub fn append(&mut self, payload: &Payload) -> Option<usize> {
        match (&mut self.0, payload) {
            (Inner::Spans(r), Payload::Traces(req)) => Some(r.append(req)),
            (Inner::Logs(r), Payload::Logs(req)) => Some(r.append(req)),
            (Inner::Metrics(r), Payload::Metrics(req)) => Some(r.append(req)),
            _ => None,
        }
    }

    /// The rows appended so far as one record batch of `schema`; the builder is empty afterwards.
    pub fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
        match &mut self.0 {
            Inner::Spans(r) => r.finish(schema),
            Inner::Logs(r) => r.finish(schema),
            Inner::Metrics(r) => r.finish(schema),
        }
    }
}
