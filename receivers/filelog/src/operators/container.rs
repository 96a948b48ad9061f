//! `container`: the lines a container runtime writes to `/var/log/pods/...` (the Collector's container parser).
//!
//! - docker JSON: `{"log":"text\n","stream":"stdout","time":"2024-...Z"}`; a `log` without its `\n` is a
//!   partial line (docker splits lines at 16 KiB).
//! - CRI-O / containerd: `2024-...Z stdout P text`; the tag `P` marks a partial line, `F` the last part.
//!
//! Partial lines are joined, per stream, into one entry before any size check; the joined entry is cut at
//! `max_log_size` (marked `otlake.truncated`), and the parts past the limit are read and skipped rather than
//! held. The body is the text, `log.iostream` the stream, the timestamp the runtime's (the first part's).
//! With `add_metadata_from_filepath` the pod, namespace, uid, container and restart count come from the path.
//!
//! While a stream's line waits for its last part, an entry of the other stream that completes meanwhile is
//! emitted; the waiting line is what [`Operator::holds_from`] reports, so the file's batch does not end (nor
//! its checkpoint move) before the waiting line is complete.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use chrono::DateTime;
use otlake_core::ConfigError;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::{OnError, Operator};
use crate::config::FilelogConfig;
use crate::entry::Entry;

/// `container`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerConfig {
    /// The operator's id (default: its type and position).
    pub id: Option<String>,
    /// The id of a later operator to send entries to (default: the next one).
    pub output: Option<String>,
    /// What to do with a line in no known format: `send` (default), `send_quiet`, `drop`, `drop_quiet`.
    pub on_error: OnError,
    /// `auto` (default: by the line's first byte), `docker`, `crio` or `containerd`.
    pub format: String,
    /// Read `k8s.*` resource attributes from the file path (needs `include_file_path: true`). Default `true`.
    pub add_metadata_from_filepath: bool,
    /// Longest joined entry; default: the receiver's `max_log_size`. A byte size.
    #[serde(deserialize_with = "optional_byte_size")]
    pub max_log_size: Option<u64>,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        ContainerConfig {
            id: None,
            output: None,
            on_error: OnError::Send,
            format: "auto".to_owned(),
            add_metadata_from_filepath: true,
            max_log_size: None,
        }
    }
}

fn optional_byte_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    otlake_core::config::byte_size::deserialize(d).map(Some)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Auto,
    Docker,
    Cri,
}

static CRI_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<time>[^ ]+) (?P<stream>stdout|stderr) (?P<logtag>[^ ]*) ?(?P<log>.*)$")
        .expect("a valid regex")
});

/// `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log` (the Collector's expression).
static POD_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^.*/(?P<namespace>[^_/]+)_(?P<pod_name>[^_/]+)_(?P<uid>[a-f0-9\-]+)/(?P<container_name>[^._/]+)/(?P<restart_count>\d+)\.log$",
    )
    .expect("a valid regex")
});

/// The `k8s.*` resource attributes read from one path.
type PodAttributes = Arc<[(String, String)]>;

/// A line waiting for its last part.
struct Partial {
    entry: Entry,
    body: String,
    /// Bytes of all parts so far (more than `body` holds once it was cut).
    size: usize,
}

struct Container {
    id: String,
    format: Format,
    on_error: OnError,
    metadata: bool,
    max_size: usize,
    /// Per stream.
    partials: BTreeMap<String, Partial>,
    /// Resource attributes of the last path seen (a file's path rarely changes: parse it once).
    path_cache: Option<(String, PodAttributes)>,
}

/// One parsed runtime line.
struct Line {
    stream: String,
    time: Option<i64>,
    text: String,
    partial: bool,
    logtag: Option<String>,
}

impl Container {
    fn parse(&self, body: &str) -> Result<Line, String> {
        let docker = match self.format {
            Format::Docker => true,
            Format::Cri => false,
            Format::Auto => body.starts_with('{'),
        };
        if docker {
            let value: Value =
                serde_json::from_str(body).map_err(|e| format!("not a docker JSON line: {e}"))?;
            let text = value
                .get("log")
                .and_then(Value::as_str)
                .ok_or("a docker JSON line without `log`")?;
            let (text, partial) = match text.strip_suffix('\n') {
                Some(text) => (text, false),
                None => (text, true),
            };
            Ok(Line {
                stream: value
                    .get("stream")
                    .and_then(Value::as_str)
                    .unwrap_or("stdout")
                    .to_owned(),
                time: value.get("time").and_then(Value::as_str).and_then(rfc3339),
                text: text.to_owned(),
                partial,
                logtag: None,
            })
        } else {
            let captures = CRI_LINE
                .captures(body)
                .ok_or("not a CRI line (`<time> <stream> <tag> <text>`)")?;
            let logtag = &captures["logtag"];
            Ok(Line {
                stream: captures["stream"].to_owned(),
                time: rfc3339(&captures["time"]),
                text: captures["log"].to_owned(),
                partial: logtag.split(':').next() == Some("P"),
                logtag: Some(logtag.to_owned()),
            })
        }
    }

