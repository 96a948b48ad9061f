//! Pre-encoded request templates whose ids and timestamps are patched in place for every request.
//!
//! A template is built once at start-up: the generator builds an OTLP message with random *sentinel* values
//! wherever a per-request value belongs (trace ids, span ids, log uids, timestamps), encodes it with prost, and
//! [`TemplateBuilder::finish`] finds every sentinel in the encoded bytes. Ids and fixed64 timestamps keep their
//! encoded length, so rendering a request is one copy of the bytes plus a few hundred small writes: no protobuf
//! encoding on the hot path. `finish` refuses a template where a sentinel is missing or appears twice, so a
//! patch can never land on the wrong bytes. A value used in several places (a trace id shared by a trace's
//! spans, a parent span id) takes one sentinel per use, all with the same [`Fill`].

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::ids::{IdBlock, hex16};

/// What a slot receives when a request is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// The request's k-th trace id (16 bytes).
    TraceId(u32),
    /// The request's k-th 64-bit id as 8 raw bytes (a span id); `own` marks the item's own id, recorded in the
    /// ack log (a parent span id or a log's span link is not).
    SpanId { id: u32, own: bool },
    /// The request's k-th 64-bit id as 16 ASCII hex digits (a log record's `log.record.uid`), always own.
    HexId(u32),
    /// A fixed64 timestamp: the request's time minus this many nanoseconds.
    TimeAgo(u64),
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    offset: usize,
    fill: Fill,
}

/// One encoded request with the positions of its per-request values.
#[derive(Debug)]
pub struct Template {
    bytes: Bytes,
    slots: Vec<Slot>,
    /// Telemetry items in the request (spans, log records or metric data points).
    pub items: u64,
    /// How many distinct ids (`Fill::SpanId`/`HexId` indexes) a request consumes.
    pub ids: u64,
    /// How many distinct trace ids a request consumes.
    pub traces: u64,
}

/// Why a template could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("sentinel for {fill:?} found {found} times in the encoded request (expected once)")]
    Sentinel { fill: Fill, found: usize },
}

impl Template {
    /// The encoded size of every request rendered from this template.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// Renders one request: copies the template and writes fresh ids from `ids` and times relative to
    /// `now_unix_nano`. Pushes the request's own ids (span ids, log uids) to `own_ids`, in item order.
    pub fn render(&self, ids: &IdBlock, now_unix_nano: u64, own_ids: &mut Vec<u64>) -> Bytes {
        let mut buf = BytesMut::from(&self.bytes[..]);
        for slot in &self.slots {
            let at = slot.offset;
            match slot.fill {
                Fill::TraceId(k) => {
                    buf[at..at + 16].copy_from_slice(&ids.trace_id(u64::from(k) + self.ids));
                }
                Fill::SpanId { id, own } => {
                    let v = ids.id(u64::from(id));
                    buf[at..at + 8].copy_from_slice(&v.to_be_bytes());
                    if own {
                        own_ids.push(v);
                    }
                }
                Fill::HexId(id) => {
                    let v = ids.id(u64::from(id));
                    let mut hex = [0u8; 16];
                    hex16(v, &mut hex);
                    buf[at..at + 16].copy_from_slice(&hex);
                    own_ids.push(v);
                }
                Fill::TimeAgo(ago) => {
                    let t = now_unix_nano.saturating_sub(ago);
                    buf[at..at + 8].copy_from_slice(&t.to_le_bytes());
                }
            }
        }
        buf.freeze()
    }

    /// The ids a request needs from an [`IdSource`](crate::ids::IdSource): ids first, then trace ids.
    pub fn id_count(&self) -> u64 {
        self.ids + self.traces
    }
}

/// Hands out sentinels while a message is built, then locates them in its encoding.
#[derive(Debug)]
pub struct TemplateBuilder {
    rng: fastrand::Rng,
    sentinels: Vec<(Vec<u8>, Fill)>,
}

impl TemplateBuilder {
    pub fn new(seed: u64) -> TemplateBuilder {
        TemplateBuilder {
            rng: fastrand::Rng::with_seed(seed),
            sentinels: Vec::new(),
        }
    }

