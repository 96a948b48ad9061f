//! The OTLP export request of one signal, and the operations every stage shares on it: counting items,
//! measuring, merging (batching) and splitting (batch size caps, request size limits of a downstream).
//!
//! A [`Payload`] is in one of two forms:
//! - **wire**: the protobuf bytes a client sent, validated by [`crate::wire::validate`] but not decoded. Counting,
//!   measuring, merging (protobuf concatenation of two export requests is their merge) and writing out copy and
//!   allocate nothing per item, so a pipeline that only batches and forwards or drops never decodes at all.
//! - **decoded**: an [`ExportRequest`] of prost's types, for stages that read or change the data. A wire payload
//!   decodes on first use of [`Payload::request`] and keeps the result, so fan-out branches share one decode.
//!
//! Items are spans, log records and metric data points. Splitting keeps the resource → scope → item hierarchy:
//! each part repeats the resource and scope its items belong to. Metrics split at whole `Metric`s (a metric's
//! data points stay together), weighed by their data points.
//!
//! [`ExportRequest`] and its operations on prost's types live in `request`; this file holds [`Payload`], the
//! two forms and the moves between them.

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::Signal;
use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::wire::{self, Counts, WireError};

mod request;

pub use request::{ExportRequest, data_point_count};

/// The data a [`Batch`](crate::Batch) carries: one export request, in wire or decoded form (see the module docs).
#[derive(Clone)]
pub struct Payload {
    form: Form,
}

#[derive(Clone)]
enum Form {
    Decoded(ExportRequest),
    Wire(Wire),
}

/// Validated protobuf bytes of one signal: one chunk per request merged in, in order.
#[derive(Clone)]
struct Wire {
    signal: Signal,
    chunks: Vec<Bytes>,
    len: usize,
    counts: Counts,
    decoded: OnceLock<ExportRequest>,
}

impl Wire {
    fn decode(&self) -> Result<ExportRequest, prost::DecodeError> {
        let bytes = self.concatenated();
        let mut buf = bytes.as_ref();
        Ok(match self.signal {
            Signal::Traces => ExportRequest::Traces(ExportTraceServiceRequest::decode(&mut buf)?),
            Signal::Logs => ExportRequest::Logs(ExportLogsServiceRequest::decode(&mut buf)?),
            Signal::Metrics => {
                ExportRequest::Metrics(ExportMetricsServiceRequest::decode(&mut buf)?)
            }
        })
    }

    /// The chunks as one buffer (no copy for a single chunk).
    fn concatenated(&self) -> Bytes {
        match self.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut joined = BytesMut::with_capacity(self.len);
                for chunk in many {
                    joined.extend_from_slice(chunk);
                }
                joined.freeze()
            }
        }
    }
}

/// A wire payload that failed to decode although it had been validated: a disagreement between
/// [`crate::wire::validate`] and prost, which the differential tests exist to rule out. Stages that meet it
/// refuse the batch (rejected, not retryable: the same bytes would fail again).
#[derive(Debug, thiserror::Error)]
#[error("a validated {signal} request did not decode: {source}")]
pub struct PayloadDecodeError {
    signal: Signal,
    #[source]
    source: prost::DecodeError,
}

impl From<ExportRequest> for Payload {
    fn from(request: ExportRequest) -> Self {
        Payload {
            form: Form::Decoded(request),
        }
    }
}
impl From<ExportTraceServiceRequest> for Payload {
    fn from(r: ExportTraceServiceRequest) -> Self {
        Payload::from(ExportRequest::Traces(r))
    }
}
impl From<ExportLogsServiceRequest> for Payload {
    fn from(r: ExportLogsServiceRequest) -> Self {
        Payload::from(ExportRequest::Logs(r))
    }
}
impl From<ExportMetricsServiceRequest> for Payload {
    fn from(r: ExportMetricsServiceRequest) -> Self {
        Payload::from(ExportRequest::Metrics(r))
    }
}

