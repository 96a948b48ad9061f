//! Operators: the Collector's stanza operators that shape an [`Entry`] after it leaves its file.
//!
//! Each `operators:` item has a `type` and that type's keys (the Collector's); an unknown type or key is a
//! `validate` error that names the known ones. Validation compiles every operator once ([`compile`]); each
//! file then gets a [`Chain`] of fresh instances ([`Operator::fresh`]), since two operators keep state per
//! file: `container` (partial lines waiting for their last part) and `python` (a record waiting to see whether
//! a traceback follows). An operator that holds entries gives them up on [`Chain::flush`] (the receiver calls it
//! after `force_flush_period` without new data) and says where the oldest begins ([`Chain::holds_from`]): a
//! batch of a file may end only where nothing held began earlier, so a fresh chain reading the batch's range
//! again rebuilds the same entries.
//!
//! Entries move through the list in order; an operator's `output` may skip ahead to a later operator's `id`
//! (never back: the graph stays acyclic and the order of a file's entries is kept).

mod container;
mod parsers;
mod python;
mod severity;
mod time;
mod transform;

use std::collections::HashMap;

use otlake_core::ConfigError;
use serde::Deserialize;

use crate::config::FilelogConfig;
use crate::entry::Entry;

pub use container::ContainerConfig;
pub use parsers::ParserConfig;
pub use python::PythonConfig;
pub use severity::SeverityConfig;
pub use time::TimeConfig;
pub use transform::{AddConfig, MoveConfig, RemoveConfig};

/// One `operators:` item.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OperatorConfig {
    /// Parses a JSON object string into a map.
    JsonParser(ParserConfig),
    /// Parses a string with a regex's named captures into a map.
    RegexParser(ParserConfig),
    /// Sets the severity from a field.
    SeverityParser(severity::SeverityParserConfig),
    /// Sets the timestamp from a field.
    TimeParser(time::TimeParserConfig),
    /// Moves a field.
    Move(MoveConfig),
    /// Copies a field.
    Copy(MoveConfig),
    /// Removes a field.
    Remove(RemoveConfig),
    /// Adds a field with a constant value.
    Add(AddConfig),
    /// Parses docker JSON and CRI-O/containerd lines, joins partial lines, reads Kubernetes names from the path.
    Container(ContainerConfig),
    /// Parses what Python servers print (logging, uvicorn, vLLM) and joins tracebacks into one record.
    Python(PythonConfig),
}

/// The operator type names, for messages.
pub const TYPES: &[&str] = &[
    "json_parser",
    "regex_parser",
    "severity_parser",
    "time_parser",
    "move",
    "copy",
    "remove",
    "add",
    "container",
    "python",
];

/// What `on_error` says to do with an entry an operator cannot process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Pass it on unchanged and log the error (default).
    #[default]
    Send,
    /// Pass it on unchanged, logging at debug level only.
    SendQuiet,
    /// Drop it (on purpose: it counts as delivered) and log the error.
    Drop,
    /// Drop it quietly.
    DropQuiet,
}

impl OnError {
    /// Applies the policy to an entry `op` could not process.
    pub fn handle(self, op: &str, error: &str, entry: Entry, out: &mut Vec<Entry>) {
        match self {
            OnError::Send => {
                tracing::warn!(
                    operator = op,
                    error,
                    "Operator failed; the entry goes on unchanged."
                );
                out.push(entry);
            }
            OnError::SendQuiet => {
                tracing::debug!(
                    operator = op,
                    error,
                    "Operator failed; the entry goes on unchanged."
                );
                out.push(entry);
            }
            OnError::Drop => {
                tracing::warn!(
                    operator = op,
                    error,
                    "Operator failed; the entry is dropped (on_error: drop)."
                );
            }
            OnError::DropQuiet => {}
        }
    }
}

/// One operator instance, owned by one file's chain.
pub trait Operator: Send {
    /// Takes one entry and pushes zero or more to `out`.
    fn process(&mut self, entry: Entry, out: &mut Vec<Entry>);
    /// Pushes out the entries it holds (waiting for a continuation that has not come). What it pushes must be
    /// what it would push if the next entry turned out not to continue them (a rebuild relies on it).
    fn flush(&mut self, _out: &mut Vec<Entry>) {}
    /// The lowest start offset of what it holds, if it holds anything.
    fn holds_from(&self) -> Option<u64> {
        None
    }
    /// A new instance with the same configuration and no state (for another file, or after a rewind).
    fn fresh(&self) -> Box<dyn Operator>;
}

/// Something that sets part of an entry from one of its fields (a severity mapping, a time layout).
pub(crate) trait Apply: Clone + Send + 'static {
    fn apply(&self, entry: &mut Entry) -> Result<(), String>;
}

