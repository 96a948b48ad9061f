//! What a configuration reload changes: a diff of two configs by component id and effective configuration.
//!
//! A component's *effective configuration* is its YAML section after `${env:}` substitution (the parsed value,
//! so key order and formatting do not count) plus what its wiring gives it:
//! - an exporter: its section (with `sending_queue`, so a changed write-ahead log restarts it) and the signals
//!   of the pipelines that use it;
//! - a pipeline: its processors in order with their sections, and its exporters in order; a pipeline also
//!   restarts when one of its exporters is added or restarted (it must feed the new one);
//! - a receiver: its section and the pipelines it feeds, per signal.
//!
//! Each component is then *kept* (runs on untouched), *restarted* (the old one drains, then its replacement
//! starts), *removed* (drains and stops) or *added*. A receiver whose section is unchanged but whose pipelines
//! changed is *rewired*: it keeps running (its listeners and connections stay) and its fan-outs are re-pointed
//! at the new pipelines. Components no pipeline uses are never built, so they do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use otlake_core::Signal;
use serde_json::Value;

use crate::config::{Config, PipelineId};

/// What happens to each component of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changes<K: Ord> {
    pub added: BTreeSet<K>,
    pub removed: BTreeSet<K>,
    pub restarted: BTreeSet<K>,
    /// Runs on with other targets (receivers only: the same section, other pipelines).
    pub rewired: BTreeSet<K>,
    pub kept: BTreeSet<K>,
}

