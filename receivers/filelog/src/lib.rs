//! otlake-receiver-filelog: the `filelog` receiver, tailing log files as the OpenTelemetry Collector's does,
//! with checkpoints that move only after delivery.
//!
//! The key design decision: a file's checkpoint is the start of its oldest batch not yet acknowledged by every
//! exporter (the ack verdict `Delivered`), never the offset read, and every batch is numbered and written down
//! (its file ranges) before it is sent. The Collector saves offsets as it reads, and loses what was read but not
//! delivered when it stops. Here a batch that is not delivered, or was in flight at a `kill -9`, is rebuilt from
//! its ranges and sent again under its own number: the Delta exporter records each source's numbers in its
//! commits and skips what it holds (exactly once into Delta; at least once through other exporters).
//!
//! Layout: [`config`] (YAML keys), [`receiver`] (the async loop: poll, send, verdicts, shutdown), [`tracker`]
//! (file identity by fingerprint, rotation, offsets, cut points and rebuilds), [`journal`] (the intents and
//! the receiver's identity), [`splitter`] (bytes → lines, size limit, multiline), [`operators`] (the stanza
//! operators and `python`), [`entry`] (an entry and field paths), [`batch`] (entries → an OTLP request in wire
//! form), [`encode`] (a log record's protobuf), [`checkpoint`] (the atomic checkpoint file), [`error`].

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod encode;
pub mod entry;
pub mod error;
pub mod journal;
pub mod operators;
pub mod process;
pub mod receiver;
pub mod splitter;
pub mod tracker;

use otlake_core::{ComponentId, ConfigError, Factory, Receiver, ReceiverFactory, Signal};
use serde_json::{Map, Value};

pub use config::FilelogConfig;
pub use error::FilelogError;
pub use process::ProcessReceiverFactory;
pub use receiver::FilelogReceiver;

use crate::splitter::{Multiline, SplitOptions};
use crate::tracker::Settings;

/// Builds `filelog` receivers.
pub struct FilelogReceiverFactory;

impl Factory for FilelogReceiverFactory {
    type Config = FilelogConfig;

    fn type_name(&self) -> &'static str {
        "filelog"
    }

    fn signals(&self) -> &'static [Signal] {
        &[Signal::Logs]
    }

    fn description(&self) -> &'static str {
        "Tails log files (rotation, multiline, operators); checkpoints move only after delivery"
    }

    fn validate(&self, config: &FilelogConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ReceiverFactory for FilelogReceiverFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: FilelogConfig,
    ) -> Result<Box<dyn Receiver>, ConfigError> {
        let settings = settings(&config)?;
        let storage = config.storage()?;
        Ok(Box::new(FilelogReceiver::new(config, settings, storage)))
    }
}

/// Compiles a validated config into what the tracker runs on (no I/O).
pub fn settings(config: &FilelogConfig) -> Result<Settings, ConfigError> {
    let first = |errors: Vec<ConfigError>| {
        errors
            .into_iter()
            .next()
            .unwrap_or_else(|| ConfigError::new("", "invalid configuration"))
    };
    let operators = operators::validate(&config.operators, config).map_err(first)?;
    let pattern = |key: &str, p: &str| {
        regex::Regex::new(p).map_err(|e| ConfigError::new(key, format!("not a regex: {e}")))
    };
    let multiline = match &config.multiline {
        Some(m) => match (&m.line_start_pattern, &m.line_end_pattern) {
            (Some(p), _) => Some(Multiline::Start(pattern(
                "multiline.line_start_pattern",
                p,
            )?)),
            (None, Some(p)) => Some(Multiline::End(pattern("multiline.line_end_pattern", p)?)),
            (None, None) => None,
        },
        None => None,
    };
    let exclude = config
        .exclude
        .iter()
        .map(|p| glob::Pattern::new(p).map_err(|e| ConfigError::new("exclude", e.to_string())))
        .collect::<Result<_, _>>()?;
    let strings = |map: &std::collections::BTreeMap<String, String>| -> Map<String, Value> {
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    };
    Ok(Settings {
        include: config.include.clone(),
        exclude,
        fingerprint_size: usize::try_from(config.fingerprint_size).unwrap_or(usize::MAX),
        start_at: config.start_at,
        max_concurrent_files: config.max_concurrent_files,
        split: SplitOptions {
            max_size: usize::try_from(config.max_log_size).unwrap_or(usize::MAX),
            multiline,
            preserve_leading: config.preserve_leading_whitespaces,
            // A CRI partial line's trailing spaces are part of the joined line: the container operator gets
            // its lines untrimmed whatever the setting says.
            preserve_trailing: config.preserve_trailing_whitespaces
                || config
                    .operators
                    .iter()
                    .any(|o| matches!(o, operators::OperatorConfig::Container(_))),
        },
        operators,
        force_flush: config.force_flush_period,
        file_name: config.include_file_name,
        file_path: config.include_file_path,
        file_name_resolved: config.include_file_name_resolved,
        file_path_resolved: config.include_file_path_resolved,
        attributes: strings(&config.attributes),
        resource: strings(&config.resource),
    })
}