    fn pod_metadata(&mut self, entry: &mut Entry) {
        let Some(path) = entry
            .attributes
            .get("log.file.path")
            .and_then(Value::as_str)
        else {
            return;
        };
        let cached = match &self.path_cache {
            Some((cached, attributes)) if cached == path => Arc::clone(attributes),
            _ => {
                let attributes: PodAttributes = match POD_PATH.captures(path) {
                    Some(c) => [
                        ("k8s.namespace.name", "namespace"),
                        ("k8s.pod.name", "pod_name"),
                        ("k8s.pod.uid", "uid"),
                        ("k8s.container.name", "container_name"),
                        ("k8s.container.restart_count", "restart_count"),
                    ]
                    .iter()
                    .map(|(key, group)| ((*key).to_owned(), c[*group].to_owned()))
                    .collect(),
                    None => Arc::from(Vec::new()),
                };
                self.path_cache = Some((path.to_owned(), Arc::clone(&attributes)));
                attributes
            }
        };
        for (key, value) in cached.iter() {
            entry
                .resource
                .insert(key.clone(), Value::String(value.clone()));
        }
    }

    fn finish(&self, partial: Partial) -> Entry {
        let Partial {
            mut entry,
            body,
            size,
        } = partial;
        if size > body.len() {
            entry.mark_truncated(size);
        }
        entry.body = Value::String(body);
        entry
    }

    /// The lowest start of a line still waiting for its last part.
    fn held_from(&self) -> Option<u64> {
        self.partials.values().map(|p| p.entry.start_offset).min()
    }
}

/// Appends `text` to `body` up to `max` bytes (cut at a character boundary).
fn append_capped(body: &mut String, text: &str, max: usize) {
    let room = max.saturating_sub(body.len());
    if text.len() <= room {
        body.push_str(text);
    } else {
        body.push_str(&text[..text.floor_char_boundary(room)]);
    }
}

fn rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

impl Operator for Container {
    fn process(&mut self, mut entry: Entry, out: &mut Vec<Entry>) {
        let line = match entry.body_str().map(|body| self.parse(body)) {
            Some(Ok(line)) => line,
            Some(Err(e)) => return self.on_error.handle(&self.id, &e, entry, out),
            None => {
                return self
                    .on_error
                    .handle(&self.id, "the body is not a string", entry, out);
            }
        };
        let end_offset = entry.end_offset;
        let partial = match self.partials.remove(&line.stream) {
            Some(mut partial) => {
                append_capped(&mut partial.body, &line.text, self.max_size);
                partial.size += line.text.len();
                partial.entry.end_offset = end_offset;
                partial
            }
            None => {
                if self.metadata {
                    self.pod_metadata(&mut entry);
                }
                entry.timestamp = line.time.or(entry.timestamp);
                entry.attributes.insert(
                    "log.iostream".to_owned(),
                    Value::String(line.stream.clone()),
                );
                if let Some(tag) = &line.logtag {
                    entry
                        .attributes
                        .insert("logtag".to_owned(), Value::String(tag.clone()));
                }
                let mut body = String::new();
                append_capped(&mut body, &line.text, self.max_size);
                Partial {
                    entry,
                    body,
                    size: line.text.len(),
                }
            }
        };
        if line.partial {
            self.partials.insert(line.stream, partial);
            return;
        }
        out.push(self.finish(partial));
    }

    fn flush(&mut self, out: &mut Vec<Entry>) {
        // In order of where they start, so the offsets they carry only grow.
        let mut partials: Vec<Partial> = std::mem::take(&mut self.partials).into_values().collect();
        partials.sort_by_key(|p| p.entry.start_offset);
        for partial in partials {
            out.push(self.finish(partial));
        }
    }

    fn holds_from(&self) -> Option<u64> {
        self.held_from()
    }

    fn fresh(&self) -> Box<dyn Operator> {
        Box::new(Container {
            id: self.id.clone(),
            format: self.format,
            on_error: self.on_error,
            metadata: self.metadata,
            max_size: self.max_size,
            partials: BTreeMap::new(),
            path_cache: None,
        })
    }
}