impl Payload {
    /// The validated wire form of an OTLP protobuf export request of `signal`, not decoded.
    pub fn from_wire(signal: Signal, bytes: Bytes) -> Result<Payload, WireError> {
        wire::validate(signal, &bytes)?;
        let counts = wire::count(signal, &bytes);
        Ok(Payload {
            form: Form::Wire(Wire {
                signal,
                len: bytes.len(),
                chunks: vec![bytes],
                counts,
                decoded: OnceLock::new(),
            }),
        })
    }

    /// An empty request of `signal`.
    pub fn empty(signal: Signal) -> Self {
        Payload::from(ExportRequest::empty(signal))
    }

    pub fn signal(&self) -> Signal {
        match &self.form {
            Form::Decoded(request) => request.signal(),
            Form::Wire(wire) => wire.signal,
        }
    }

    /// Whether the payload is still in its wire form and not decoded yet (a reader of the bytes may then skip
    /// the decode; see `wire_chunks`).
    pub fn is_wire(&self) -> bool {
        matches!(&self.form, Form::Wire(wire) if wire.decoded.get().is_none())
    }

    /// The protobuf chunks of a wire payload (each a whole export request; together, in order, the payload), or
    /// `None` for a decoded one. For a reader that walks the bytes itself without copying merged requests into
    /// one buffer.
    pub fn wire_chunks(&self) -> Option<&[Bytes]> {
        match &self.form {
            Form::Wire(wire) => Some(&wire.chunks),
            Form::Decoded(_) => None,
        }
    }

    /// Spans, log records or metric data points.
    pub fn item_count(&self) -> usize {
        match &self.form {
            Form::Decoded(request) => request.item_count(),
            Form::Wire(wire) => wire.counts.items,
        }
    }

    /// Spans, log records or `Metric`s.
    pub fn entry_count(&self) -> usize {
        match &self.form {
            Form::Decoded(request) => request.entry_count(),
            Form::Wire(wire) => wire.counts.entries,
        }
    }

    /// The protobuf-encoded size in bytes (of a wire payload: as received; never encodes).
    pub fn encoded_len(&self) -> usize {
        match &self.form {
            Form::Decoded(request) => request.encoded_len(),
            Form::Wire(wire) => wire.len,
        }
    }

    /// The request as OTLP protobuf (a wire payload's own bytes, without copying when it is one chunk).
    pub fn encoded(&self) -> Bytes {
        match &self.form {
            Form::Decoded(request) => Bytes::from(request.encode_to_vec()),
            Form::Wire(wire) => wire.concatenated(),
        }
    }

    /// Appends the request as OTLP protobuf to `buf` (a wire payload's chunks are copied, not re-encoded).
    pub fn write_to(&self, buf: &mut Vec<u8>) {
        buf.reserve(self.encoded_len());
        match &self.form {
            Form::Decoded(request) => request.encode_into(buf),
            Form::Wire(wire) => {
                for chunk in &wire.chunks {
                    buf.extend_from_slice(chunk);
                }
            }
        }
    }