/// An operator that applies one [`Apply`], following `on_error` when it fails.
#[derive(Clone)]
pub(crate) struct Applying<T> {
    pub id: String,
    pub inner: T,
    pub on_error: OnError,
}

impl<T: Apply> Operator for Applying<T> {
    fn process(&mut self, mut entry: Entry, out: &mut Vec<Entry>) {
        match self.inner.apply(&mut entry) {
            Ok(()) => out.push(entry),
            Err(e) => self.on_error.handle(&self.id, &e, entry, out),
        }
    }

    fn fresh(&self) -> Box<dyn Operator> {
        Box::new(self.clone())
    }
}

/// The compiled operators of a receiver: what each file's [`Chain`] is instantiated from.
pub struct Compiled {
    operators: Vec<Box<dyn Operator>>,
    /// For each operator, the index its output goes to (`len` = out of the chain).
    next: Vec<usize>,
}

impl Compiled {
    /// A chain of fresh instances.
    pub fn chain(&self) -> Chain {
        Chain {
            operators: self.operators.iter().map(|o| o.fresh()).collect(),
            next: self.next.clone(),
            buffers: self.operators.iter().map(|_| Vec::new()).collect(),
        }
    }
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Compiled({} operators)", self.operators.len())
    }
}

/// One file's operators.
pub struct Chain {
    operators: Vec<Box<dyn Operator>>,
    next: Vec<usize>,
    buffers: Vec<Vec<Entry>>,
}

impl Chain {
    /// Runs `entry` through the chain; finished entries go to `out`, in order.
    pub fn process(&mut self, entry: Entry, out: &mut Vec<Entry>) {
        self.push(0, entry, out);
    }

    /// The lowest start offset of anything an operator of the chain holds.
    pub fn holds_from(&self) -> Option<u64> {
        self.operators.iter().filter_map(|o| o.holds_from()).min()
    }

    /// Gives up every held entry, running each through the operators after the one that held it.
    pub fn flush(&mut self, out: &mut Vec<Entry>) {
        for i in 0..self.operators.len() {
            let mut buffer = std::mem::take(&mut self.buffers[i]);
            self.operators[i].flush(&mut buffer);
            let next = self.next[i];
            for entry in buffer.drain(..) {
                self.push(next, entry, out);
            }
            self.buffers[i] = buffer;
        }
    }

    fn push(&mut self, index: usize, entry: Entry, out: &mut Vec<Entry>) {
        if index >= self.operators.len() {
            out.push(entry);
            return;
        }
        // Each level reuses its buffer, so an entry costs no allocation per operator.
        let mut buffer = std::mem::take(&mut self.buffers[index]);
        self.operators[index].process(entry, &mut buffer);
        let next = self.next[index];
        for produced in buffer.drain(..) {
            self.push(next, produced, out);
        }
        self.buffers[index] = buffer;
    }
}

/// Checks and compiles the operators: every problem, each under `operators.<i>`.
pub fn validate(
    configs: &[OperatorConfig],
    receiver: &FilelogConfig,
) -> Result<Compiled, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut operators = Vec::new();
    let ids: Vec<String> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            c.id()
                .map_or_else(|| format!("{}#{i}", c.type_name()), str::to_owned)
        })
        .collect();
    let mut positions = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        if positions.insert(id.as_str(), i).is_some() {
            errors.push(ConfigError::new(
                format!("operators.{i}.id"),
                format!("`{id}` is used by an earlier operator"),
            ));
        }
    }
    let mut next = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        next.push(match config.output() {
            None => i + 1,
            Some(target) => match positions.get(target) {
                Some(&j) if j > i => j,
                Some(_) => {
                    errors.push(ConfigError::new(
                        format!("operators.{i}.output"),
                        format!("`{target}` comes before this operator: outputs only go forward"),
                    ));
                    i + 1
                }
                None => {
                    errors.push(ConfigError::new(
                        format!("operators.{i}.output"),
                        format!(
                            "no operator has the id `{target}` (known: {})",
                            ids.join(", ")
                        ),
                    ));
                    i + 1
                }
            },
        });
        match config.compile(&ids[i], receiver) {
            Ok(op) => operators.push(op),
            Err(problems) => errors.extend(
                problems
                    .into_iter()
                    .map(|e| e.under(&format!("operators.{i}"))),
            ),
        }
    }
    if errors.is_empty() {
        Ok(Compiled { operators, next })
    } else {
        Err(errors)
    }
}

