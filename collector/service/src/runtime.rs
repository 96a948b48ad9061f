//! Builds the pipeline graph from a validated [`Config`] and runs it until shutdown.
//!
//! ```text
//!  receiver ──Fanout──> [pipeline channel] ─> pipeline task (processors in order) ──share──> [exporter channel] ─> exporter
//! ```
//! - An exporter whose section has `sending_queue: {storage: wal}` gets a write-ahead log in front of it
//!   (`[wal channel] ─> wal/<id> ─> [exporter channel]`, see `otlake_wal`): validation took the log's keys out
//!   of the section before the exporter's factory saw it, and the pipelines feed the log instead.
//! - Receivers and exporters: one instance per id, shared by every pipeline that lists them. Processors: one
//!   instance per pipeline, owned by that pipeline's task, which also owns their timers.
//! - Build order: exporters, then pipelines, then receivers; so everything downstream runs before data arrives.
//! - Shutdown: the token stops the receivers and makes every pipeline flush its processors once (what they hold
//!   answers the receivers' in-flight requests); when a receiver returns, its `Fanout`s drop; when every sender
//!   of a pipeline channel is gone the pipeline flushes its processors again and drops its exporter senders; each exporter
//!   then makes what it holds durable and returns. At the grace deadline whatever is still running is named in
//!   the log and abandoned: its acknowledgements drop, which answers those clients retryable.
//! - A receiver may end the run itself through its context's `StopHandle` (`process`: its child exited); the
//!   shutdown is then the same, and the run reports the exit code it asked for ([`Stopped::ByReceiver`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use std::time::Duration;

use otlake_core::batch::{BatchReceiver, BatchSender, channel};
use otlake_core::{
    Batch, Chain, ComponentError, ComponentId, ConfigError, ExporterContext, Fanout, Outcome,
    Processor, ReceiverContext, Signal, StopHandle,
};
use otlake_wal::WalStage;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{Config, PipelineId, component_id};
use crate::error::{RunError, ValidationError};
use crate::registry::Registry;
use crate::telemetry_endpoints;
use crate::validate::{Validated, validate};

/// Batches waiting in front of a pipeline (one per received request).
const PIPELINE_QUEUE: usize = 256;
/// Batches waiting in front of an exporter.
const EXPORTER_QUEUE: usize = 64;
/// How long a receiver waits for room in a full pipeline before answering retryable.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(2);

/// How a run that shut down cleanly came to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The `shutdown` future completed (SIGTERM, SIGINT).
    Requested,
    /// A receiver ended the daemon and asked for this exit code (`otlake run -- CMD`: its child's).
    ByReceiver { exit_code: u8 },
}

/// Runs `config` until `shutdown` completes, a receiver asks to stop, or a component fails; then shuts down
/// cleanly.
pub async fn run(
    config: Config,
    registry: &Registry,
    shutdown: impl Future<Output = ()>,
) -> Result<Stopped, RunError> {
    run_reporting_ready(config, registry, shutdown, |_| {}).await
}

/// The daemon has started: every receiver is bound and every write-ahead log is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ready {
    /// Where it listens, by name (`receiver/otlp/grpc`, `telemetry/health`), with port `0` resolved.
    pub addresses: BTreeMap<String, SocketAddr>,
}

/// [`run`], calling `on_ready` once the daemon is ready (when the health endpoint turns 200 and the log says
/// "otlake is ready."), e.g. to write the bound addresses to a file for whoever started it.
pub async fn run_reporting_ready(
    config: Config,
    registry: &Registry,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&Ready),
) -> Result<Stopped, RunError> {
    let validated = validate(&config, registry).map_err(RunError::Invalid)?;
    otlake_core::MemoryBudget::global().set_limit(config.service.memory_limit);
    // Telemetry first: metric handles bind to the recorder installed when they are created.
    let health = telemetry_endpoints::Health::default();
    let telemetry = telemetry_endpoints::start(&config, health.clone()).await?;
    let graph = build(&config, validated, registry).map_err(RunError::Invalid)?;
    let mut ready = Ready::default();
    for (name, address) in &telemetry.addresses {
        ready
            .addresses
            .insert(format!("telemetry/{name}"), *address);
    }
    let announce = |mut ready: Ready, more: Vec<(String, SocketAddr)>| {
        ready.addresses.extend(more);
        let listening: Vec<String> = ready
            .addresses
            .iter()
            .map(|(name, address)| format!("{name}={address}"))
            .collect();
        info!(addresses = %listening.join(" "), "otlake is ready.");
        on_ready(&ready);
    };
    graph
        .run(
            config.service.telemetry.shutdown_grace,
            health,
            shutdown,
            |more| announce(ready, more),
        )
        .await
}

