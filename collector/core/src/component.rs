//! The plugin API: component ids and the three object-safe component traits (their factories: [`crate::factory`]).
//!
//! Lifecycle, as in the OpenTelemetry Collector: a factory's `validate` is pure (no I/O), `build` does no I/O,
//! and I/O starts in `run`. A built component that is dropped without running must clean up nothing.
//! - A [`Receiver`] runs until its shutdown token fires, then stops accepting, answers what is in flight and
//!   returns; dropping its [`Fanout`]s is what lets the pipelines drain. A receiver that owns the daemon's
//!   lifetime (`process`) may end it instead, through its context's [`StopHandle`].
//! - A [`Processor`] is synchronous and owned by one pipeline task, which also owns its timers: the task calls
//!   `on_tick` at `next_deadline`, `on_idle` (if it `wants_idle`) when its input runs dry, and `flush` when the
//!   input closes. Processors never spawn tasks.
//! - An [`Exporter`] runs until its input closes (every pipeline feeding it has drained), then makes what it
//!   holds durable, resolves the acknowledgements and returns.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{Batch, BatchReceiver, Fanout, Result, Signal, StopHandle};

/// `type[/name]`: the YAML key of a component, e.g. `otlp` or `delta/spans`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentId {
    /// The component type (`delta`), which names its factory; the Collector's "type".
    pub type_name: String,
    /// The optional instance name after the slash (`spans`).
    pub name: Option<String>,
}

impl ComponentId {
    pub fn new(type_name: impl Into<String>) -> Self {
        ComponentId {
            type_name: type_name.into(),
            name: None,
        }
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{}/{}", self.type_name, name),
            None => f.write_str(&self.type_name),
        }
    }
}

impl FromStr for ComponentId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (type_name, name) = match s.split_once('/') {
            Some((type_name, name)) => (type_name, Some(name)),
            None => (s, None),
        };
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if !valid(type_name) || name.is_some_and(|n| !valid(n)) {
            return Err(format!(
                "invalid component id `{s}`: expected `type` or `type/name` (letters, digits, `_`, `-`, `.`)"
            ));
        }
        Ok(ComponentId {
            type_name: type_name.to_owned(),
            name: name.map(str::to_owned),
        })
    }
}

/// What a receiver is given to run: where each signal's data goes, and when to stop.
pub struct ReceiverContext {
    pub id: ComponentId,
    /// One [`Fanout`] per signal the receiver's type supports, into the pipelines that take that signal from it.
    /// A reload may re-point them while the receiver runs (pipelines added or removed); one with no target
    /// ([`Fanout::is_empty`]) means no pipeline takes that signal from this receiver now.
    pub outputs: HashMap<Signal, Fanout>,
    /// Fires when the daemon shuts down: stop accepting, finish what is in flight, return.
    pub shutdown: CancellationToken,
    /// Ends the daemon from inside, with an exit code (`otlake run -- CMD` ends with its child). Most
    /// receivers never use it.
    pub stop: StopHandle,
}

/// What an exporter is given to run.
pub struct ExporterContext {
    pub id: ComponentId,
}

/// Resolves once a receiver is ready for clients, with the addresses it listens on (name → address, e.g.
/// `grpc` → `127.0.0.1:4317`); `None` if it stopped (or failed to bind) first.
pub type Startup = std::pin::Pin<
    Box<dyn std::future::Future<Output = Option<Vec<(String, std::net::SocketAddr)>>> + Send>,
>;

/// Receives data from outside (a listener, a file tail, ...).
#[async_trait]
pub trait Receiver: Send {
    /// Taken before `run`: what the daemon waits for before it reports itself ready (health 200). A receiver
    /// that binds listeners returns a future resolving once they are bound; one with nothing to prepare
    /// (a file tail, a scraper) keeps the default.
    fn startup(&self) -> Option<Startup> {
        None
    }

    async fn run(self: Box<Self>, cx: ReceiverContext) -> Result<()>;
}

/// Transforms batches inside one pipeline. See the module docs for who calls what, and when.
pub trait Processor: Send {
    /// Takes one batch and pushes zero or more batches to `out`. Items it drops on purpose resolve their
    /// acknowledgements `Delivered`; items it refuses are counted with `AckSet::reject_items`.
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>);

    /// When `on_tick` should next be called, if ever.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Time-driven work (a batch timeout, a tail-sampling decision).
    fn on_tick(&mut self, _now: Instant, _out: &mut Vec<Batch>) {}

    /// Pushes out everything held: the input has closed and the daemon is stopping.
    fn flush(&mut self, _out: &mut Vec<Batch>) {}

    /// Whether the pipeline should call `on_idle`. Watching for an idle input costs the pipeline task a
    /// yield per batch, so only processors that act on it opt in.
    fn wants_idle(&self) -> bool {
        false
    }

    /// The pipeline's input has nothing waiting, even after letting every ready sender run: no more data is
    /// on its way right now. A processor holding data back for company may send it.
    fn on_idle(&mut self, _out: &mut Vec<Batch>) {}

    /// The client metadata keys (lower case) this processor reads, e.g. the batch processor's
    /// `metadata_keys`. A pipeline keeps only the keys one of its processors reads, so headers copied by a
    /// receiver's `include_metadata` that nothing uses never reach an exporter or a write-ahead log.
    fn metadata_keys(&self) -> &[String] {
        &[]
    }
}

/// Sends data out of the daemon and resolves acknowledgements once it is durable there.
#[async_trait]
pub trait Exporter: Send {
    async fn run(self: Box<Self>, input: BatchReceiver, cx: ExporterContext) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_print_as_type_slash_name() {
        let id: ComponentId = "delta/spans".parse().expect("valid");
        assert_eq!(id.type_name, "delta");
        assert_eq!(id.name.as_deref(), Some("spans"));
        assert_eq!(id.to_string(), "delta/spans");
        assert_eq!(
            "otlp".parse::<ComponentId>().expect("valid").to_string(),
            "otlp"
        );
        assert!("otlp/".parse::<ComponentId>().is_err());
        assert!("/x".parse::<ComponentId>().is_err());
        assert!("a b".parse::<ComponentId>().is_err());
    }
}
