//! `python`: what Python servers print, as records with a level, a logger and the message.
//!
//! Formats, tried in this order on each line:
//! - the OpenTelemetry logging instrumentation's `%(asctime)s %(levelname)s [%(name)s] [%(filename)s:%(lineno)d]
//!   [trace_id=... span_id=... resource.service.name=... trace_sampled=...] - %(message)s`;
//! - `%(asctime)s - %(name)s - %(levelname)s - %(message)s`;
//! - vLLM's `INFO 12-01 10:00:00 [file.py:123] message` (optionally after `(Worker pid=7) `);
//! - uvicorn's `INFO:     message`;
//! - `logging`'s default `LEVEL:logger:message`.
//!
//! A line in none of them is a record of its own, with no severity. An indented line continues the record
//! before it. A traceback (`Traceback (most recent call last):` through the exception line, chained
//! exceptions included) joins the ERROR record it follows (what `logger.exception` prints) or, printed alone
//! or after a record below ERROR (an uncaught exception after an INFO line), is one ERROR record; either way it carries `exception.type`, `exception.message` and `exception.stacktrace`. A
//! `trace_id=<32 hex>` / `span_id=<16 hex>` anywhere in the line fills the record's ids.
//!
//! Since the line after a record may be the start of its traceback, a record is held until the next line (or
//! the receiver's `force_flush_period`) shows it is complete.

use std::sync::LazyLock;

use otlake_core::ConfigError;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::Operator;
use super::severity::default_level;
use super::time::TimeLayout;
use crate::entry::{Entry, Field};

/// `python`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PythonConfig {
    /// The operator's id (default: its type and position).
    pub id: Option<String>,
    /// The id of a later operator to send entries to (default: the next one).
    pub output: Option<String>,
    /// The field holding the line. Default `body`.
    pub parse_from: Option<String>,
    /// The zone of the printed times (`asctime` has no offset): an IANA name, `Local`, or `UTC` (default).
    pub location: Option<String>,
}

const TRACEBACK: &str = "Traceback (most recent call last):";
const CHAINED: [&str; 2] = [
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
];
/// OTel's ERROR severity number.
const ERROR: i32 = 17;
const LEVELS: &str = "DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL";

static OTEL: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^(?P<asctime>\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d{{3}})?) (?P<level>{LEVELS}) \[(?P<name>[^\]]*)\] \[(?P<file>[^\]:]*):(?P<line>\d+)\] \[[^\]]*\] - (?P<msg>.*)$"
    ))
});
static ASCTIME: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^(?P<asctime>\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d{{3}})?) - (?P<name>.+?) - (?P<level>{LEVELS}) - (?P<msg>.*)$"
    ))
});
static VLLM: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^(?:\((?P<process>[^)]*)\) )?(?P<level>{LEVELS}) (?P<date>\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? \[?(?P<file>[^\]:\s]+):(?P<line>\d+)\] (?P<msg>.*)$"
    ))
});
static UVICORN: LazyLock<Regex> =
    LazyLock::new(|| regex(&format!(r"^(?P<level>{LEVELS}):\s+(?P<msg>.*)$")));
static DEFAULT: LazyLock<Regex> = LazyLock::new(|| {
    regex(&format!(
        r"^(?P<level>{LEVELS}):(?P<name>[^:\s]*):(?P<msg>.*)$"
    ))
});
static EXCEPTION: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$"));
static TRACE_ID: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\btrace_id=(?:0x)?(?P<id>[0-9a-fA-F]{32})\b"));
static SPAN_ID: LazyLock<Regex> =
    LazyLock::new(|| regex(r"\bspan_id=(?:0x)?(?P<id>[0-9a-fA-F]{16})\b"));

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid regex")
}

/// Where a held record is in a traceback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Traceback {
    /// No traceback.
    None,
    /// Inside one: frames until the exception line.
    Frames,
    /// After an exception line: a blank line or a chaining sentence may continue it.
    AfterException,
    /// After a chaining sentence: the next traceback follows.
    Chained,
}

struct Held {
    entry: Entry,
    state: Traceback,
    stacktrace: Vec<String>,
    /// Blank lines after an exception line, kept until we know whether a chained traceback follows.
    blanks: Vec<Entry>,
    exception: Option<(String, String)>,
    /// Printed alone (not after a record).
    bare: bool,
}

struct Python {
    from: Field,
    asctime: TimeLayout,
    vllm_time: TimeLayout,
    held: Option<Held>,
}

