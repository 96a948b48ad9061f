//! Helpers for plugin tests (feature `test-util`): sample OTLP data, a collecting exporter, and a harness
//! that drives a processor the way the pipeline task does.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::time::Instant;

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use crate::proto::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    metric, number_data_point,
};
use crate::proto::resource::v1::Resource;
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use crate::{
    Ack, AckReceiver, AckSet, Batch, BatchReceiver, ComponentId, ConfigError, DynExporterFactory,
    DynProcessorFactory, Exporter, ExporterContext, Outcome, Payload, Processor, Signal,
};

/// A string attribute.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn resource(i: usize) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", &format!("svc-{i}"))],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "otlake-test".into(),
        version: "1".into(),
        ..Default::default()
    })
}

/// `resources` resource groups of `per_resource` spans each; ids are unique and deterministic.
pub fn sample_traces(resources: usize, per_resource: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: (0..resources)
            .map(|r| ResourceSpans {
                resource: resource(r),
                scope_spans: vec![ScopeSpans {
                    scope: scope(),
                    spans: (0..per_resource)
                        .map(|s| {
                            let n = (r * per_resource + s) as u64 + 1;
                            Span {
                                trace_id: n.to_be_bytes().repeat(2),
                                span_id: n.to_be_bytes().to_vec(),
                                name: format!("span-{n}"),
                                kind: span::SpanKind::Internal as i32,
                                start_time_unix_nano: 1_700_000_000_000_000_000 + n,
                                end_time_unix_nano: 1_700_000_000_000_000_000 + n + 1_000,
                                attributes: vec![kv("gen_ai.request.model", "test-model")],
                                status: Some(Status {
                                    code: status::StatusCode::Ok as i32,
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// `resources` resource groups of `per_resource` log records each.
pub fn sample_logs(resources: usize, per_resource: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: (0..resources)
            .map(|r| ResourceLogs {
                resource: resource(r),
                scope_logs: vec![ScopeLogs {
                    scope: scope(),
                    log_records: (0..per_resource)
                        .map(|l| LogRecord {
                            time_unix_nano: 1_700_000_000_000_000_000 + l as u64,
                            severity_number: 9,
                            severity_text: "INFO".into(),
                            body: Some(AnyValue {
                                value: Some(any_value::Value::StringValue(format!(
                                    "log line {r}-{l}"
                                ))),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// `resources` resource groups, each with a gauge of two points and a histogram of one point.
pub fn sample_metrics(resources: usize) -> ExportMetricsServiceRequest {
    let point = |v: f64| NumberDataPoint {
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: (0..resources)
            .map(|r| ResourceMetrics {
                resource: resource(r),
                scope_metrics: vec![ScopeMetrics {
                    scope: scope(),
                    metrics: vec![
                        Metric {
                            name: "gpu.utilization".into(),
                            data: Some(metric::Data::Gauge(Gauge {
                                data_points: vec![point(0.5), point(0.75)],
                            })),
                            ..Default::default()
                        },
                        Metric {
                            name: "gen_ai.client.token.usage".into(),
                            data: Some(metric::Data::Histogram(Histogram {
                                data_points: vec![HistogramDataPoint {
                                    count: 2,
                                    sum: Some(30.0),
                                    bucket_counts: vec![1, 1],
                                    explicit_bounds: vec![10.0],
                                    ..Default::default()
                                }],
                                aggregation_temporality: 2,
                            })),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// A batch carrying `payload` with one fresh acknowledgement, and that acknowledgement's receiver.
pub fn batch_with_ack(payload: impl Into<Payload>) -> (Batch, AckReceiver) {
    let (ack, rx) = Ack::new();
    (Batch::new(payload.into(), AckSet::single(ack)), rx)
}

/// What a [`CollectingExporter`] saw, shared with the test.
#[derive(Clone, Default)]
pub struct Collected {
    batches: Arc<Mutex<Vec<Arc<Payload>>>>,
}

impl Collected {
    /// Every payload received so far.
    pub fn payloads(&self) -> Vec<Arc<Payload>> {
        self.batches.lock().map(|b| b.clone()).unwrap_or_default()
    }

    pub fn item_count(&self) -> usize {
        self.payloads().iter().map(|p| p.item_count()).sum()
    }
}

/// An exporter that keeps what it receives and resolves every acknowledgement with a fixed outcome.
pub struct CollectingExporter {
    pub collected: Collected,
    pub outcome: Outcome,
}

impl CollectingExporter {
    pub fn new(outcome: Outcome) -> (Self, Collected) {
        let collected = Collected::default();
        (
            CollectingExporter {
                collected: collected.clone(),
                outcome,
            },
            collected,
        )
    }
}

#[async_trait]
impl Exporter for CollectingExporter {
    async fn run(
        self: Box<Self>,
        mut input: BatchReceiver,
        _cx: ExporterContext,
    ) -> crate::Result<()> {
        while let Some(batch) = input.recv().await {
            if let Ok(mut all) = self.collected.batches.lock() {
                all.push(Arc::clone(&batch.payload));
            }
            batch.acks.resolve(self.outcome.clone());
        }
        Ok(())
    }
}

/// Drives a processor like the pipeline task does, with explicit time.
pub struct ProcessorHarness {
    processor: Box<dyn Processor>,
    /// Everything the processor has emitted and the test has not taken yet.
    pub emitted: Vec<Batch>,
}

impl ProcessorHarness {
    pub fn new(processor: Box<dyn Processor>) -> Self {
        ProcessorHarness {
            processor,
            emitted: Vec::new(),
        }
    }

    pub fn process(&mut self, batch: Batch) {
        self.processor.process(batch, &mut self.emitted);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.processor.next_deadline()
    }

    /// Calls `on_tick` as if the clock read `now`.
    pub fn tick_at(&mut self, now: Instant) {
        self.processor.on_tick(now, &mut self.emitted);
    }

    pub fn flush(&mut self) {
        self.processor.flush(&mut self.emitted);
    }

    /// Calls `on_idle` as the pipeline does when its input has run dry.
    pub fn idle(&mut self) {
        self.processor.on_idle(&mut self.emitted);
    }

    /// Takes what was emitted so far.
    pub fn take(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.emitted)
    }
}

pub use counting::CountingRecorder;

mod counting {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    /// A metrics recorder for tests (`metrics::with_local_recorder`): one atomic per counter, looked up as
    /// `name{label=value,...}`; gauges and histograms are ignored.
    #[derive(Default)]
    pub struct CountingRecorder(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

    impl CountingRecorder {
        pub fn get(&self, key: &str) -> u64 {
            let map = self.0.lock().expect("lock");
            map.get(key).map_or(0, |c| c.load(Ordering::Relaxed))
        }
    }

    impl Recorder for CountingRecorder {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            let counter = Arc::clone(self.0.lock().expect("lock").entry(name).or_default());
            Counter::from_arc(counter)
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }
}

/// Validates `section` and builds a processor from it, as the service does for one pipeline.
pub fn build_processor(
    factory: &dyn DynProcessorFactory,
    section: &serde_json::Value,
    signal: Signal,
) -> Result<Box<dyn Processor>, Vec<ConfigError>> {
    let config = factory.validate(section)?;
    let id = ComponentId::new(factory.type_name());
    factory.build(&id, &config, signal).map_err(|e| vec![e])
}

/// Validates `section` and builds an exporter from it for `signals`, as the service does.
pub fn build_exporter(
    factory: &dyn DynExporterFactory,
    section: &serde_json::Value,
    signals: &[Signal],
) -> Result<Box<dyn Exporter>, Vec<ConfigError>> {
    let config = factory.validate(section)?;
    let id = ComponentId::new(factory.type_name());
    factory.build(&id, config, signals).map_err(|e| vec![e])
}

/// An encoded trace request whose one span name is not UTF-8 (its first byte made 0xff): what a receiver
/// must refuse as prost would.
pub fn traces_with_invalid_utf8() -> Vec<u8> {
    use prost::Message;
    let mut request = sample_traces(1, 1);
    request.resource_spans[0].scope_spans[0].spans[0].name = "NAME".into();
    let mut bytes = request.encode_to_vec();
    let at = bytes
        .windows(4)
        .position(|w| w == b"NAME")
        .expect("the name is in the encoding");
    bytes[at] = 0xff;
    bytes
}

/// Seeded mutation of protobuf bytes, for the fuzz-style tests of every crate that reads OTLP (the wire
/// validator, the receivers, the Delta wire reader): the same sequence every run, so a failure reproduces
/// from its iteration number.
pub mod fuzz {
    /// xorshift64*: deterministic, no dependency.
    pub struct Rng(pub u64);

    impl Rng {
        #[allow(clippy::should_implement_trait)]
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// A number in `0..n` (0 for `n` = 0).
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// A plausible protobuf field: a random key (known tags more often) and a value of its wire type.
    pub fn random_field(rng: &mut Rng) -> Vec<u8> {
        let tag = if rng.below(4) == 0 {
            rng.below(40) as u64
        } else {
            1 + rng.below(16) as u64
        };
        let wire_type = rng.below(6) as u64;
        let mut out = Vec::new();
        prost::encoding::encode_varint((tag << 3) | wire_type, &mut out);
        match wire_type {
            0 => prost::encoding::encode_varint(rng.next() >> rng.below(64), &mut out),
            1 => out.extend_from_slice(&rng.next().to_le_bytes()),
            2 => {
                let len = rng.below(6);
                prost::encoding::encode_varint(len as u64, &mut out);
                out.extend((0..len).map(|_| rng.next() as u8));
            }
            // A group, closed half of the time.
            3 if rng.below(2) == 0 => prost::encoding::encode_varint((tag << 3) | 4, &mut out),
            5 => out.extend_from_slice(&(rng.next() as u32).to_le_bytes()),
            _ => {}
        }
        out
    }

    /// 1 to 3 edits of `seed`: bit flips, byte changes, inserted fields, cut, repeated or spliced ranges (from
    /// `others`), truncation.
    pub fn mutate(rng: &mut Rng, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = seed.to_vec();
        for _ in 0..1 + rng.below(3) {
            let len = bytes.len();
            match rng.below(9) {
                0 if len > 0 => {
                    let at = rng.below(len);
                    bytes[at] ^= 1 << rng.below(8);
                }
                1 if len > 0 => {
                    let at = rng.below(len);
                    bytes[at] = rng.next() as u8;
                }
                2 => {
                    let at = rng.below(len + 1);
                    let field = random_field(rng);
                    bytes.splice(at..at, field);
                }
                3 if len > 0 => {
                    let from = rng.below(len);
                    let to = (from + 1 + rng.below(16)).min(len);
                    bytes.drain(from..to);
                }
                4 => bytes.truncate(rng.below(len + 1)),
                5 if len > 0 => {
                    let from = rng.below(len);
                    let to = (from + 1 + rng.below(64)).min(len);
                    let copy = bytes[from..to].to_vec();
                    let at = rng.below(len + 1);
                    bytes.splice(at..at, copy);
                }
                6 if !others.is_empty() => {
                    let other = &others[rng.below(others.len())];
                    if !other.is_empty() {
                        let from = rng.below(other.len());
                        let to = (from + 1 + rng.below(128)).min(other.len());
                        let at = rng.below(len + 1);
                        bytes.splice(at..at, other[from..to].iter().copied());
                    }
                }
                7 if len > 0 => {
                    // A length prefix or varint byte pushed to a boundary value.
                    let at = rng.below(len);
                    bytes[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.below(5)];
                }
                _ => bytes.extend(random_field(rng)),
            }
        }
        bytes
    }

    /// Random requests built field by field, for the differential tests of the wire looks against the decoded
    /// ones: every level drawn from `words` (keys, names and string values), and at every level a message is
    /// sometimes two encodings concatenated, which prost decodes as their merge (a scalar's last occurrence wins,
    /// repeated fields concatenate, message fields merge): a span or attribute with its `name` or `key` twice,
    /// a resource, scope, status or value split in two, a metric whose data variant changes.
    pub mod requests {
        use prost::encoding::{WireType, encode_key, encode_varint};

        use super::Rng;
        use crate::Signal;

        fn pick<'w>(rng: &mut Rng, words: &[&'w str]) -> &'w str {
            words[rng.below(words.len())]
        }

        fn bytes_field(tag: u32, body: &[u8], out: &mut Vec<u8>) {
            encode_key(tag, WireType::LengthDelimited, out);
            encode_varint(body.len() as u64, out);
            out.extend_from_slice(body);
        }

        fn varint_field(tag: u32, value: u64, out: &mut Vec<u8>) {
            encode_key(tag, WireType::Varint, out);
            encode_varint(value, out);
        }

        /// One encoding of a message, or (one time in four) two concatenated.
        fn merged(rng: &mut Rng, part: &dyn Fn(&mut Rng) -> Vec<u8>) -> Vec<u8> {
            let mut out = part(rng);
            if rng.below(4) == 0 {
                out.extend(part(rng));
            }
            out
        }

        fn any_value(rng: &mut Rng, words: &[&str]) -> Vec<u8> {
            let mut out = Vec::new();
            match rng.below(10) {
                0 => {}
                1 => varint_field(2, rng.below(2) as u64, &mut out),
                2 => varint_field(3, [0, 3, 5, u64::MAX][rng.below(4)], &mut out),
                3 => {
                    encode_key(4, WireType::SixtyFourBit, &mut out);
                    out.extend_from_slice(&[2.5f64, 3.0][rng.below(2)].to_bits().to_le_bytes());
                }
                4 => bytes_field(5, &[], &mut out),
                5 => {
                    let mut kv = Vec::new();
                    bytes_field(1, pick(rng, words).as_bytes(), &mut kv);
                    let mut list = Vec::new();
                    bytes_field(1, &kv, &mut list);
                    bytes_field(6, &list, &mut out);
                }
                6 => bytes_field(7, b"\x01", &mut out),
                _ => bytes_field(1, pick(rng, words).as_bytes(), &mut out),
            }
            out
        }

        fn key_value(rng: &mut Rng, words: &[&str]) -> Vec<u8> {
            merged(rng, &|rng| {
                let mut kv = Vec::new();
                if rng.below(8) != 0 {
                    bytes_field(1, pick(rng, words).as_bytes(), &mut kv);
                }
                if rng.below(6) != 0 {
                    let value = merged(rng, &|rng| any_value(rng, words));
                    bytes_field(2, &value, &mut kv);
                }
                kv
            })
        }

        /// Up to three attributes in field `tag`.
        fn attributes(rng: &mut Rng, words: &[&str], tag: u32, out: &mut Vec<u8>) {
            for _ in 0..rng.below(4) {
                bytes_field(tag, &key_value(rng, words), out);
            }
        }

        fn span(rng: &mut Rng, words: &[&str]) -> Vec<u8> {
            merged(rng, &|rng| {
                let mut span = Vec::new();
                if rng.below(3) != 0 {
                    bytes_field(5, pick(rng, words).as_bytes(), &mut span);
                }
                if rng.below(2) == 0 {
                    varint_field(6, rng.below(6) as u64, &mut span);
                }
                attributes(rng, words, 9, &mut span);
                for _ in 0..rng.below(3) {
                    let event = merged(rng, &|rng| {
                        let mut event = Vec::new();
                        if rng.below(3) != 0 {
                            bytes_field(2, pick(rng, words).as_bytes(), &mut event);
                        }
                        attributes(rng, words, 3, &mut event);
                        event
                    });
                    bytes_field(11, &event, &mut span);
                }
                if rng.below(2) == 0 {
                    let status = merged(rng, &|rng| {
                        let mut status = Vec::new();
                        if rng.below(3) != 0 {
                            varint_field(3, rng.below(3) as u64, &mut status);
                        }
                        status
                    });
                    bytes_field(15, &status, &mut span);
                }
                span
            })
        }

        fn log_record(rng: &mut Rng, words: &[&str]) -> Vec<u8> {
            merged(rng, &|rng| {
                let mut record = Vec::new();
                if rng.below(2) == 0 {
                    varint_field(2, [0, 9, 13, 17][rng.below(4)], &mut record);
                }
                if rng.below(2) == 0 {
                    bytes_field(3, pick(rng, words).as_bytes(), &mut record);
                }
                if rng.below(3) != 0 {
                    let body = merged(rng, &|rng| any_value(rng, words));
                    bytes_field(5, &body, &mut record);
                }
                attributes(rng, words, 6, &mut record);
                record
            })
        }

        fn metric(rng: &mut Rng, words: &[&str]) -> Vec<u8> {
            merged(rng, &|rng| {
                let mut metric = Vec::new();
                if rng.below(4) != 0 {
                    bytes_field(1, pick(rng, words).as_bytes(), &mut metric);
                }
                for _ in 0..rng.below(3) {
                    let (variant, point_attributes) =
                        [(5, 7), (7, 7), (9, 9), (10, 1), (11, 7)][rng.below(5)];
                    let mut data = Vec::new();
                    for _ in 0..rng.below(3) {
                        let mut point = Vec::new();
                        attributes(rng, words, point_attributes, &mut point);
                        bytes_field(1, &point, &mut data);
                    }
                    bytes_field(variant, &data, &mut metric);
                }
                metric
            })
        }

        /// An export request of `signal`: one or two resource groups of one or two scope groups of up to
        /// three items.
        pub fn request(rng: &mut Rng, signal: Signal, words: &[&str]) -> Vec<u8> {
            let mut request = Vec::new();
            for _ in 0..1 + rng.below(2) {
                let group = merged(rng, &|rng| {
                    let mut group = Vec::new();
                    if rng.below(4) != 0 {
                        let resource = merged(rng, &|rng| {
                            let mut resource = Vec::new();
                            attributes(rng, words, 1, &mut resource);
                            resource
                        });
                        bytes_field(1, &resource, &mut group);
                    }
                    for _ in 0..1 + rng.below(2) {
                        let mut scopes = Vec::new();
                        if rng.below(3) != 0 {
                            let scope = merged(rng, &|rng| {
                                let mut scope = Vec::new();
                                if rng.below(3) != 0 {
                                    bytes_field(1, pick(rng, words).as_bytes(), &mut scope);
                                }
                                if rng.below(3) == 0 {
                                    bytes_field(2, pick(rng, words).as_bytes(), &mut scope);
                                }
                                scope
                            });
                            bytes_field(1, &scope, &mut scopes);
                        }
                        for _ in 0..rng.below(4) {
                            let item = match signal {
                                Signal::Traces => span(rng, words),
                                Signal::Logs => log_record(rng, words),
                                Signal::Metrics => metric(rng, words),
                            };
                            bytes_field(2, &item, &mut scopes);
                        }
                        bytes_field(2, &scopes, &mut group);
                    }
                    group
                });
                bytes_field(1, &group, &mut request);
            }
            request
        }
    }
}