    /// Encodes as OTLP protobuf.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        self.encoded().into()
    }

    /// The decoded request, decoding a wire payload on first use (and keeping the result).
    pub fn request(&self) -> Result<&ExportRequest, PayloadDecodeError> {
        match &self.form {
            Form::Decoded(request) => Ok(request),
            Form::Wire(wire) => {
                if let Some(request) = wire.decoded.get() {
                    return Ok(request);
                }
                let request = wire.decode().map_err(|source| PayloadDecodeError {
                    signal: wire.signal,
                    source,
                })?;
                Ok(wire.decoded.get_or_init(|| request))
            }
        }
    }

    /// The decoded request to change in place; the wire form, no longer true to it, is dropped.
    pub fn request_mut(&mut self) -> Result<&mut ExportRequest, PayloadDecodeError> {
        if let Form::Wire(wire) = &mut self.form {
            let request = match wire.decoded.take() {
                Some(request) => request,
                None => wire.decode().map_err(|source| PayloadDecodeError {
                    signal: wire.signal,
                    source,
                })?,
            };
            self.form = Form::Decoded(request);
        }
        match &mut self.form {
            Form::Decoded(request) => Ok(request),
            Form::Wire(_) => unreachable!("converted above"),
        }
    }

    /// The decoded request, by value.
    pub fn into_request(mut self) -> Result<ExportRequest, PayloadDecodeError> {
        self.request_mut()?;
        match self.form {
            Form::Decoded(request) => Ok(request),
            Form::Wire(_) => unreachable!("converted by request_mut"),
        }
    }

    /// Appends `other`'s data. Two wire payloads stay wire (their bytes are chained, not copied); otherwise
    /// both are decoded. Requests of different signals are never merged: a pipeline carries one signal, so a
    /// mismatch is a wiring bug, reported rather than hidden (the other payload comes back unchanged).
    pub fn merge(&mut self, other: Payload) -> Result<(), Payload> {
        if self.signal() != other.signal() {
            return Err(other);
        }
        if let (Form::Wire(wire), Form::Wire(more)) = (&mut self.form, &other.form)
            && wire.decoded.get().is_none()
        {
            wire.chunks.extend(more.chunks.iter().cloned());
            wire.len += more.len;
            wire.counts.items += more.counts.items;
            wire.counts.entries += more.counts.entries;
            return Ok(());
        }
        if self.request_mut().is_err() {
            return Err(other);
        }
        let theirs = other.into_request_or_back()?;
        match self.request_mut() {
            Ok(mine) => mine.merge(theirs).map_err(Payload::from),
            Err(_) => Err(Payload::from(theirs)),
        }
    }

    /// The decoded request, or the payload itself, unchanged, if it does not decode.
    fn into_request_or_back(mut self) -> Result<ExportRequest, Payload> {
        // `request_mut` leaves a payload that fails to decode as it was.
        if self.request_mut().is_err() {
            return Err(self);
        }
        match self.form {
            Form::Decoded(request) => Ok(request),
            Form::Wire(_) => unreachable!("converted by request_mut"),
        }
    }

    /// Splits into parts of at most `max_items` items and about `max_bytes` encoded bytes each. A payload within
    /// both limits comes back whole, as the only part. A wire payload of several chunks (merged requests) is cut
    /// between its chunks, without decoding: its parts hold whole chunks, as many as fit, so they may be smaller
    /// than the caps. Only a chunk that alone exceeds a cap is decoded and split.
    pub fn split(
        self,
        max_items: usize,
        max_bytes: usize,
    ) -> Result<Vec<Payload>, PayloadDecodeError> {
        if self.item_count() <= max_items && self.encoded_len() <= max_bytes {
            return Ok(vec![self]);
        }
        match self.form {
            Form::Wire(wire) if wire.chunks.len() > 1 => {
                split_between_chunks(wire.signal, wire.chunks, max_items, max_bytes)
            }
            form => Ok(Payload { form }
                .into_request()?
                .split(max_items, max_bytes)
                .into_iter()
                .map(Payload::from)
                .collect()),
        }
    }
}

/// [`Payload::split`] of a wire payload of several chunks: whole chunks per part, as many as the caps allow; a
/// chunk above a cap on its own is split alone (decoded).
fn split_between_chunks(
    signal: Signal,
    chunks: Vec<Bytes>,
    max_items: usize,
    max_bytes: usize,
) -> Result<Vec<Payload>, PayloadDecodeError> {
    let mut parts = Vec::new();
    let mut part: Option<Wire> = None;
    for chunk in chunks {
        // Each chunk was validated when it arrived; counting it again reads its outer levels only.
        let counts = wire::count(signal, &chunk);
        let len = chunk.len();
        if counts.items > max_items || len > max_bytes {
            parts.extend(part.take().map(|w| Payload {
                form: Form::Wire(w),
            }));
            let alone = Payload {
                form: Form::Wire(Wire {
                    signal,
                    chunks: vec![chunk],
                    len,
                    counts,
                    decoded: OnceLock::new(),
                }),
            };
            parts.extend(alone.split(max_items, max_bytes)?);
            continue;
        }
        if let Some(w) = &part
            && (w.counts.items + counts.items > max_items || w.len + len > max_bytes)
        {
            parts.extend(part.take().map(|w| Payload {
                form: Form::Wire(w),
            }));
        }
        let w = part.get_or_insert_with(|| Wire {
            signal,
            chunks: Vec::new(),
            len: 0,
            counts: Counts::default(),
            decoded: OnceLock::new(),
        });
        w.chunks.push(chunk);
        w.len += len;
        w.counts.items += counts.items;
        w.counts.entries += counts.entries;
    }
    parts.extend(part.map(|w| Payload {
        form: Form::Wire(w),
    }));
    Ok(parts)
}