/// Components built and wired, not yet running. Each entry starts with its stage name (`exporter/file`).
struct Graph {
    exporters: Vec<BuiltExporter>,
    /// Write-ahead logs in front of exporters (`sending_queue.storage: wal`): stage name, stage, input, output.
    wal_stages: Vec<(String, WalStage, BatchReceiver, BatchSender)>,
    pipelines: Vec<BuiltPipeline>,
    receivers: Vec<BuiltReceiver>,
}

type BuiltExporter = (
    String,
    Box<dyn otlake_core::Exporter>,
    BatchReceiver,
    ComponentId,
);
/// Stage name, processors in order, input, one sender per exporter.
type BuiltPipeline = (
    String,
    Vec<Box<dyn Processor>>,
    BatchReceiver,
    Vec<BatchSender>,
);
/// One thing start-up waits for: the addresses it bound (none for a log), `None` if it stopped first.
type StartupWait = BoxFuture<'static, Option<Vec<(String, SocketAddr)>>>;
type BuiltReceiver = (
    String,
    Box<dyn otlake_core::Receiver>,
    HashMap<Signal, Fanout>,
    ComponentId,
);

/// Builds every component from its validated config; what can still fail here are checks that need the
/// wiring (an `otlphttp` exporter without a URL for a signal a pipeline sends it).
fn build(
    config: &Config,
    mut validated: Validated,
    registry: &Registry,
) -> Result<Graph, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let mut report = |section: &str, key: &str, e: ConfigError| {
        let e = e.under(&format!("{section}.{key}"));
        errors.push(ValidationError {
            line: config.line_of(&e.path),
            path: e.path,
            message: e.message,
        });
    };
    let pipelines: Vec<(PipelineId, &crate::config::Pipeline)> = config.pipelines().collect();

    // Exporters first: one per id, with the union of the signals of the pipelines that use it.
    let mut exporter_signals: BTreeMap<&str, BTreeSet<Signal>> = BTreeMap::new();
    for (pid, p) in &pipelines {
        for e in &p.exporters {
            exporter_signals.entry(e).or_default().insert(pid.signal);
        }
    }
    let mut exporters = Vec::new();
    let mut wal_stages = Vec::new();
    let mut exporter_inputs: HashMap<&str, BatchSender> = HashMap::new();
    for (key, signals) in &exporter_signals {
        let id = component_id(key);
        let signals: Vec<Signal> = signals.iter().copied().collect();
        let factory = &registry.exporters[id.type_name.as_str()];
        let Some((typed, wal)) = validated.exporters.remove(*key) else {
            continue; // validation reported it
        };
        match factory.build(&id, typed, &signals) {
            Ok(exporter) => {
                let stage = format!("exporter/{key}");
                match wal {
                    Some(wal) => {
                        let (tx, rx) = channel(&stage, WalStage::output_capacity());
                        let wal_stage = format!("wal/{key}");
                        let (wal_tx, wal_rx) = channel(&wal_stage, EXPORTER_QUEUE);
                        exporter_inputs.insert(key, wal_tx);
                        wal_stages.push((wal_stage, WalStage::new(id.clone(), &wal), wal_rx, tx));
                        exporters.push((stage, exporter, rx, id));
                    }
                    None => {
                        let (tx, rx) = channel(&stage, EXPORTER_QUEUE);
                        exporter_inputs.insert(key, tx);
                        exporters.push((stage, exporter, rx, id));
                    }
                }
            }
            Err(e) => report("exporters", key, e),
        }
    }

    // Pipelines: processors per pipeline, in order.
    let mut built_pipelines = Vec::new();
    let mut pipeline_inputs: Vec<(PipelineId, BatchSender, &crate::config::Pipeline)> = Vec::new();
    for (pid, p) in &pipelines {
        let mut processors = Vec::new();
        for key in &p.processors {
            let id = component_id(key);
            let factory = &registry.processors[id.type_name.as_str()];
            let Some(typed) = validated.processors.get(key) else {
                continue; // validation reported it
            };
            match factory.build(&id, typed, pid.signal) {
                Ok(processor) => processors.push(processor),
                Err(e) => report("processors", key, e),
            }
        }
        let stage = format!("pipeline/{pid}");
        let (tx, rx) = channel(&stage, PIPELINE_QUEUE);
        let outputs = p
            .exporters
            .iter()
            .filter_map(|e| exporter_inputs.get(e.as_str()).cloned())
            .collect();
        built_pipelines.push((stage, processors, rx, outputs));
        pipeline_inputs.push((pid.clone(), tx, p));
    }
    drop(exporter_inputs); // only pipelines hold exporter senders now

    // Receivers: one per id, a Fanout per signal into every pipeline that lists it.
    let mut receiver_outputs: BTreeMap<&str, HashMap<Signal, Vec<BatchSender>>> = BTreeMap::new();
    for (pid, tx, p) in &pipeline_inputs {
        for r in &p.receivers {
            receiver_outputs
                .entry(r)
                .or_default()
                .entry(pid.signal)
                .or_default()
                .push(tx.clone());
        }
    }
    drop(pipeline_inputs);
    let mut receivers = Vec::new();
    for (key, outputs) in receiver_outputs {
        let id = component_id(key);
        let factory = &registry.receivers[id.type_name.as_str()];
        let Some(typed) = validated.receivers.remove(key) else {
            continue; // validation reported it
        };
        match factory.build(&id, typed) {
            Ok(receiver) => {
                let outputs = outputs
                    .into_iter()
                    .map(|(signal, targets)| (signal, Fanout::new(targets, DEFAULT_QUEUE_WAIT)))
                    .collect();
                receivers.push((format!("receiver/{key}"), receiver, outputs, id));
            }
            Err(e) => report("receivers", key, e),
        }
    }
    if errors.is_empty() {
        Ok(Graph {
            exporters,
            wal_stages,
            pipelines: built_pipelines,
            receivers,
        })
    } else {
        Err(errors)
    }
}

