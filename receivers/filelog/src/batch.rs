//! [`Builder`]: entries → one OTLP logs request in its wire form, and the file ranges it carries.
//!
//! Entries with the same resource attributes share a `ResourceLogs`, and within it entries with the same scope
//! name a `ScopeLogs`. Each entry is written as protobuf when it is pushed ([`crate::encode`]), so a batch is
//! held as bytes rather than as prost structs (about a third of the memory, and nothing for the OTLP exporter
//! to encode again). For each file the builder records the range of offsets its entries cover; the receiver
//! moves that file's checkpoint past the range only when the batch is acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use otlake_core::{Payload, Signal};
use serde_json::{Map, Value};

use crate::encode::{self, Record};
use crate::entry::Entry;

/// `ScopeLogs.log_records`.
const LOG_RECORDS: u32 = 2;

/// One `ResourceLogs` being filled.
struct ResourceGroup {
    /// The `Resource` message's body.
    resource: Vec<u8>,
    /// Scope name → its records, each a whole `log_records` field, in the order the scopes first came.
    scopes: Vec<(String, Vec<u8>)>,
}

/// A request being filled.
#[derive(Default)]
pub struct Builder {
    resources: Vec<ResourceGroup>,
    /// Resource attributes → index in `resources`.
    index: HashMap<Vec<(String, String)>, usize>,
    /// The resource of the last entry and its index (entries of one file mostly share it).
    last: Option<(Map<String, Value>, usize)>,
    records: usize,
    /// Encoded bytes of the records so far.
    bytes: usize,
    /// File key → (start, end) of the offsets covered.
    pub ranges: BTreeMap<u64, (u64, u64)>,
    /// File key → its path when its range began.
    paths: BTreeMap<u64, PathBuf>,
    /// The observed time of the records (one per batch: the time of the poll that made it).
    observed: u64,
}

impl Builder {
    pub fn records(&self) -> usize {
        self.records
    }

    /// Encoded bytes of the records so far (the request is a little larger: resources and scopes).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0 && self.ranges.is_empty()
    }

    /// The observed time of the records pushed last.
    pub fn observed(&self) -> u64 {
        self.observed
    }

    /// Records that the entries of `file` (read at `path`) now cover `start..end` (also for a range whose
    /// entries were all dropped on purpose: its checkpoint moves with the batch).
    pub fn cover(&mut self, file: u64, start: u64, end: u64, path: &Path) {
        let range = self.ranges.entry(file).or_insert((start, end));
        range.0 = range.0.min(start);
        range.1 = range.1.max(end);
        self.paths.entry(file).or_insert_with(|| path.to_owned());
    }

    /// Adds one entry, observed at `observed` (nanoseconds since the epoch).
    pub fn push(&mut self, entry: Entry, observed: u64) {
        self.observed = observed;
        let resource_index = self.resource_index(&entry.resource);
        self.records += 1;
        let scopes = &mut self.resources[resource_index].scopes;
        let scope = match scopes
            .iter()
            .rposition(|(name, _)| *name == entry.scope_name)
        {
            Some(i) => i,
            None => {
                scopes.push((entry.scope_name.clone(), Vec::new()));
                scopes.len() - 1
            }
        };
        let record = Record {
            time_unix_nano: entry
                .timestamp
                .and_then(|t| u64::try_from(t).ok())
                .unwrap_or(0),
            observed_time_unix_nano: observed,
            severity_number: entry.severity_number,
            severity_text: &entry.severity_text,
            body: &entry.body,
            attributes: &entry.attributes,
            trace_id: &entry.trace_id,
            span_id: &entry.span_id,
        };
        self.bytes += encode::write_record(LOG_RECORDS, &record, &mut scopes[scope].1);
    }

    fn resource_index(&mut self, resource: &Map<String, Value>) -> usize {
        if let Some((last, i)) = &self.last
            && last == resource
        {
            return *i;
        }
        let key: Vec<(String, String)> = resource
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                self.resources.push(ResourceGroup {
                    resource: encode::resource(resource),
                    scopes: Vec::new(),
                });
                self.index.insert(key, self.resources.len() - 1);
                self.resources.len() - 1
            }
        };
        self.last = Some((resource.clone(), i));
        i
    }

    /// The request, the file ranges it covers, and each file's path when its range began.
    pub fn finish(self) -> Finished {
        let mut buf = Vec::with_capacity(self.bytes + 64 * self.resources.len() + 16);
        for group in &self.resources {
            encode::write_resource_logs(
                &group.resource,
                group
                    .scopes
                    .iter()
                    .map(|(name, records)| (name.as_str(), records.as_slice())),
                &mut buf,
            );
        }
        Finished {
            payload: payload(Bytes::from(buf), self.records),
            ranges: self.ranges,
            paths: self.paths,
        }
    }
}