impl OperatorConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            OperatorConfig::JsonParser(_) => "json_parser",
            OperatorConfig::RegexParser(_) => "regex_parser",
            OperatorConfig::SeverityParser(_) => "severity_parser",
            OperatorConfig::TimeParser(_) => "time_parser",
            OperatorConfig::Move(_) => "move",
            OperatorConfig::Copy(_) => "copy",
            OperatorConfig::Remove(_) => "remove",
            OperatorConfig::Add(_) => "add",
            OperatorConfig::Container(_) => "container",
            OperatorConfig::Python(_) => "python",
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            OperatorConfig::JsonParser(c) | OperatorConfig::RegexParser(c) => c.id.as_deref(),
            OperatorConfig::SeverityParser(c) => c.id.as_deref(),
            OperatorConfig::TimeParser(c) => c.id.as_deref(),
            OperatorConfig::Move(c) | OperatorConfig::Copy(c) => c.id.as_deref(),
            OperatorConfig::Remove(c) => c.id.as_deref(),
            OperatorConfig::Add(c) => c.id.as_deref(),
            OperatorConfig::Container(c) => c.id.as_deref(),
            OperatorConfig::Python(c) => c.id.as_deref(),
        }
    }

    fn output(&self) -> Option<&str> {
        match self {
            OperatorConfig::JsonParser(c) | OperatorConfig::RegexParser(c) => c.output.as_deref(),
            OperatorConfig::SeverityParser(c) => c.output.as_deref(),
            OperatorConfig::TimeParser(c) => c.output.as_deref(),
            OperatorConfig::Move(c) | OperatorConfig::Copy(c) => c.output.as_deref(),
            OperatorConfig::Remove(c) => c.output.as_deref(),
            OperatorConfig::Add(c) => c.output.as_deref(),
            OperatorConfig::Container(c) => c.output.as_deref(),
            OperatorConfig::Python(c) => c.output.as_deref(),
        }
    }

    fn compile(
        &self,
        id: &str,
        receiver: &FilelogConfig,
    ) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
        match self {
            OperatorConfig::JsonParser(c) => parsers::json(id, c),
            OperatorConfig::RegexParser(c) => parsers::regex(id, c),
            OperatorConfig::SeverityParser(c) => severity::compile_operator(id, c),
            OperatorConfig::TimeParser(c) => time::compile_operator(id, c),
            OperatorConfig::Move(c) => transform::moving(c, false),
            OperatorConfig::Copy(c) => transform::moving(c, true),
            OperatorConfig::Remove(c) => transform::remove(c),
            OperatorConfig::Add(c) => transform::add(c),
            OperatorConfig::Container(c) => container::compile(id, c, receiver),
            OperatorConfig::Python(c) => python::compile(id, c),
        }
    }
}

/// Parses a field key, as a config error at `key` if it is not one.
pub(crate) fn field(
    key: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<crate::entry::Field> {
    crate::entry::Field::parse(text)
        .map_err(|message| errors.push(ConfigError::new(key, message)))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn compile_one(op: serde_json::Value) -> Result<Chain, Vec<ConfigError>> {
        let config: FilelogConfig = otlake_core::parse_config(&json!({
            "include": ["/x"], "operators": [op]
        }))
        .map_err(|e| vec![e])?;
        validate(&config.operators, &config).map(|c| c.chain())
    }

    pub(crate) fn run(chain: &mut Chain, lines: &[&str]) -> Vec<Entry> {
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            chain.process(
                Entry::line((*line).to_owned(), i as u64, i as u64 + 1),
                &mut out,
            );
        }
        chain.flush(&mut out);
        out
    }

    #[test]
    fn outputs_skip_ahead_but_never_back() {
        let config: FilelogConfig = otlake_core::parse_config(&json!({
            "include": ["/x"],
            "operators": [
                {"type": "add", "id": "a", "field": "attributes.a", "value": "1", "output": "c"},
                {"type": "add", "id": "b", "field": "attributes.b", "value": "2"},
                {"type": "add", "id": "c", "field": "attributes.c", "value": "3"}
            ]
        }))
        .expect("parses");
        let mut chain = validate(&config.operators, &config).expect("valid").chain();
        let out = run(&mut chain, &["line"]);
        assert_eq!(out[0].attributes.get("a"), Some(&json!("1")));
        assert_eq!(out[0].attributes.get("b"), None, "skipped");
        assert_eq!(out[0].attributes.get("c"), Some(&json!("3")));

        let config: FilelogConfig = otlake_core::parse_config(&json!({
            "include": ["/x"],
            "operators": [
                {"type": "add", "id": "a", "field": "attributes.a", "value": "1"},
                {"type": "add", "id": "b", "field": "attributes.b", "value": "2", "output": "a"},
                {"type": "add", "field": "attributes.c", "value": "3", "output": "nowhere"}
            ]
        }))
        .expect("parses");
        let errors = validate(&config.operators, &config).expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["operators.1.output", "operators.2.output"]);
    }
}