impl Graph {
    /// Runs the graph until `shutdown` (or a stage's end); `ready` is called, with every receiver's bound
    /// addresses, once every receiver has bound and every write-ahead log is open.
    async fn run(
        self,
        grace: Duration,
        health: telemetry_endpoints::Health,
        shutdown: impl Future<Output = ()>,
        ready: impl FnOnce(Vec<(String, SocketAddr)>),
    ) -> Result<Stopped, RunError> {
        let mut tasks: JoinSet<(String, Result<(), ComponentError>)> = JoinSet::new();
        // Stages still running, by name: what the log names when the grace period runs out.
        let running: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let token = CancellationToken::new();
        let stop = StopHandle::new();
        let mut spawn = |stage: String, work: BoxFuture<'static, Result<(), ComponentError>>| {
            lock(&running).insert(stage.clone());
            let running = Arc::clone(&running);
            tasks.spawn(async move {
                let result = work.await;
                lock(&running).remove(&stage);
                (stage, result)
            });
        };

        // What start-up waits for: each receiver's listeners, each write-ahead log's recovery.
        let mut startups: Vec<StartupWait> = Vec::new();
        for (stage, receiver, _, _) in &self.receivers {
            if let Some(startup) = receiver.startup() {
                let stage = stage.clone();
                startups.push(Box::pin(async move {
                    let bound = startup.await?;
                    Some(
                        bound
                            .into_iter()
                            .map(|(name, address)| (format!("{stage}/{name}"), address))
                            .collect(),
                    )
                }));
            }
        }
        for (_, wal, _, _) in &self.wal_stages {
            let opened = wal.opened();
            startups.push(Box::pin(async move { opened.await.then(Vec::new) }));
        }
        let startup = futures::future::join_all(startups);