impl Python {
    fn emit(&mut self, out: &mut Vec<Entry>) {
        let Some(held) = self.held.take() else { return };
        let Held {
            mut entry,
            stacktrace,
            blanks,
            exception,
            bare,
            ..
        } = held;
        if !stacktrace.is_empty() {
            let text = stacktrace.join("\n");
            if bare {
                entry.body = Value::String(text.clone());
                entry.severity_number = ERROR;
                entry.severity_text = "ERROR".to_owned();
            }
            if let Some((kind, message)) = exception {
                entry
                    .attributes
                    .insert("exception.type".into(), Value::String(kind));
                entry
                    .attributes
                    .insert("exception.message".into(), Value::String(message));
            }
            entry
                .attributes
                .insert("exception.stacktrace".into(), Value::String(text));
        }
        out.push(entry);
        // Blank lines that turned out not to lead to a chained traceback are entries of their own.
        out.extend(blanks);
    }

    fn parse(&self, line: &str, entry: &mut Entry) {
        let (captures, time) = if let Some(c) = OTEL.captures(line) {
            (c, Some(("asctime", &self.asctime)))
        } else if let Some(c) = ASCTIME.captures(line) {
            (c, Some(("asctime", &self.asctime)))
        } else if let Some(c) = VLLM.captures(line) {
            (c, Some(("date", &self.vllm_time)))
        } else if let Some(c) = UVICORN.captures(line).or_else(|| DEFAULT.captures(line)) {
            (c, None)
        } else {
            set_ids(line, entry);
            return;
        };
        if let Some((group, layout)) = time
            && let Some(text) = captures.name(group)
            && let Ok(nanos) = layout.parse(&Value::String(text.as_str().replace(',', ".")))
        {
            entry.timestamp = Some(nanos);
        }
        let level = &captures["level"];
        if let Some((number, _)) = default_level(level) {
            entry.severity_number = number;
        }
        entry.severity_text = level.to_owned();
        if let Some(name) = captures.name("name") {
            entry.scope_name = name.as_str().to_owned();
        }
        if let (Some(file), Some(number)) = (captures.name("file"), captures.name("line")) {
            entry.attributes.insert(
                "code.file.path".into(),
                Value::String(file.as_str().to_owned()),
            );
            if let Ok(n) = number.as_str().parse::<i64>() {
                entry
                    .attributes
                    .insert("code.line.number".into(), Value::from(n));
            }
        }
        if let Some(process) = captures.name("process") {
            entry.attributes.insert(
                "process.label".into(),
                Value::String(process.as_str().to_owned()),
            );
        }
        let message = captures["msg"].to_owned();
        set_ids(line, entry);
        entry.body = Value::String(message);
    }

    /// A line while a record is held; returns the line back if it does not belong to the held record.
    fn continue_held(&mut self, line: &str, entry: Entry) -> Option<Entry> {
        let Some(held) = self.held.as_mut() else {
            return Some(entry);
        };
        let indented = line.starts_with([' ', '\t']);
        match held.state {
            Traceback::Frames if indented || line == TRACEBACK => {}
            Traceback::Frames => {
                let exception = EXCEPTION.captures(line).map(|c| {
                    (
                        c["type"].to_owned(),
                        c.name("msg")
                            .map_or_else(String::new, |m| m.as_str().to_owned()),
                    )
                });
                // A line that is no exception (`raise` printed something odd) still ends the traceback.
                held.exception =
                    Some(exception.unwrap_or_else(|| (line.to_owned(), String::new())));
                held.state = Traceback::AfterException;
            }
            Traceback::AfterException if line.trim().is_empty() => {
                held.blanks.push(entry);
                return None;
            }
            Traceback::AfterException if CHAINED.contains(&line) => {
                held.state = Traceback::Chained;
                held.stacktrace
                    .extend(held.blanks.drain(..).map(|_| String::new()));
            }
            Traceback::Chained if line.trim().is_empty() => {}
            Traceback::Chained if line == TRACEBACK => held.state = Traceback::Frames,
            // `logger.exception` prints its ERROR record and then the traceback: they are one record. After a
            // record below ERROR the traceback is another story (an uncaught exception after an INFO line).
            Traceback::None if line == TRACEBACK && held.entry.severity_number >= ERROR => {
                held.state = Traceback::Frames;
            }
            Traceback::None if indented && held.blanks.is_empty() => {
                // A message printed over several lines: its indented lines continue it.
                if let Value::String(body) = &mut held.entry.body {
                    body.push('\n');
                    body.push_str(line);
                }
                held.entry.end_offset = entry.end_offset;
                return None;
            }
            _ => return Some(entry),
        }
        held.stacktrace.push(line.to_owned());
        held.entry.end_offset = entry.end_offset;
        None
    }
}