pub(super) fn compile(
    id: &str,
    c: &ContainerConfig,
    receiver: &FilelogConfig,
) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let format = match c.format.as_str() {
        "auto" => Format::Auto,
        "docker" => Format::Docker,
        "crio" | "containerd" => Format::Cri,
        other => {
            errors.push(ConfigError::new(
                "format",
                format!("unknown format `{other}`: expected auto, docker, crio or containerd"),
            ));
            Format::Auto
        }
    };
    if c.add_metadata_from_filepath && !receiver.include_file_path {
        errors.push(ConfigError::new(
            "add_metadata_from_filepath",
            "needs the receiver's `include_file_path: true` (or set this to false)",
        ));
    }
    if c.max_log_size == Some(0) {
        errors.push(ConfigError::new("max_log_size", "must be greater than 0"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(Container {
        id: id.to_owned(),
        format,
        on_error: c.on_error,
        metadata: c.add_metadata_from_filepath,
        max_size: usize::try_from(c.max_log_size.unwrap_or(receiver.max_log_size))
            .unwrap_or(usize::MAX),
        partials: BTreeMap::new(),
        path_cache: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::Chain;
    use super::super::tests::run;
    use super::*;
    use serde_json::json;

    fn chain(extra: Value) -> Chain {
        let mut op = json!({"type": "container"});
        if let (Some(op), Some(extra)) = (op.as_object_mut(), extra.as_object()) {
            op.extend(extra.clone());
        }
        let config: FilelogConfig = otlake_core::parse_config(&json!({
            "include": ["/x"], "include_file_path": true, "max_log_size": 64, "operators": [op]
        }))
        .expect("parses");
        super::super::validate(&config.operators, &config)
            .expect("valid")
            .chain()
    }

    #[test]
    fn cri_partial_lines_join_per_stream() {
        let mut chain = chain(json!({}));
        let mut out = Vec::new();
        for (i, line) in [
            "2024-12-01T10:00:00.000000001Z stdout P hello ",
            "2024-12-01T10:00:01Z stderr F an error",
            "2024-12-01T10:00:02Z stdout P big ",
            "2024-12-01T10:00:03Z stdout F world",
        ]
        .iter()
        .enumerate()
        {
            chain.process(
                Entry::line((*line).into(), i as u64, i as u64 + 1),
                &mut out,
            );
            let expected = if i < 3 { Some(0) } else { None };
            assert_eq!(
                chain.holds_from(),
                expected,
                "the waiting stdout line is held from its start"
            );
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].body, json!("an error"));
        assert_eq!(out[0].attributes["log.iostream"], json!("stderr"));
        assert_eq!(out[0].end_offset, 2);
        assert_eq!(out[1].body, json!("hello big world"));
        assert_eq!(out[1].timestamp, Some(1_733_047_200_000_000_001));
        assert_eq!(out[1].attributes["logtag"], json!("P"));
        assert_eq!(out[1].end_offset, 4);
    }

    #[test]
    fn docker_json_and_truncation_of_joined_lines() {
        let mut chain = chain(json!({}));
        let long = "x".repeat(50);
        let lines = [
            format!(r#"{{"log":"{long}","stream":"stdout","time":"2024-12-01T10:00:00Z"}}"#),
            format!(r#"{{"log":"{long}\n","stream":"stdout","time":"2024-12-01T10:00:00Z"}}"#),
            r#"{"log":"short\n","stream":"stderr","time":"2024-12-01T10:00:00Z"}"#.to_owned(),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let out = run(&mut chain, &refs);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].body.as_str().map(str::len), Some(64));
        assert_eq!(
            out[0].attributes[crate::entry::TRUNCATED_ATTRIBUTE],
            json!(100)
        );
        assert_eq!(out[1].body, json!("short"));
    }

    #[test]
    fn kubernetes_names_from_the_path_and_bad_lines() {
        let mut chain = chain(json!({}));
        let mut entry = Entry::line("2024-12-01T10:00:00Z stdout F hi".into(), 0, 1);
        entry.attributes.insert(
            "log.file.path".into(),
            json!("/var/log/pods/ml_vllm-0_0123abcd-00aa/server/2.log"),
        );
        let mut out = Vec::new();
        chain.process(entry, &mut out);
        chain.process(Entry::line("garbage".into(), 1, 2), &mut out);
        assert_eq!(out[0].resource["k8s.pod.name"], json!("vllm-0"));
        assert_eq!(out[0].resource["k8s.namespace.name"], json!("ml"));
        assert_eq!(out[0].resource["k8s.container.name"], json!("server"));
        assert_eq!(out[0].resource["k8s.container.restart_count"], json!("2"));
        assert_eq!(
            out[1].body,
            json!("garbage"),
            "a bad line goes on unchanged"
        );
    }

    #[test]
    fn a_partial_line_is_emitted_on_flush() {
        let mut chain = chain(json!({"add_metadata_from_filepath": false}));
        let out = run(&mut chain, &["2024-12-01T10:00:00Z stdout P unfinished"]);
        assert_eq!(out[0].body, json!("unfinished"));
    }

    #[test]
    fn metadata_needs_the_file_path() {
        let config: FilelogConfig = otlake_core::parse_config(&json!({
            "include": ["/x"], "operators": [{"type": "container", "format": "podman"}]
        }))
        .expect("parses");
        let errors = super::super::validate(&config.operators, &config).expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "operators.0.format",
                "operators.0.add_metadata_from_filepath"
            ]
        );
    }
}
