//! Checks a loaded [`Config`] against the [`Registry`] and reports every problem at once, each with its YAML
//! path and (where it can be found) its line. `otlake validate` prints these; `otlake run` refuses to start on
//! them with the same text. A config that passes comes back as [`Validated`]: every component's typed config,
//! which the runtime builds from without parsing anything again.

use std::collections::{BTreeMap, BTreeSet};

use otlake_core::{ComponentId, DynFactory, Signal, ValidatedConfig};
use otlake_wal::WalConfig;

use crate::config::{Config, PipelineId};
use crate::error::ValidationError;
use crate::registry::Registry;

#[derive(Clone, Copy)]
enum Kind {
    Receiver,
    Processor,
    Exporter,
}

impl Kind {
    fn section(self) -> &'static str {
        match self {
            Kind::Receiver => "receivers",
            Kind::Processor => "processors",
            Kind::Exporter => "exporters",
        }
    }
    fn singular(self) -> &'static str {
        match self {
            Kind::Receiver => "receiver",
            Kind::Processor => "processor",
            Kind::Exporter => "exporter",
        }
    }
}

/// Every component section of a valid config, parsed and checked by its factory, by YAML key.
#[derive(Debug, Default)]
pub struct Validated {
    pub(crate) receivers: BTreeMap<String, ValidatedConfig>,
    pub(crate) processors: BTreeMap<String, ValidatedConfig>,
    /// An exporter's own config, and the write-ahead log its `sending_queue` asks for (the service's stage).
    pub(crate) exporters: BTreeMap<String, (ValidatedConfig, Option<WalConfig>)>,
}

impl Registry {
    fn factory(&self, kind: Kind, type_name: &str) -> Option<&dyn DynFactory> {
        match kind {
            Kind::Receiver => self.receivers.get(type_name).map(|f| f.as_ref() as _),
            Kind::Processor => self.processors.get(type_name).map(|f| f.as_ref() as _),
            Kind::Exporter => self.exporters.get(type_name).map(|f| f.as_ref() as _),
        }
    }

    fn type_names(&self, kind: Kind) -> Vec<&'static str> {
        match kind {
            Kind::Receiver => self.receivers.keys().copied().collect(),
            Kind::Processor => self.processors.keys().copied().collect(),
            Kind::Exporter => self.exporters.keys().copied().collect(),
        }
    }
}