impl PartialEq for Payload {
    /// Same signal and same data, whatever the forms.
    fn eq(&self, other: &Payload) -> bool {
        match (self.request(), other.request()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.form {
            Form::Decoded(request) => request.fmt(f),
            Form::Wire(wire) => f
                .debug_struct("Wire")
                .field("signal", &wire.signal)
                .field("bytes", &wire.len)
                .field("items", &wire.counts.items)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{sample_logs, sample_metrics, sample_traces};

    #[test]
    fn counts_items_of_every_signal() {
        assert_eq!(Payload::from(sample_traces(2, 3)).item_count(), 6);
        assert_eq!(Payload::from(sample_logs(3, 4)).item_count(), 12);
        // sample_metrics: per resource, one gauge with 2 points and one histogram with 1 point
        assert_eq!(Payload::from(sample_metrics(2)).item_count(), 6);
    }

    #[test]
    fn split_keeps_every_item_once_and_respects_the_caps() {
        let original = Payload::from(sample_traces(3, 7));
        let parts = original.clone().split(5, usize::MAX).expect("decoded");
        assert_eq!(parts.iter().map(Payload::item_count).sum::<usize>(), 21);
        assert!(parts.iter().all(|p| p.item_count() <= 5));
        let mut rejoined = Payload::empty(Signal::Traces);
        for p in parts {
            rejoined.merge(p).expect("same signal");
        }
        let ids = |p: &Payload| match p.request().expect("decoded") {
            ExportRequest::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .map(|s| s.span_id.clone())
                .collect::<Vec<_>>(),
            _ => unreachable!(),
        };
        assert_eq!(ids(&rejoined), ids(&original));
    }

    #[test]
    fn split_by_bytes_keeps_parts_under_the_cap() {
        let original = Payload::from(sample_logs(2, 50));
        let cap = original.encoded_len() / 4;
        let parts = original.split(usize::MAX, cap).expect("decoded");
        assert!(parts.len() >= 4, "{} parts", parts.len());
        assert!(parts.iter().all(|p| p.encoded_len() <= cap));
        assert_eq!(parts.iter().map(Payload::item_count).sum::<usize>(), 100);
    }

    #[test]
    fn merge_refuses_another_signal() {
        let mut traces = Payload::from(sample_traces(1, 1));
        assert!(traces.merge(Payload::from(sample_logs(1, 1))).is_err());
    }

    fn wire(payload: &Payload) -> Payload {
        Payload::from_wire(payload.signal(), payload.encoded()).expect("valid")
    }

    #[test]
    fn a_wire_payload_counts_measures_and_decodes_like_the_decoded_one() {
        for decoded in [
            Payload::from(sample_traces(2, 3)),
            Payload::from(sample_logs(3, 4)),
            Payload::from(sample_metrics(2)),
        ] {
            let wire = wire(&decoded);
            assert!(wire.is_wire());
            assert_eq!(wire.signal(), decoded.signal());
            assert_eq!(wire.item_count(), decoded.item_count());
            assert_eq!(wire.entry_count(), decoded.entry_count());
            assert_eq!(wire.encoded_len(), decoded.encoded_len());
            assert_eq!(
                wire.request().expect("decodes"),
                decoded.request().expect("decoded")
            );
            assert!(!wire.is_wire(), "decoded once, kept");
        }
    }

    #[test]
    fn merging_wire_payloads_chains_bytes_and_equals_merging_decoded_ones() {
        let (a, b) = (
            Payload::from(sample_logs(2, 3)),
            Payload::from(sample_logs(1, 5)),
        );
        let mut merged_wire = wire(&a);
        merged_wire.merge(wire(&b)).expect("same signal");
        assert!(merged_wire.is_wire(), "no decode to merge wire payloads");
        assert_eq!(merged_wire.item_count(), 11);
        let mut merged_decoded = a.clone();
        merged_decoded.merge(b.clone()).expect("same signal");
        assert_eq!(merged_wire, merged_decoded);
        assert_eq!(merged_wire.encoded_len(), merged_decoded.encoded_len());

        // Mixed forms merge through decoding.
        let mut mixed = a;
        mixed.merge(wire(&b)).expect("same signal");
        assert_eq!(mixed, merged_decoded);
    }

    #[test]
    fn a_wire_payload_refuses_another_signal_and_splits_through_decoding() {
        let mut traces = wire(&Payload::from(sample_traces(2, 5)));
        let logs = wire(&Payload::from(sample_logs(1, 1)));
        assert!(traces.merge(logs).is_err());
        assert!(traces.is_wire());
        let parts = traces.split(4, usize::MAX).expect("decodes");
        assert_eq!(parts.iter().map(Payload::item_count).sum::<usize>(), 10);
        assert!(parts.iter().all(|p| p.item_count() <= 4));
    }

    #[test]
    fn a_merged_wire_payload_splits_between_its_chunks_without_decoding() {
        // Chunks of 3, 3, 3, 9 and 2 logs: with a cap of 7, the parts are [3, 3], [3], the 9 split alone
        // (decoded) and [2].
        let chunks: Vec<Payload> = [3, 3, 3, 9, 2]
            .iter()
            .map(|&n| wire(&Payload::from(sample_logs(1, n))))
            .collect();
        let mut merged = chunks[0].clone();
        for chunk in &chunks[1..] {
            merged.merge(chunk.clone()).expect("same signal");
        }
        let whole = merged.clone();
        let parts = merged.split(7, usize::MAX).expect("splits");
        let sizes: Vec<usize> = parts.iter().map(Payload::item_count).collect();
        assert_eq!(sizes, [6, 3, 7, 2, 2]);
        let forms: Vec<bool> = parts.iter().map(Payload::is_wire).collect();
        assert_eq!(
            forms,
            [true, true, false, false, true],
            "only the oversize chunk decoded"
        );
        let bodies = |payloads: &[Payload]| -> Vec<String> {
            payloads
                .iter()
                .flat_map(|p| match p.request().expect("decodes") {
                    ExportRequest::Logs(r) => r.resource_logs.clone(),
                    _ => Vec::new(),
                })
                .flat_map(|r| r.scope_logs)
                .flat_map(|s| s.log_records)
                .map(|l| format!("{:?}", l.body))
                .collect()
        };
        assert_eq!(
            bodies(&parts),
            bodies(std::slice::from_ref(&whole)),
            "every record once, in order"
        );

        // By bytes: each part stays under the cap.
        let cap = chunks[0].encoded_len() * 2 + 1;
        let parts = whole.split(usize::MAX, cap).expect("splits");
        assert!(parts.iter().all(|p| p.encoded_len() <= cap));
        assert_eq!(parts.iter().map(Payload::item_count).sum::<usize>(), 20);
    }

    #[test]
    fn changing_a_wire_payload_drops_its_stale_bytes() {
        let mut payload = wire(&Payload::from(sample_traces(1, 2)));
        match payload.request_mut().expect("decodes") {
            ExportRequest::Traces(r) => r.resource_spans[0].scope_spans[0].spans.truncate(1),
            _ => unreachable!(),
        }
        assert_eq!(payload.item_count(), 1);
        let reencoded = Payload::from_wire(Signal::Traces, payload.encoded()).expect("valid");
        assert_eq!(reencoded.item_count(), 1);
    }

    #[test]
    fn invalid_bytes_are_refused_at_the_door() {
        let err = Payload::from_wire(Signal::Logs, Bytes::from_static(b"\x0a\xff\xff\xff"))
            .expect_err("malformed");
        assert_eq!(err.reason, "invalid varint");
    }
}