fn set_ids(line: &str, entry: &mut Entry) {
    if let Some(id) = TRACE_ID.captures(line).and_then(|c| hex(&c["id"])) {
        entry.trace_id = id;
    }
    if let Some(id) = SPAN_ID.captures(line).and_then(|c| hex(&c["id"])) {
        entry.span_id = id;
    }
}

/// The bytes of a hex id; `None` for the all-zero id (no span was active).
fn hex(text: &str) -> Option<Vec<u8>> {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    bytes.iter().any(|&b| b != 0).then_some(bytes)
}

impl Operator for Python {
    fn process(&mut self, entry: Entry, out: &mut Vec<Entry>) {
        let Some(Value::String(line)) = self.from.get(&entry).cloned() else {
            self.emit(out);
            out.push(entry);
            return;
        };
        let Some(mut entry) = self.continue_held(&line, entry) else {
            return;
        };
        self.emit(out);
        if line == TRACEBACK {
            entry.body = Value::String(String::new());
            self.held = Some(Held {
                entry,
                state: Traceback::Frames,
                stacktrace: vec![line],
                blanks: Vec::new(),
                exception: None,
                bare: true,
            });
            return;
        }
        self.parse(&line, &mut entry);
        self.held = Some(Held {
            entry,
            state: Traceback::None,
            stacktrace: Vec::new(),
            blanks: Vec::new(),
            exception: None,
            bare: false,
        });
    }

    fn flush(&mut self, out: &mut Vec<Entry>) {
        self.emit(out);
    }

    fn holds_from(&self) -> Option<u64> {
        self.held.as_ref().map(|held| held.entry.start_offset)
    }

    fn fresh(&self) -> Box<dyn Operator> {
        Box::new(Python {
            from: self.from.clone(),
            asctime: self.asctime.clone(),
            vllm_time: self.vllm_time.clone(),
            held: None,
        })
    }
}