impl<K: Ord> Default for Changes<K> {
    fn default() -> Self {
        Changes {
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
            restarted: BTreeSet::new(),
            rewired: BTreeSet::new(),
            kept: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone> Changes<K> {
    fn between<V: PartialEq>(old: &BTreeMap<K, V>, new: &BTreeMap<K, V>) -> Self {
        let mut changes = Changes::default();
        for (key, value) in new {
            match old.get(key) {
                None => changes.added.insert(key.clone()),
                Some(before) if before == value => changes.kept.insert(key.clone()),
                Some(_) => changes.restarted.insert(key.clone()),
            };
        }
        changes.removed = old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        changes
    }

    /// Built anew: added or restarted.
    pub fn starting(&self) -> impl Iterator<Item = &K> {
        self.added.iter().chain(&self.restarted)
    }

    /// Drained and stopped: removed or restarted.
    pub fn stopping(&self) -> impl Iterator<Item = &K> {
        self.removed.iter().chain(&self.restarted)
    }
}

/// What one reload does, per kind of component.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    pub receivers: Changes<String>,
    pub pipelines: Changes<PipelineId>,
    pub exporters: Changes<String>,
}

impl Plan {
    /// The plan that starts `config` from nothing.
    pub fn start(config: &Config) -> Plan {
        Plan::between(None, config)
    }

    /// The plan that turns the running `old` into `new`.
    pub fn between(old: Option<&Config>, new: &Config) -> Plan {
        let old_exporters = old.map(exporters).unwrap_or_default();
        let exporter_changes = Changes::between(&old_exporters, &exporters(new));
        let mut pipeline_changes =
            Changes::between(&old.map(pipelines).unwrap_or_default(), &pipelines(new));
        // A kept pipeline whose exporter is rebuilt must feed the new one.
        let rebuilt_exporters: BTreeSet<&String> = exporter_changes.starting().collect();
        let follow: Vec<PipelineId> = pipeline_changes
            .kept
            .iter()
            .filter(|pid| {
                new.pipelines().any(|(id, p)| {
                    &id == *pid && p.exporters.iter().any(|e| rebuilt_exporters.contains(e))
                })
            })
            .cloned()
            .collect();
        for pid in follow {
            pipeline_changes.kept.remove(&pid);
            pipeline_changes.restarted.insert(pid);
        }
        let old_receivers = old.map(receivers).unwrap_or_default();
        let new_receivers = receivers(new);
        let mut receiver_changes = Changes::between(&old_receivers, &new_receivers);
        // Same section (so the same listeners), other pipelines: re-pointed, not restarted.
        let rewired: Vec<String> = receiver_changes
            .restarted
            .iter()
            .filter(|key| old_receivers[*key].0 == new_receivers[*key].0)
            .cloned()
            .collect();
        for key in rewired {
            receiver_changes.restarted.remove(&key);
            receiver_changes.rewired.insert(key);
        }
        Plan {
            receivers: receiver_changes,
            pipelines: pipeline_changes,
            exporters: exporter_changes,
        }
    }
}

/// Exporters some pipeline uses: section, and the signals they are built for.
fn exporters(config: &Config) -> BTreeMap<String, (Value, BTreeSet<Signal>)> {
    let mut used: BTreeMap<String, (Value, BTreeSet<Signal>)> = BTreeMap::new();
    for (pid, p) in config.pipelines() {
        for key in &p.exporters {
            let section = config.exporters.get(key).cloned().unwrap_or_default();
            used.entry(key.clone())
                .or_insert_with(|| (section, BTreeSet::new()))
                .1
                .insert(pid.signal);
        }
    }
    used
}

/// Pipelines: their processors with sections, in order, and their exporters, in order.
type PipelineShape = (Vec<(String, Value)>, Vec<String>);

fn pipelines(config: &Config) -> BTreeMap<PipelineId, PipelineShape> {
    config
        .pipelines()
        .map(|(pid, p)| {
            let processors = p
                .processors
                .iter()
                .map(|key| {
                    let section = config.processors.get(key).cloned().unwrap_or_default();
                    (key.clone(), section)
                })
                .collect();
            (pid, (processors, p.exporters.clone()))
        })
        .collect()
}

/// Receivers some pipeline uses: section, and the pipelines they feed per signal.
type ReceiverShape = (Value, BTreeMap<Signal, BTreeSet<PipelineId>>);

fn receivers(config: &Config) -> BTreeMap<String, ReceiverShape> {
    let mut used: BTreeMap<String, ReceiverShape> = BTreeMap::new();
    for (pid, p) in config.pipelines() {
        for key in &p.receivers {
            let section = config.receivers.get(key).cloned().unwrap_or_default();
            used.entry(key.clone())
                .or_insert_with(|| (section, BTreeMap::new()))
                .1
                .entry(pid.signal)
                .or_default()
                .insert(pid.clone());
        }
    }
    used
}

/// One line for the log: `added=[exporter/file] removed=[] restarted=[pipeline/traces] rewired=[] kept=[receiver/otlp]`.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |pick: fn(&Changes<String>) -> &BTreeSet<String>,
                    pick_p: fn(&Changes<PipelineId>) -> &BTreeSet<PipelineId>| {
            let mut names: Vec<String> = Vec::new();
            names.extend(
                pick(&self.receivers)
                    .iter()
                    .map(|k| format!("receiver/{k}")),
            );
            names.extend(
                pick_p(&self.pipelines)
                    .iter()
                    .map(|k| format!("pipeline/{k}")),
            );
            names.extend(
                pick(&self.exporters)
                    .iter()
                    .map(|k| format!("exporter/{k}")),
            );
            names.join(" ")
        };
        write!(
            f,
            "added=[{}] removed=[{}] restarted=[{}] rewired=[{}] kept=[{}]",
            list(|c| &c.added, |c| &c.added),
            list(|c| &c.removed, |c| &c.removed),
            list(|c| &c.restarted, |c| &c.restarted),
            list(|c| &c.rewired, |c| &c.rewired),
            list(|c| &c.kept, |c| &c.kept),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "receivers:\n  otlp:\n    protocols: {grpc: {endpoint: 127.0.0.1:4317}}\nprocessors:\n  batch: {timeout: 1s}\nexporters:\n  delta: {location: ./data}\n  debug: {}\nservice:\n  pipelines:\n    traces: {receivers: [otlp], processors: [batch], exporters: [delta]}\n    logs: {receivers: [otlp], exporters: [delta]}\n";

    fn plan(old: &str, new: &str) -> Plan {
        let old = Config::parse(old).expect("old parses");
        let new = Config::parse(new).expect("new parses");
        Plan::between(Some(&old), &new)
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn pids(names: &[&str]) -> BTreeSet<PipelineId> {
        names
            .iter()
            .map(|s| s.parse().expect("pipeline id"))
            .collect()
    }

    #[test]
    fn the_same_config_keeps_everything() {
        let p = plan(BASE, BASE);
        assert_eq!(p.receivers.kept, set(&["otlp"]));
        assert_eq!(p.pipelines.kept, pids(&["traces", "logs"]));
        assert_eq!(p.exporters.kept, set(&["delta"]));
        assert_eq!(
            p.to_string(),
            "added=[] removed=[] restarted=[] rewired=[] kept=[receiver/otlp pipeline/traces pipeline/logs exporter/delta]"
        );
    }

    #[test]
    fn formatting_and_key_order_are_not_changes() {
        let reordered = BASE.replace(
            "delta: {location: ./data}\n  debug: {}",
            "debug: {}\n  delta:\n    location: ./data",
        );
        assert_eq!(plan(BASE, &reordered), plan(BASE, BASE));
    }

    #[test]
    fn a_changed_processor_restarts_only_the_pipelines_that_use_it() {
        let p = plan(BASE, &BASE.replace("timeout: 1s", "timeout: 2s"));
        assert_eq!(p.pipelines.restarted, pids(&["traces"]));
        assert_eq!(p.pipelines.kept, pids(&["logs"]));
        assert_eq!(p.receivers.kept, set(&["otlp"]));
        assert_eq!(p.exporters.kept, set(&["delta"]));
    }

    #[test]
    fn an_added_exporter_restarts_the_pipeline_that_feeds_it_and_keeps_the_rest() {
        let p = plan(
            BASE,
            &BASE.replace(
                "exporters: [delta]}\n    logs",
                "exporters: [delta, debug]}\n    logs",
            ),
        );
        assert_eq!(p.exporters.added, set(&["debug"]));
        assert_eq!(p.exporters.kept, set(&["delta"]));
        assert_eq!(p.pipelines.restarted, pids(&["traces"]));
        assert_eq!(p.pipelines.kept, pids(&["logs"]));
        assert_eq!(p.receivers.kept, set(&["otlp"]));
    }

    #[test]
    fn a_changed_exporter_restarts_every_pipeline_that_feeds_it() {
        let p = plan(BASE, &BASE.replace("./data", "./other"));
        assert_eq!(p.exporters.restarted, set(&["delta"]));
        assert_eq!(p.pipelines.restarted, pids(&["traces", "logs"]));
        assert_eq!(p.receivers.kept, set(&["otlp"]));
    }

    #[test]
    fn a_changed_endpoint_restarts_the_receiver_only() {
        let p = plan(BASE, &BASE.replace("4317", "4327"));
        assert_eq!(p.receivers.restarted, set(&["otlp"]));
        assert_eq!(p.pipelines.kept, pids(&["traces", "logs"]));
        assert_eq!(p.exporters.kept, set(&["delta"]));
    }

    #[test]
    fn a_removed_pipeline_rewires_its_receiver_and_drops_an_exporter_nothing_else_uses() {
        let p = plan(
            BASE,
            &BASE
                .replace("    logs: {receivers: [otlp], exporters: [delta]}\n", "")
                .replace("exporters: [delta]}", "exporters: [debug]}"),
        );
        assert_eq!(p.pipelines.removed, pids(&["logs"]));
        assert_eq!(p.pipelines.restarted, pids(&["traces"]));
        assert_eq!(p.exporters.removed, set(&["delta"]));
        assert_eq!(p.exporters.added, set(&["debug"]));
        assert_eq!(
            p.receivers.rewired,
            set(&["otlp"]),
            "it feeds fewer pipelines"
        );
    }

    #[test]
    fn a_receiver_that_feeds_one_more_pipeline_is_rewired_and_keeps_its_socket() {
        let p = plan(
            BASE,
            &BASE.replace(
                "    logs: {",
                "    traces/second: {receivers: [otlp], exporters: [debug]}\n    logs: {",
            ),
        );
        assert_eq!(p.receivers.rewired, set(&["otlp"]));
        assert!(p.receivers.restarted.is_empty(), "{p:?}");
        assert_eq!(p.pipelines.added, pids(&["traces/second"]));
        assert_eq!(p.pipelines.kept, pids(&["traces", "logs"]));
        assert_eq!(
            p.to_string(),
            "added=[pipeline/traces/second exporter/debug] removed=[] restarted=[] rewired=[receiver/otlp] kept=[pipeline/traces pipeline/logs exporter/delta]"
        );
        // A signal that gains its first pipeline from the receiver is a rewiring too.
        let p = plan(
            &BASE.replace("    logs: {receivers: [otlp], exporters: [delta]}\n", ""),
            BASE,
        );
        assert_eq!(p.receivers.rewired, set(&["otlp"]));
        // Other pipelines and another section: the receiver restarts (it binds its new endpoint).
        let p = plan(
            BASE,
            &BASE
                .replace("4317", "4327")
                .replace("    logs: {receivers: [otlp], exporters: [delta]}\n", ""),
        );
        assert_eq!(p.receivers.restarted, set(&["otlp"]));
        assert!(p.receivers.rewired.is_empty());
    }

    #[test]
    fn starting_adds_everything_a_pipeline_uses() {
        let p = Plan::start(&Config::parse(BASE).expect("parses"));
        assert_eq!(p.receivers.added, set(&["otlp"]));
        assert_eq!(p.exporters.added, set(&["delta"]), "debug is unused");
        assert_eq!(p.pipelines.added, pids(&["traces", "logs"]));
    }
}
