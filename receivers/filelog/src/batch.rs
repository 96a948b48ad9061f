//! [`Builder`]: entries → one OTLP logs request, and the file ranges it carries.
//!
//! Entries with the same resource attributes share a `ResourceLogs`, and within it entries with the same scope
//! name a `ScopeLogs`. For each file the builder records the range of offsets its entries cover; the receiver
//! moves that file's checkpoint past the range only when the batch is acknowledged.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use otlake_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlake_core::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use otlake_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlake_core::proto::resource::v1::Resource;
use serde_json::{Map, Value};

use crate::entry::Entry;

/// A request being filled.
#[derive(Default)]
pub struct Builder {
    resources: Vec<ResourceLogs>,
    /// Resource attributes → index in `resources`.
    index: HashMap<Vec<(String, String)>, usize>,
    /// The resource of the last entry and its index (entries of one file mostly share it).
    last: Option<(Map<String, Value>, usize)>,
    records: usize,
    /// Approximate bytes of text added (bodies and attribute values).
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
        self.bytes += approximate_size(&entry);
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
        let scopes = &mut self.resources[resource_index].scope_logs;
        let scope = match scopes
            .iter()
            .rposition(|s| s.scope.as_ref().map_or("", |s| s.name.as_str()) == entry.scope_name)
        {
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
                self.resources.push(ResourceLogs {
                    resource: Some(Resource {
                        attributes: key_values(resource.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
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
        Finished {
            request: ExportLogsServiceRequest {
                resource_logs: self.resources,
            },
            ranges: self.ranges,
            paths: self.paths,
        }
    }
}

/// A filled request and what it covers.
pub struct Finished {
    pub request: ExportLogsServiceRequest,
    /// File key → (start, end) of the offsets covered.
    pub ranges: BTreeMap<u64, (u64, u64)>,
    /// File key → its path when its range began.
    pub paths: BTreeMap<u64, PathBuf>,
}

fn approximate_size(entry: &Entry) -> usize {
    fn size(value: &Value) -> usize {
        match value {
            Value::String(s) => s.len(),
            Value::Array(values) => values.iter().map(size).sum(),
            Value::Object(map) => map.iter().map(|(k, v)| k.len() + size(v)).sum(),
            _ => 8,
        }
    }
    64 + size(&entry.body)
        + entry
            .attributes
            .iter()
            .map(|(k, v)| k.len() + size(v))
            .sum::<usize>()
}

/// A JSON value as an OTLP value: maps become key-value lists, `null` an empty value.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            request, ranges, ..
        } = builder.finish();
        assert_eq!(request.resource_logs.len(), 2);
        assert_eq!(request.resource_logs[0].scope_logs.len(), 2);
        assert_eq!(ranges[&7], (0, 4));
        assert_eq!(ranges[&8], (10, 12));
        let record = &request.resource_logs[1].scope_logs[0].log_records[0];
        assert_eq!(record.observed_time_unix_nano, 1);
        assert!(matches!(
            record.attributes[0]
                .value
                .as_ref()
                .and_then(|v| v.value.as_ref()),
            Some(any_value::Value::KvlistValue(_))
        ));
    }
}