pub(super) fn compile(_id: &str, c: &PythonConfig) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let from = super::field(
        "parse_from",
        c.parse_from.as_deref().unwrap_or("body"),
        &mut errors,
    );
    let layout = |layout: &str| TimeLayout::compile("body", None, layout, c.location.as_deref());
    let times = layout("%Y-%m-%d %H:%M:%S%.f").and_then(|a| Ok((a, layout("%m-%d %H:%M:%S")?)));
    let (asctime, vllm_time) = match times {
        Ok(times) => times,
        Err(problems) => {
            errors.extend(problems);
            return Err(errors);
        }
    };
    match from {
        Some(from) if errors.is_empty() => Ok(Box::new(Python {
            from,
            asctime,
            vllm_time,
            held: None,
        })),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_one, run};
    use super::*;
    use serde_json::json;

    fn python(lines: &[&str]) -> Vec<Entry> {
        let mut chain = compile_one(json!({"type": "python"})).expect("valid");
        run(&mut chain, lines)
    }

    #[test]
    fn the_formats_python_servers_print() {
        let out = python(&[
            "WARNING:root:disk almost full",
            "2024-12-01 10:00:00,250 - myapp.db - ERROR - connection lost",
            "INFO 12-01 10:00:00 [api_server.py:123] vLLM API server started",
            "(VllmWorker rank=0 pid=42) DEBUG 12-01 10:00:01 [worker.py:7] loaded",
            "INFO:     127.0.0.1:5000 - \"GET /health HTTP/1.1\" 200 OK",
            "CRITICAL: shutting down",
            "plain print output",
        ]);
        let levels: Vec<(i32, &str)> = out
            .iter()
            .map(|e| (e.severity_number, e.severity_text.as_str()))
            .collect();
        assert_eq!(
            levels,
            [
                (13, "WARNING"),
                (17, "ERROR"),
                (9, "INFO"),
                (5, "DEBUG"),
                (9, "INFO"),
                (21, "CRITICAL"),
                (0, "")
            ]
        );
        assert_eq!(out[0].scope_name, "root");
        assert_eq!(out[0].body, json!("disk almost full"));
        assert_eq!(out[1].scope_name, "myapp.db");
        assert_eq!(out[1].timestamp, Some(1_733_047_200_250_000_000));
        assert_eq!(out[2].attributes["code.file.path"], json!("api_server.py"));
        assert_eq!(out[2].attributes["code.line.number"], json!(123));
        assert_eq!(out[2].body, json!("vLLM API server started"));
        assert!(out[2].timestamp.is_some());
        assert_eq!(
            out[3].attributes["process.label"],
            json!("VllmWorker rank=0 pid=42")
        );
        assert_eq!(
            out[4].body,
            json!("127.0.0.1:5000 - \"GET /health HTTP/1.1\" 200 OK")
        );
        assert_eq!(out[6].body, json!("plain print output"));
    }

    #[test]
    fn a_logged_exception_is_one_record() {
        let out = python(&[
            "ERROR:app:request failed",
            "Traceback (most recent call last):",
            "  File \"app.py\", line 3, in handle",
            "    return 1 / 0",
            "ZeroDivisionError: division by zero",
            "INFO:app:next request",
        ]);
        assert_eq!(out.len(), 2, "{out:#?}");
        let record = &out[0];
        assert_eq!(record.body, json!("request failed"));
        assert_eq!(record.severity_number, 17);
        assert_eq!(
            record.attributes["exception.type"],
            json!("ZeroDivisionError")
        );
        assert_eq!(
            record.attributes["exception.message"],
            json!("division by zero")
        );
        let stack = record.attributes["exception.stacktrace"]
            .as_str()
            .expect("text");
        assert!(
            stack.starts_with(TRACEBACK) && stack.ends_with("division by zero"),
            "{stack}"
        );
        assert_eq!(
            record.end_offset, 5,
            "the record ends with the exception line"
        );
        assert_eq!(out[1].body, json!("next request"));
    }

    #[test]
    fn an_uncaught_exception_after_an_info_line_is_its_own_record() {
        let out = python(&[
            "INFO:app:step 4",
            TRACEBACK,
            "  File \"<string>\", line 8, in <module>",
            "RuntimeError: boom",
        ]);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert!(!out[0].attributes.contains_key("exception.type"));
        assert_eq!(out[1].severity_text, "ERROR");
        assert_eq!(out[1].attributes["exception.type"], json!("RuntimeError"));
    }

    #[test]
    fn a_bare_chained_traceback_is_one_error_record() {
        let out = python(&[
            TRACEBACK,
            "  File \"a.py\", line 1, in <module>",
            "KeyError: 'x'",
            "",
            CHAINED[0],
            "",
            TRACEBACK,
            "  File \"a.py\", line 3, in <module>",
            "app.errors.ConfigError: bad config",
            "",
            "after",
        ]);
        assert_eq!(out.len(), 3, "{out:#?}");
        assert_eq!(out[0].severity_text, "ERROR");
        assert_eq!(
            out[0].attributes["exception.type"],
            json!("app.errors.ConfigError")
        );
        assert_eq!(out[0].attributes["exception.message"], json!("bad config"));
        assert!(out[0].body.as_str().is_some_and(|b| b.contains("KeyError")));
        assert_eq!(out[1].body, json!(""), "the blank line after the traceback");
        assert_eq!(out[2].body, json!("after"));
    }

    #[test]
    fn trace_context_fills_the_ids() {
        let out = python(&[
            "2024-12-01 10:00:00,000 INFO [app] [main.py:9] [trace_id=0af7651916cd43dd8448eb211c80319c span_id=b7ad6b7169203331 resource.service.name=svc trace_sampled=True] - handled",
            "2024-12-01 10:00:00,000 INFO [app] [main.py:9] [trace_id=0 span_id=0 resource.service.name=svc trace_sampled=False] - no span",
        ]);
        assert_eq!(out[0].trace_id.len(), 16);
        assert_eq!(
            out[0].span_id,
            [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]
        );
        assert_eq!(out[0].body, json!("handled"));
        assert_eq!(out[0].scope_name, "app");
        assert!(out[1].trace_id.is_empty());
    }

    #[test]
    fn a_held_record_waits_for_the_next_line_or_a_flush() {
        let mut chain = compile_one(json!({"type": "python"})).expect("valid");
        let mut out = Vec::new();
        chain.process(Entry::line("INFO:a:first".into(), 0, 10), &mut out);
        assert!(out.is_empty(), "held: a traceback may follow");
        chain.process(Entry::line("  continued".into(), 10, 20), &mut out);
        chain.flush(&mut out);
        assert_eq!(out[0].body, json!("first\n  continued"));
        assert_eq!(out[0].end_offset, 20);
    }
}