/// The request's bytes as a wire payload. They are checked as a client's would be: a failure would be a bug in
/// `encode` (its differential test rules it out); the batch then goes out empty, with an error, rather than
/// carrying bytes no destination could read.
fn payload(bytes: Bytes, records: usize) -> Payload {
    Payload::from_wire(Signal::Logs, bytes).unwrap_or_else(|e| {
        tracing::error!(error = %e, records,
            "A batch of log lines did not encode as valid OTLP (a bug); its lines are skipped.");
        Payload::empty(Signal::Logs)
    })
}

/// A filled request and what it covers.
pub struct Finished {
    /// The export request, in wire form.
    pub payload: Payload,
    /// File key → (start, end) of the offsets covered.
    pub ranges: BTreeMap<u64, (u64, u64)>,
    /// File key → its path when its range began.
    pub paths: BTreeMap<u64, PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::ExportRequest;
    use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
    use otlake_core::proto::logs::v1::LogRecord;
    use serde_json::json;

    /// What the receiver built before it wrote protobuf itself: prost structs, encoded later by the exporter.
    /// The wire builder must decode to exactly this.
    mod reference {
        use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
        use otlake_core::proto::common::v1::{
            AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
        };
        use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        use otlake_core::proto::resource::v1::Resource;
        use serde_json::{Map, Value};

        use crate::entry::Entry;

        pub fn request(entries: Vec<Entry>, observed: u64) -> ExportLogsServiceRequest {
            let mut resources: Vec<(Map<String, Value>, ResourceLogs)> = Vec::new();
            for entry in entries {
                let i = match resources.iter().position(|(r, _)| *r == entry.resource) {
                    Some(i) => i,
                    None => {
                        resources.push((
                            entry.resource.clone(),
                            ResourceLogs {
                                resource: Some(Resource {
                                    attributes: key_values(entry.resource.clone()),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            },
                        ));
                        resources.len() - 1
                    }
                };
                let record = LogRecord {
                    time_unix_nano: entry
                        .timestamp
                        .and_then(|t| u64::try_from(t).ok())
                        .unwrap_or(0),
                    observed_time_unix_nano: observed,
                    severity_number: entry.severity_number,
                    severity_text: entry.severity_text,
                    body: Some(any_value(entry.body)),
                    attributes: key_values(entry.attributes),
                    trace_id: entry.trace_id,
                    span_id: entry.span_id,
                    ..Default::default()
                };
                let scopes = &mut resources[i].1.scope_logs;
                let scope = match scopes.iter().rposition(|s| {
                    s.scope.as_ref().map_or("", |s| s.name.as_str()) == entry.scope_name
                }) {
                    Some(i) => i,
                    None => {
                        scopes.push(ScopeLogs {
                            scope: Some(InstrumentationScope {
                                name: entry.scope_name,
                                ..Default::default()
                            }),
                            ..Default::default()
                        });
                        scopes.len() - 1
                    }
                };
                scopes[scope].log_records.push(record);
            }
            ExportLogsServiceRequest {
                resource_logs: resources.into_iter().map(|(_, r)| r).collect(),
            }
        }

        pub fn any_value(value: Value) -> AnyValue {
            let value = match value {
                Value::Null => None,
                Value::Bool(b) => Some(any_value::Value::BoolValue(b)),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => Some(any_value::Value::IntValue(i)),
                    None => Some(any_value::Value::DoubleValue(
                        n.as_f64().unwrap_or(f64::NAN),
                    )),
                },
                Value::String(s) => Some(any_value::Value::StringValue(s)),
                Value::Array(values) => Some(any_value::Value::ArrayValue(ArrayValue {
                    values: values.into_iter().map(any_value).collect(),
                })),
                Value::Object(map) => Some(any_value::Value::KvlistValue(KeyValueList {
                    values: key_values(map),
                })),
            };
            AnyValue { value }
        }

        fn key_values(map: Map<String, Value>) -> Vec<KeyValue> {
            map.into_iter()
                .map(|(key, value)| KeyValue {
                    key,
                    value: Some(any_value(value)),
                    ..Default::default()
                })
                .collect()
        }
    }

    fn logs(payload: &Payload) -> ExportLogsServiceRequest {
        assert!(payload.is_wire(), "a wire payload");
        match payload.request().expect("decodes") {
            ExportRequest::Logs(request) => request.clone(),
            other => panic!("not logs: {other:?}"),
        }
    }