        // Start downstream first.
        for (stage, exporter, rx, id) in self.exporters {
            spawn(stage, exporter.run(rx, ExporterContext { id }));
        }
        for (stage, wal, rx, tx) in self.wal_stages {
            spawn(stage, Box::pin(wal.run(rx, tx)));
        }
        for (stage, processors, rx, outputs) in self.pipelines {
            let shutdown = token.clone();
            spawn(
                stage,
                Box::pin(async move {
                    run_pipeline(processors, rx, outputs, shutdown).await;
                    Ok(())
                }),
            );
        }
        for (stage, receiver, outputs, id) in self.receivers {
            let cx = ReceiverContext {
                id,
                outputs,
                shutdown: token.clone(),
                stop: stop.clone(),
            };
            spawn(stage, receiver.run(cx));
        }
        info!(
            stages = tasks.len(),
            "otlake is running; waiting for receivers to bind and write-ahead logs to open."
        );

        // Run until asked to stop, or until a stage ends on its own (a bind error, a failed start-up). When one
        // stage fails, the stages after it end too, and the JoinSet may report those first: every stage error
        // seen until the drain is over counts, and so does a stage ending before shutdown was asked for (unless a
        // receiver asked for it: the one that asks returns as soon as it has, maybe before its request is seen).
        let mut failure: Option<RunError> = None;
        let stopped_by_receiver = stop.clone();
        let mut record = |stage: String, result: Result<(), ComponentError>, requested: bool| {
            let requested = requested || stopped_by_receiver.requested().is_some();
            match result {
                Err(cause) => {
                    error!(stage = %stage, error = %Chain(&cause), "Stage failed.");
                    failure.get_or_insert(RunError::Component { stage, cause });
                }
                Ok(()) if !requested => {
                    warn!(stage = %stage, "Stage ended before shutdown was requested.");
                    failure.get_or_insert(RunError::Component {
                        cause: ComponentError::failed(
                            stage.clone(),
                            "ended before shutdown was requested",
                        ),
                        stage,
                    });
                }
                Ok(()) => info!(stage = %stage, "Stage stopped."),
            }
        };
        tokio::pin!(shutdown);
        tokio::pin!(startup);
        let mut ready = Some(ready);
        let mut panicked = None;
        loop {
            tokio::select! {
                started = &mut startup, if ready.is_some() => {
                    // A stage that stopped before it was ready ends on its own too: the branch below sees it.
                    if let Some(addresses) = started.into_iter().collect::<Option<Vec<_>>>()
                        && let Some(ready) = ready.take()
                    {
                        health.set_running(true);
                        ready(addresses.into_iter().flatten().collect());
                    }
                    ready = None;
                }
                _ = &mut shutdown => {
                    info!("Shutdown requested: stopping receivers.");
                    break;
                }
                exit_code = stop.wait() => {
                    info!(exit_code, "A receiver ended the run: stopping the other receivers.");
                    break;
                }
                Some(joined) = tasks.join_next() => {
                    match joined {
                        Ok((stage, result)) => record(stage, result, false),
                        Err(e) => {
                            error!(error = %e, "Stage panicked.");
                            panicked = Some(e.to_string());
                        }
                    }
                    info!("Shutting down the other stages.");
                    break;
                }
            }
        }
        health.set_running(false);
        token.cancel();