    /// The random generator the message builder should use for its content too (reproducible per seed).
    pub fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.rng
    }

    fn sentinel(&mut self, len: usize, fill: Fill) -> Vec<u8> {
        let bytes: Vec<u8> = (0..len).map(|_| self.rng.u8(..)).collect();
        self.sentinels.push((bytes.clone(), fill));
        bytes
    }

    /// A placeholder for the request's k-th trace id.
    pub fn trace_id(&mut self, k: u32) -> Vec<u8> {
        self.sentinel(16, Fill::TraceId(k))
    }

    /// A placeholder for the request's id number `id` (8 bytes); `own` if it is the item's own id.
    pub fn span_id(&mut self, id: u32, own: bool) -> Vec<u8> {
        self.sentinel(8, Fill::SpanId { id, own })
    }

    /// A placeholder string for the request's id number `id` as 16 hex digits (always the item's own id).
    pub fn hex_id(&mut self, id: u32) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let text: String = (0..16)
            .map(|_| char::from(HEX[self.rng.usize(..16)]))
            .collect();
        self.sentinels
            .push((text.clone().into_bytes(), Fill::HexId(id)));
        text
    }

    /// A placeholder fixed64 timestamp: at render time, `ago` nanoseconds before the request's time.
    pub fn time_ago(&mut self, ago: u64) -> u64 {
        // Random values with the top bit set cannot be confused with a real field value by the encoder.
        let v = self.rng.u64(..) | (1 << 63);
        self.sentinels
            .push((v.to_le_bytes().to_vec(), Fill::TimeAgo(ago)));
        v
    }

    /// Locates every sentinel in `encoded` (one pass, keyed by each sentinel's first 8 bytes).
    pub fn finish(self, encoded: Vec<u8>, items: u64) -> Result<Template, TemplateError> {
        let mut by_prefix: HashMap<[u8; 8], Vec<usize>> = HashMap::new();
        for (i, (bytes, _)) in self.sentinels.iter().enumerate() {
            by_prefix.entry(prefix(bytes)).or_default().push(i);
        }
        let mut found: Vec<Vec<usize>> = vec![Vec::new(); self.sentinels.len()];
        for at in 0..encoded.len().saturating_sub(7) {
            let key = prefix(&encoded[at..at + 8]);
            if let Some(candidates) = by_prefix.get(&key) {
                for &i in candidates {
                    let s = &self.sentinels[i].0;
                    if encoded.len() >= at + s.len() && encoded[at..at + s.len()] == s[..] {
                        found[i].push(at);
                    }
                }
            }
        }
        let mut slots = Vec::with_capacity(self.sentinels.len());
        let (mut ids, mut traces) = (0u64, 0u64);
        for ((_, fill), offsets) in self.sentinels.iter().zip(found) {
            if offsets.len() != 1 {
                return Err(TemplateError::Sentinel {
                    fill: *fill,
                    found: offsets.len(),
                });
            }
            match *fill {
                Fill::TraceId(k) => traces = traces.max(u64::from(k) + 1),
                Fill::SpanId { id, .. } | Fill::HexId(id) => ids = ids.max(u64::from(id) + 1),
                Fill::TimeAgo(_) => {}
            }
            slots.push(Slot {
                offset: offsets[0],
                fill: *fill,
            });
        }
        // Render in offset order so own ids come out in item order.
        slots.sort_by_key(|s| s.offset);
        Ok(Template {
            bytes: Bytes::from(encoded),
            slots,
            items,
            ids,
            traces,
        })
    }
}

fn prefix(bytes: &[u8]) -> [u8; 8] {
    let mut key = [0u8; 8];
    key.copy_from_slice(&bytes[..8]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdSource;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    fn two_spans(b: &mut TemplateBuilder) -> ExportTraceServiceRequest {
        let spans = vec![
            Span {
                trace_id: b.trace_id(0),
                span_id: b.span_id(0, true),
                name: "root".into(),
                start_time_unix_nano: b.time_ago(2_000),
                end_time_unix_nano: b.time_ago(0),
                ..Default::default()
            },
            Span {
                trace_id: b.trace_id(0),
                span_id: b.span_id(1, true),
                parent_span_id: b.span_id(0, false),
                name: "child".into(),
                start_time_unix_nano: b.time_ago(1_500),
                end_time_unix_nano: b.time_ago(500),
                ..Default::default()
            },
        ];
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn rendered_requests_decode_with_fresh_ids_and_times() {
        let mut b = TemplateBuilder::new(3);
        let msg = two_spans(&mut b);
        let template = b.finish(msg.encode_to_vec(), 2).expect("template");
        assert_eq!((template.ids, template.traces), (2, 1));

        let source = IdSource::new(9);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 {
            let mut own = Vec::new();
            let block = source.reserve(template.id_count());
            let bytes = template.render(&block, 1_000_000, &mut own);
            assert_eq!(bytes.len(), template.encoded_len());
            let req = ExportTraceServiceRequest::decode(bytes).expect("decodes");
            let spans = &req.resource_spans[0].scope_spans[0].spans;
            assert_eq!(spans[0].name, "root");
            assert_eq!(spans[0].start_time_unix_nano, 1_000_000 - 2_000);
            assert_eq!(spans[1].end_time_unix_nano, 1_000_000 - 500);
            assert_eq!(
                spans[1].parent_span_id, spans[0].span_id,
                "parent link kept"
            );
            assert_eq!(spans[0].trace_id, spans[1].trace_id);
            let ids: Vec<u64> = spans
                .iter()
                .map(|s| u64::from_be_bytes(s.span_id[..].try_into().expect("8 bytes")))
                .collect();
            assert_eq!(own, ids, "own ids are the spans' ids in order");
            for id in ids {
                assert!(seen.insert(id));
            }
        }
    }

    #[test]
    fn a_sentinel_that_is_not_in_the_encoding_is_refused() {
        let mut b = TemplateBuilder::new(1);
        let _unused = b.span_id(0, true);
        let err = b.finish(vec![0u8; 64], 1).expect_err("missing sentinel");
        assert!(matches!(err, TemplateError::Sentinel { found: 0, .. }));
    }

    #[test]
    fn a_sentinel_used_twice_is_refused() {
        let mut b = TemplateBuilder::new(1);
        let id = b.span_id(0, true);
        let mut encoded = id.clone();
        encoded.extend_from_slice(&[1, 2, 3]);
        encoded.extend_from_slice(&id);
        let err = b.finish(encoded, 1).expect_err("duplicate");
        assert!(matches!(err, TemplateError::Sentinel { found: 2, .. }));
    }
}