/// The typed configs of every component in `config`, or every problem that keeps it from running.
pub fn validate(config: &Config, registry: &Registry) -> Result<Validated, Vec<ValidationError>> {
    let mut validated = Validated::default();
    let mut errors = Vec::new();
    let mut push = |path: String, message: String| {
        let line = config.line_of(&path);
        errors.push(ValidationError {
            path,
            line,
            message,
        });
    };

    // Components: known type, valid id, valid config.
    let sections = [
        (Kind::Receiver, &config.receivers),
        (Kind::Processor, &config.processors),
        (Kind::Exporter, &config.exporters),
    ];
    for (kind, section) in sections {
        for (key, value) in section {
            let path = format!("{}.{key}", kind.section());
            let id: ComponentId = match key.parse() {
                Ok(id) => id,
                Err(message) => {
                    push(path, message);
                    continue;
                }
            };
            let Some(factory) = registry.factory(kind, &id.type_name) else {
                push(
                    path,
                    format!(
                        "unknown {} type `{}` (known: {})",
                        kind.singular(),
                        id.type_name,
                        registry.type_names(kind).join(", ")
                    ),
                );
                continue;
            };
            // Exporters: a write-ahead log in `sending_queue` is the service's stage, validated here; the
            // exporter sees the rest of its section.
            let (section, wal) = match kind {
                Kind::Exporter => match otlake_wal::split_exporter_config(value) {
                    Ok(split) => split,
                    Err(problems) => {
                        for problem in problems {
                            let problem = problem.under(&path);
                            push(problem.path, problem.message);
                        }
                        continue;
                    }
                },
                _ => (value.clone(), None),
            };
            match factory.validate(&section) {
                Ok(typed) => {
                    let key = key.clone();
                    match kind {
                        Kind::Receiver => {
                            validated.receivers.insert(key, typed);
                        }
                        Kind::Processor => {
                            validated.processors.insert(key, typed);
                        }
                        Kind::Exporter => {
                            validated.exporters.insert(key, (typed, wal));
                        }
                    }
                }
                Err(problems) => {
                    for problem in problems {
                        let problem = problem.under(&path);
                        push(problem.path, problem.message);
                    }
                }
            }
        }
    }

    // Pipelines: valid id, not empty, every name defined, every component supports the signal.
    if config.service.pipelines.is_empty() {
        push(
            "service.pipelines".into(),
            "no pipelines: add at least one, e.g. `traces: {receivers: [otlp], exporters: [debug]}`".into(),
        );
    }
    for (key, pipeline) in &config.service.pipelines {
        let path = format!("service.pipelines.{key}");
        let pipeline_id: PipelineId = match key.parse() {
            Ok(id) => id,
            Err(message) => {
                push(path, message);
                continue;
            }
        };
        if pipeline.receivers.is_empty() {
            push(path.clone(), "pipeline has no receivers".into());
        }
        if pipeline.exporters.is_empty() {
            push(path.clone(), "pipeline has no exporters".into());
        }
        let lists = [
            (
                Kind::Receiver,
                "receivers",
                &pipeline.receivers,
                &config.receivers,
            ),
            (
                Kind::Processor,
                "processors",
                &pipeline.processors,
                &config.processors,
            ),
            (
                Kind::Exporter,
                "exporters",
                &pipeline.exporters,
                &config.exporters,
            ),
        ];
        for (kind, field, names, defined) in lists {
            let mut seen = BTreeSet::new();
            for name in names.iter() {
                let at = format!("{path}.{field}");
                if !seen.insert(name) {
                    push(at, format!("`{name}` is listed twice"));
                    continue;
                }
                if !defined.contains_key(name) {
                    push(
                        at,
                        format!(
                            "{} `{name}` is not defined in `{}:`",
                            kind.singular(),
                            kind.section()
                        ),
                    );
                    continue;
                }
                let Ok(id) = name.parse::<ComponentId>() else {
                    continue; // reported with the component
                };
                if let Some(factory) = registry.factory(kind, &id.type_name)
                    && !factory.signals().contains(&pipeline_id.signal)
                {
                    push(
                        at,
                        format!(
                            "{} `{name}` does not support {} (it supports {})",
                            kind.singular(),
                            pipeline_id.signal,
                            join(factory.signals())
                        ),
                    );
                }
            }
        }
    }

    // Two receivers (or a receiver and the daemon's own endpoints) on one address.
    let mut listeners: BTreeMap<String, String> = BTreeMap::new();
    let mut claim = |address: String, owner: String, push: &mut dyn FnMut(String, String)| {
        let key = normalise(&address);
        match listeners.get(&key) {
            Some(first) => push(
                owner.clone(),
                format!(
                    "{owner} and {first} both listen on {address}: give one of them another port"
                ),
            ),
            None => {
                listeners.insert(key, owner);
            }
        }
    };
    for (key, typed) in &validated.receivers {
        let Ok(id) = key.parse::<ComponentId>() else {
            continue;
        };
        if let Some(factory) = registry.receivers.get(id.type_name.as_str()) {
            for address in factory.listen_addresses(typed) {
                claim(address, format!("receivers.{key}"), &mut push);
            }
        }
    }
    if let Some(address) = config.metrics_address() {
        claim(
            address,
            "service.telemetry.metrics.address".into(),
            &mut push,
        );
    }
    if let Some(address) = config.health_endpoint() {
        claim(
            address,
            "service.telemetry.health.endpoint".into(),
            &mut push,
        );
    }
    if errors.is_empty() {
        Ok(validated)
    } else {
        Err(errors)
    }
}

fn join(signals: &[Signal]) -> String {
    signals
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `localhost:4317` and `127.0.0.1:4317` are one listener; port 0 is never a conflict.
fn normalise(address: &str) -> String {
    let address = address.trim();
    if address.ends_with(":0") {
        return format!("{address}#{}", uniq());
    }
    address.replace("localhost", "127.0.0.1")
}

fn uniq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