    /// Entries with every kind of value and field, over several resources and scopes.
    fn varied_entries() -> Vec<Entry> {
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-1),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(0.0),
            json!(-2.5e-300),
            json!(1e300),
            json!(""),
            json!("ünïcødé ✓ \u{fffd}"),
            json!("x".repeat(300)),
            json!([]),
            json!([1, "two", [3.5, null], {"k": false}]),
            json!({}),
            json!({"": "empty key", "a": {"b": {"c": [1, 2, {"d": "deep"}]}}}),
        ];
        let mut entries = Vec::new();
        for (n, value) in values.iter().enumerate() {
            let mut entry = Entry::line(format!("line {n}"), n as u64 * 10, n as u64 * 10 + 9);
            if n % 3 == 1 {
                entry.body = value.clone();
            }
            entry.attributes.insert("value".into(), value.clone());
            entry
                .attributes
                .insert("log.file.name".into(), json!("app.log"));
            if n % 4 == 0 {
                entry
                    .resource
                    .insert("k8s.pod.name".into(), json!(format!("pod-{}", n % 8)));
            }
            entry.scope_name = ["", "app", "db"][n % 3].to_owned();
            entry.timestamp = [None, Some(0), Some(-5), Some(1_733_000_000_123_456_789)][n % 4];
            entry.severity_number = [0, 9, 17, -3][n % 4];
            entry.severity_text = ["", "INFO", "ERROR", "odd"][n % 4].to_owned();
            if n % 2 == 0 {
                entry.trace_id = (0..16).map(|b| b as u8 + n as u8).collect();
                entry.span_id = vec![n as u8; 8];
            }
            entries.push(entry);
        }
        entries
    }

    #[test]
    fn the_wire_request_decodes_to_what_prost_structs_gave() {
        let entries = varied_entries();
        let mut builder = Builder::default();
        for entry in entries.clone() {
            builder.push(entry, 1_733_000_000_000_000_000);
        }
        let records = builder.records();
        let finished = builder.finish();
        assert_eq!(finished.payload.item_count(), records);
        assert_eq!(
            logs(&finished.payload),
            reference::request(entries, 1_733_000_000_000_000_000)
        );
    }

    #[test]
    fn groups_by_resource_and_scope_and_tracks_ranges() {
        let mut builder = Builder::default();
        let mut a = Entry::line("a".into(), 0, 2);
        a.resource.insert("k8s.pod.name".into(), json!("p1"));
        a.scope_name = "app".into();
        let mut b = a.clone();
        b.scope_name = "db".into();
        let mut c = Entry::line("c".into(), 0, 2);
        c.attributes
            .insert("n".into(), json!({"x": [1, 2.5, null, true]}));
        let path = Path::new("/logs/a.log");
        builder.push(a, 1);
        builder.cover(7, 0, 2, path);
        builder.push(b, 1);
        builder.cover(7, 2, 4, path);
        builder.push(c, 1);
        builder.cover(8, 10, 12, path);
        assert_eq!(builder.records(), 3);
        let Finished {
            payload, ranges, ..
        } = builder.finish();
        let request = logs(&payload);
        assert_eq!(request.resource_logs.len(), 2);
        assert_eq!(request.resource_logs[0].scope_logs.len(), 2);
        assert_eq!(ranges[&7], (0, 4));
        assert_eq!(ranges[&8], (10, 12));
        let record: &LogRecord = &request.resource_logs[1].scope_logs[0].log_records[0];
        assert_eq!(record.observed_time_unix_nano, 1);
        assert_eq!(
            record.attributes[0].value,
            Some(reference::any_value(json!({"x": [1, 2.5, null, true]})))
        );
    }

    #[test]
    fn json_nested_too_deep_for_otlp_decoders_is_kept_as_its_text() {
        let mut deep = json!("bottom");
        for _ in 0..60 {
            deep = json!({ "k": deep });
        }
        let mut entry = Entry::line("deep".into(), 0, 5);
        entry.attributes.insert("nested".into(), deep.clone());
        entry.body = json!([deep.clone()]);
        let mut builder = Builder::default();
        builder.push(entry, 1);
        let request = logs(&builder.finish().payload);
        let record = &request.resource_logs[0].scope_logs[0].log_records[0];
        // Walk the attribute down to where it turned into text: that text is the rest of the JSON, whole.
        let mut value = record.attributes[0].value.clone().expect("value");
        let mut levels = 0;
        use otlake_core::proto::common::v1::any_value::Value as V;
        let text = loop {
            match value.value {
                Some(V::KvlistValue(list)) => {
                    value = list.values[0].value.clone().expect("value");
                    levels += 1;
                }
                Some(V::StringValue(text)) => break text,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(levels, encode::MAX_DEPTH);
        let mut rest = deep;
        for _ in 0..levels {
            rest = rest["k"].take();
        }
        assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), rest);
    }
}