        // Drain: every stage ends once its upstream has; wait up to the grace period.
        let deadline = Instant::now() + grace;
        let mut late = None;
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(Ok((stage, result)))) => record(stage, result, true),
                Ok(Some(Err(e))) => {
                    error!(error = %e, "Stage panicked during shutdown.");
                    panicked.get_or_insert(e.to_string());
                }
                Ok(None) => break,
                Err(_) => {
                    let names: Vec<String> = lock(&running).iter().cloned().collect();
                    for stage in &names {
                        error!(stage = %stage, grace = ?grace, "Stage did not finish within the shutdown grace period; abandoning it, its clients are answered retryable.");
                    }
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    late = Some(names.join(", "));
                    break;
                }
            }
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        if let Some(panic) = panicked {
            return Err(RunError::Panicked(panic));
        }
        match late {
            Some(names) => Err(RunError::Late(names)),
            None => {
                info!("otlake stopped cleanly.");
                Ok(match stop.requested() {
                    Some(exit_code) => Stopped::ByReceiver { exit_code },
                    None => Stopped::Requested,
                })
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One pipeline: feeds each batch through the processors in order and hands the results to every exporter.
async fn run_pipeline(
    mut processors: Vec<Box<dyn Processor>>,
    mut input: BatchReceiver,
    outputs: Vec<BatchSender>,
    shutdown: CancellationToken,
) {
    let outputs = Fanout::blocking(outputs);
    let watch_idle = processors.iter().any(|p| p.wants_idle());
    let mut flushed_at_shutdown = false;
    let read_keys: BTreeSet<String> = processors
        .iter()
        .flat_map(|p| p.metadata_keys().iter().cloned())
        .collect();
    loop {
        let deadline = processors.iter().filter_map(|p| p.next_deadline()).min();
        let produced = tokio::select! {
            received = input.recv() => match received {
                Some(mut batch) => {
                    keep_read_metadata(&mut batch, &read_keys);
                    push_through(&mut processors, 0, vec![batch])
                }
                None => break,
            },
            _ = sleep_until(deadline) => tick(&mut processors, Instant::now()),
            // The receivers stop accepting now, but they return only once their in-flight requests are
            // answered, and data held here (a tail-sampling trace, a batch) answers them only when released:
            // release it now rather than at a timer or the grace deadline. Later input runs as usual.
            () = shutdown.cancelled(), if !flushed_at_shutdown => {
                flushed_at_shutdown = true;
                flush(&mut processors)
            }
        };
        deliver(produced, &outputs).await;
        if watch_idle && input.is_empty() {
            // A sender woken together with this task may not have run yet (tokio runs the task a send wakes
            // first): step aside once so that requests arriving in the same instant are batched together.
            tokio::task::yield_now().await;
            if input.is_empty() {
                deliver(idle(&mut processors), &outputs).await;
            }
        }
    }
    // Input closed: flush what is still held.
    deliver(flush(&mut processors), &outputs).await;
}

/// Flushes each processor in order, pushing what it releases through the ones after it.
fn flush(processors: &mut [Box<dyn Processor>]) -> Vec<Batch> {
    let mut produced = Vec::new();
    for i in 0..processors.len() {
        let mut released = Vec::new();
        processors[i].flush(&mut released);
        produced.extend(push_through(processors, i + 1, released));
    }
    produced
}

/// Drops the client metadata no processor of the pipeline reads (see `Processor::metadata_keys`): what a
/// receiver copied with `include_metadata` goes no further than it is used, and never into a write-ahead log.
fn keep_read_metadata(batch: &mut Batch, read_keys: &BTreeSet<String>) {
    if batch.meta.metadata.keys().all(|k| read_keys.contains(k)) {
        return;
    }
    Arc::make_mut(&mut batch.meta)
        .metadata
        .retain(|k, _| read_keys.contains(k));
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Runs `batches` through `processors[start..]`.
fn push_through(
    processors: &mut [Box<dyn Processor>],
    start: usize,
    mut batches: Vec<Batch>,
) -> Vec<Batch> {
    for processor in processors.iter_mut().skip(start) {
        let mut next = Vec::with_capacity(batches.len());
        for batch in batches {
            processor.process(batch, &mut next);
        }
        batches = next;
    }
    batches
}

/// Gives every processor whose deadline passed its tick, in order.
fn tick(processors: &mut [Box<dyn Processor>], now: Instant) -> Vec<Batch> {
    let mut produced = Vec::new();
    for i in 0..processors.len() {
        if processors[i].next_deadline().is_some_and(|d| d <= now) {
            let mut released = Vec::new();
            processors[i].on_tick(now, &mut released);
            produced.extend(push_through(processors, i + 1, released));
        }
    }
    produced
}

/// Gives every processor that watches for it the news that the input has run dry, in order.
fn idle(processors: &mut [Box<dyn Processor>]) -> Vec<Batch> {
    let mut produced = Vec::new();
    for i in 0..processors.len() {
        if processors[i].wants_idle() {
            let mut released = Vec::new();
            processors[i].on_idle(&mut released);
            produced.extend(push_through(processors, i + 1, released));
        }
    }
    produced
}

/// Hands each batch to every exporter (sharing the payload), waiting for room: backpressure.
async fn deliver(batches: Vec<Batch>, outputs: &Fanout) {
    for batch in batches {
        if batch.payload.item_count() == 0 {
            // Nothing to store (an empty request, or everything dropped on purpose upstream).
            batch.acks.resolve(Outcome::Delivered);
            continue;
        }
        // An exporter that is gone (it failed) answers its share retryable.
        outputs.send(batch).await;
    }
}
