//! Builds the pipeline graph from a validated [`Config`], runs it until shutdown, and applies reloads.
//!
//! ```text
//!  receiver ──Fanout──> [pipeline channel] ─> pipeline task (processors in order) ──share──> [exporter channel] ─> exporter
//! ```
//! - An exporter whose section has `sending_queue: {storage: wal}` gets a write-ahead log in front of it
//!   (`[wal channel] ─> wal/<id> ─> [exporter channel]`, see `otlake_wal`): validation took the log's keys out
//!   of the section before the exporter's factory saw it, and the pipelines feed the log instead.
//! - Receivers and exporters: one instance per id, shared by every pipeline that lists them. Processors: one
//!   instance per pipeline, owned by that pipeline's task, which also owns their timers.
//! - A pipeline's channel belongs to the pipeline id, not to its task: a reload that replaces the task hands
//!   the channel to the new one, so the receivers feeding it never notice.
//! - Start order: exporters (and their logs, until open), then pipelines, then receivers; so everything
//!   downstream runs before data arrives. Starting is the reload from nothing ([`Plan::start`]).
//! - Reload ([`Plan::between`] the running config and the new one): receivers being replaced stop accepting
//!   and pipelines being replaced hand over (flush, deliver, return their channel); then exporters being
//!   replaced see their input close and make what they hold durable; then the new exporters start (their
//!   logs open: a log directory that stays is reopened, its undelivered entries replayed once), the new
//!   pipelines take over the channels, and once the old receivers have answered their in-flight requests and
//!   let go of their ports the new receivers bind. A receiver that only feeds other pipelines is rewired, not
//!   replaced: its fan-outs are re-pointed (first away from removed pipelines, then at the new ones once they
//!   run), so its listeners and connections stay. Kept components are not touched. A step that takes longer
//!   than `shutdown_grace` stops the daemon (as a late shutdown would).
//! - Shutdown: the token stops the receivers and makes every pipeline flush its processors once (what they hold
//!   answers the receivers' in-flight requests); when a receiver returns, its `Fanout`s drop; when every sender
//!   of a pipeline channel is gone the pipeline flushes its processors again and drops its exporter senders; each exporter
//!   then makes what it holds durable and returns. At the grace deadline whatever is still running is named in
//!   the log and abandoned: its acknowledgements drop, which answers those clients retryable.
//! - A receiver may end the run itself through its context's `StopHandle` (`process`: its child exited); the
//!   shutdown is then the same, and the run reports the exit code it asked for ([`Stopped::ByReceiver`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use std::time::Duration;

use otlake_core::batch::{BatchReceiver, BatchSender, channel};
use otlake_core::{
    Chain, ComponentError, ComponentId, ConfigError, ExporterContext, Fanout, FanoutTargets,
    Processor, ReceiverContext, Signal, StopHandle,
};
use otlake_wal::WalStage;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{Config, LoadError, PipelineId, component_id};
use crate::error::{RunError, ValidationError};
use crate::pipeline_task::run_pipeline;
use crate::registry::Registry;
use crate::reload::Plan;
use crate::telemetry_endpoints;
use crate::validate::{Validated, validate};

/// Batches waiting in front of a pipeline (one per received request).
const PIPELINE_QUEUE: usize = 256;
/// Batches waiting in front of an exporter.
const EXPORTER_QUEUE: usize = 64;
/// How long a receiver waits for room in a full pipeline before answering retryable.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Reloads by result (`success`, `failed`).
/// After the shutdown grace period, how long receivers get to answer the clients of abandoned stages.
const ANSWER_ABANDONED: Duration = Duration::from_secs(1);

const CONFIG_RELOADS: &str = "otlake_config_reloads_total";

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

/// Where a running daemon gets a new configuration from: each message on `requests` (its text says why:
/// `SIGHUP`, `file changed`) reads it again with `load`, validates it and applies the difference.
pub struct Reloads {
    /// Reads the configuration again (the file, with environment variables substituted anew).
    pub load: Box<dyn FnMut() -> Result<Config, LoadError> + Send>,
    pub requests: mpsc::Receiver<String>,
}

/// [`run`], calling `on_ready` once the daemon is ready (when the health endpoint turns 200 and the log says
/// "otlake is ready."), e.g. to write the bound addresses to a file for whoever started it.
pub async fn run_reporting_ready(
    config: Config,
    registry: &Registry,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&Ready),
) -> Result<Stopped, RunError> {
    run_reloading(config, registry, shutdown, on_ready, None).await
}

/// [`run_reporting_ready`], applying a new configuration whenever `reloads` asks. An invalid one changes
/// nothing: its problems are logged with the text `otlake validate` prints.
pub async fn run_reloading(
    config: Config,
    registry: &Registry,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&Ready),
    reloads: Option<Reloads>,
) -> Result<Stopped, RunError> {
    let validated = validate(&config, registry).map_err(RunError::Invalid)?;
    otlake_core::MemoryBudget::global().set_limit(config.service.memory_limit);
    // Telemetry first: metric handles bind to the recorder installed when they are created.
    let health = telemetry_endpoints::Health::default();
    let telemetry = telemetry_endpoints::start(&config, health.clone()).await?;
    let plan = Plan::start(&config);
    let built = build(&config, validated, registry, &plan).map_err(RunError::Invalid)?;
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
    let mut runtime = Runtime::new(registry.clone(), config.service.telemetry.shutdown_grace);
    let started = runtime.apply(&plan, built, config).await;
    runtime
        .run(
            started,
            health,
            shutdown,
            |more| announce(ready, more),
            reloads,
        )
        .await
}

/// One thing start-up waits for: the addresses it bound (none for a log), `None` if it stopped first.
type StartupWait = BoxFuture<'static, Option<Vec<(String, SocketAddr)>>>;

/// Components built from their validated configs, not yet running: what a [`Plan`] starts.
#[derive(Default)]
struct Built {
    exporters: Vec<BuiltExporter>,
    pipelines: Vec<(PipelineId, Vec<Box<dyn Processor>>)>,
    receivers: Vec<(String, Box<dyn otlake_core::Receiver>, ComponentId)>,
}

struct BuiltExporter {
    key: String,
    id: ComponentId,
    exporter: Box<dyn otlake_core::Exporter>,
    /// The write-ahead log in front of it (`sending_queue.storage: wal`).
    wal: Option<WalStage>,
}

/// Builds every component `plan` starts from its validated config; what can still fail here are checks that
/// need the wiring (an `otlphttp` exporter without a URL for a signal a pipeline sends it).
fn build(
    config: &Config,
    mut validated: Validated,
    registry: &Registry,
    plan: &Plan,
) -> Result<Built, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let mut report = |section: &str, key: &str, e: ConfigError| {
        let e = e.under(&format!("{section}.{key}"));
        errors.push(ValidationError {
            line: config.line_of(&e.path),
            path: e.path,
            message: e.message,
        });
    };
    let pipelines: BTreeMap<PipelineId, &crate::config::Pipeline> = config.pipelines().collect();
    let mut built = Built::default();

    // Exporters: one per id, with the union of the signals of the pipelines that use it.
    let mut exporter_signals: BTreeMap<&str, BTreeSet<Signal>> = BTreeMap::new();
    for (pid, p) in &pipelines {
        for e in &p.exporters {
            exporter_signals.entry(e).or_default().insert(pid.signal);
        }
    }
    for key in plan.exporters.starting() {
        let id = component_id(key);
        let signals: Vec<Signal> = exporter_signals
            .get(key.as_str())
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let factory = &registry.exporters[id.type_name.as_str()];
        let Some((typed, wal)) = validated.exporters.remove(key) else {
            continue; // validation reported it
        };
        match factory.build(&id, typed, &signals) {
            Ok(exporter) => built.exporters.push(BuiltExporter {
                key: key.clone(),
                wal: wal.map(|wal| WalStage::new(id.clone(), &wal)),
                id,
                exporter,
            }),
            Err(e) => report("exporters", key, e),
        }
    }

    // Pipelines: processors per pipeline, in order.
    for pid in plan.pipelines.starting() {
        let Some(p) = pipelines.get(pid) else {
            continue;
        };
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
        built.pipelines.push((pid.clone(), processors));
    }

    // Receivers: one per id.
    for key in plan.receivers.starting() {
        let id = component_id(key);
        let factory = &registry.receivers[id.type_name.as_str()];
        let Some(typed) = validated.receivers.remove(key) else {
            continue; // validation reported it
        };
        match factory.build(&id, typed) {
            Ok(receiver) => built.receivers.push((key.clone(), receiver, id)),
            Err(e) => report("receivers", key, e),
        }
    }
    if errors.is_empty() {
        Ok(built)
    } else {
        Err(errors)
    }
}

/// A spawned stage: its number among all stages ever started, when it ended, how to abandon it.
struct Stage {
    serial: u64,
    /// Resolves (with an error: the sender is dropped) when the stage's task has ended.
    done: oneshot::Receiver<()>,
    abort: AbortHandle,
}

/// Every stage's task, and which are still running (the log names them when a grace period runs out).
#[derive(Default)]
struct Stages {
    tasks: JoinSet<(String, u64, Result<(), ComponentError>)>,
    running: Arc<Mutex<BTreeMap<u64, String>>>,
    /// The running stages' abort handles, by serial (pruned to `running` at each spawn).
    aborts: HashMap<u64, AbortHandle>,
    /// Stages a reload stopped on purpose: their ending is no failure.
    retired: HashSet<u64>,
    next: u64,
}

impl Stages {
    fn spawn(
        &mut self,
        name: String,
        work: BoxFuture<'static, Result<(), ComponentError>>,
    ) -> Stage {
        let serial = self.next;
        self.next += 1;
        lock(&self.running).insert(serial, name.clone());
        let running = Arc::clone(&self.running);
        let (ended, done) = oneshot::channel::<()>();
        let abort = self.tasks.spawn(async move {
            let result = work.await;
            lock(&running).remove(&serial);
            drop(ended);
            (name, serial, result)
        });
        let running = lock(&self.running);
        self.aborts.retain(|serial, _| running.contains_key(serial));
        drop(running);
        self.aborts.insert(serial, abort.clone());
        Stage {
            serial,
            done,
            abort,
        }
    }

    fn running_names(&self) -> Vec<String> {
        lock(&self.running).values().cloned().collect()
    }

    /// Aborts the running stages whose name `abandon` picks.
    fn abort_where(&self, abandon: impl Fn(&str) -> bool) {
        for (serial, name) in lock(&self.running).iter() {
            if abandon(name)
                && let Some(abort) = self.aborts.get(serial)
            {
                abort.abort();
            }
        }
    }
}

/// What runs now, by id: what a reload compares against and rewires.
#[derive(Default)]
struct Live {
    config: Option<Config>,
    /// Each exporter's input (its log's when it has one) and its stages (log, exporter).
    exporters: BTreeMap<String, (BatchSender, Vec<Stage>)>,
    pipelines: BTreeMap<PipelineId, LivePipeline>,
    receivers: BTreeMap<String, LiveReceiver>,
}

struct LiveReceiver {
    /// Its own stop token (a child of the daemon's).
    stop: CancellationToken,
    stage: Stage,
    /// Where its fan-out sends, per signal its type supports: a reload that changes only the pipelines it
    /// feeds re-points these instead of restarting it, so its listeners and connections stay.
    targets: HashMap<Signal, FanoutTargets>,
}

struct LivePipeline {
    /// The pipeline's channel outlives its task: this sender keeps it open across a handover.
    input: BatchSender,
    handover: CancellationToken,
    /// The channel, given back by the task once it has handed over.
    returned: oneshot::Receiver<BatchReceiver>,
    stage: Stage,
}

struct Runtime {
    registry: Registry,
    stages: Stages,
    live: Live,
    token: CancellationToken,
    stop: StopHandle,
    grace: Duration,
}

impl Runtime {
    fn new(registry: Registry, grace: Duration) -> Self {
        Runtime {
            registry,
            stages: Stages::default(),
            live: Live::default(),
            token: CancellationToken::new(),
            stop: StopHandle::new(),
            grace,
        }
    }

    /// Turns the running graph into `config`'s as `plan` says (see the module docs for the order), starting
    /// `built`. Returns what the new receivers' start-up waits for; the new write-ahead logs are open (or
    /// failed: then one of the waits resolves `None`).
    async fn apply(
        &mut self,
        plan: &Plan,
        built: Built,
        config: Config,
    ) -> Result<Vec<StartupWait>, RunError> {
        let deadline = Instant::now() + self.grace;
        // 1. Receivers being replaced stop accepting; pipelines being replaced hand over.
        let mut leaving_receivers = Vec::new();
        for key in plan.receivers.stopping() {
            if let Some(r) = self.live.receivers.remove(key) {
                r.stop.cancel();
                self.stages.retired.insert(r.stage.serial);
                leaving_receivers.push((format!("receiver/{key}"), r.stage));
            }
        }
        // Receivers that stay but feed other pipelines stop sending into the pipelines that go away now; they
        // reach the new ones once those run (step 6).
        let wiring: BTreeMap<PipelineId, &crate::config::Pipeline> = config.pipelines().collect();
        for key in &plan.receivers.rewired {
            self.repoint(key, &wiring, &plan.pipelines.removed);
        }
        let mut handovers = Vec::new();
        for pid in plan.pipelines.stopping() {
            if let Some(p) = self.live.pipelines.remove(pid) {
                p.handover.cancel();
                self.stages.retired.insert(p.stage.serial);
                handovers.push((pid.clone(), p));
            }
        }
        // 2. They flush their processors into their exporters and give their channels back. A removed
        // pipeline's channel is dropped: what is still queued in it is answered retryable.
        let mut channels: HashMap<PipelineId, (BatchSender, BatchReceiver)> = HashMap::new();
        for (pid, mut p) in handovers {
            let name = format!("pipeline/{pid}");
            let returned = within(deadline, &name, &p.stage.abort, &mut p.returned).await?;
            let Ok(input) = returned else {
                return Err(RunError::Reload(format!(
                    "{name} ended without handing over"
                )));
            };
            if plan.pipelines.restarted.contains(&pid) {
                channels.insert(pid, (p.input, input));
            }
        }
        // 3. Exporters being replaced or removed: nothing feeds them any more; they make what they hold durable.
        for key in plan.exporters.stopping() {
            if let Some((input, stages)) = self.live.exporters.remove(key) {
                drop(input);
                for mut stage in stages {
                    self.stages.retired.insert(stage.serial);
                    let name = format!("exporter/{key}");
                    let _ = within(deadline, &name, &stage.abort, &mut stage.done).await?;
                }
            }
        }
        // 4. New exporters, downstream first; wait until their logs are open.
        let mut startups: Vec<StartupWait> = Vec::new();
        let mut opened = Vec::new();
        for e in built.exporters {
            let stage = format!("exporter/{}", e.key);
            let mut stages = Vec::new();
            let input = match e.wal {
                Some(wal) => {
                    let (tx, rx) = channel(&stage, WalStage::output_capacity());
                    let wal_stage = format!("wal/{}", e.key);
                    let (wal_tx, wal_rx) = channel(&wal_stage, EXPORTER_QUEUE);
                    opened.push(wal.opened());
                    stages.push(
                        self.stages
                            .spawn(stage, e.exporter.run(rx, ExporterContext { id: e.id })),
                    );
                    stages.push(self.stages.spawn(wal_stage, Box::pin(wal.run(wal_rx, tx))));
                    wal_tx
                }
                None => {
                    let (tx, rx) = channel(&stage, EXPORTER_QUEUE);
                    stages.push(
                        self.stages
                            .spawn(stage, e.exporter.run(rx, ExporterContext { id: e.id })),
                    );
                    tx
                }
            };
            self.live.exporters.insert(e.key, (input, stages));
        }
        if !futures::future::join_all(opened).await.iter().all(|ok| *ok) {
            startups.push(Box::pin(async { None }));
        }
        // 5. New pipelines; a replacement takes over its predecessor's channel.
        for (pid, processors) in built.pipelines {
            let name = format!("pipeline/{pid}");
            let (input, rx) = channels
                .remove(&pid)
                .unwrap_or_else(|| channel(&name, PIPELINE_QUEUE));
            let outputs = wiring[&pid]
                .exporters
                .iter()
                .filter_map(|e| self.live.exporters.get(e).map(|(tx, _)| tx.clone()))
                .collect();
            let handover = CancellationToken::new();
            let (give_back, returned) = oneshot::channel();
            let (shutdown, handing) = (self.token.clone(), handover.clone());
            let stage = self.stages.spawn(
                name,
                Box::pin(async move {
                    if let Some(input) =
                        run_pipeline(processors, rx, outputs, shutdown, handing).await
                    {
                        let _ = give_back.send(input);
                    }
                    Ok(())
                }),
            );
            self.live.pipelines.insert(
                pid,
                LivePipeline {
                    input,
                    handover,
                    returned,
                    stage,
                },
            );
        }
        // 6. Kept receivers feed every pipeline of the new config. Old receivers answer their in-flight
        // requests (through the pipelines now running) and let go of their ports; then the new ones bind.
        for key in &plan.receivers.rewired {
            self.repoint(key, &wiring, &BTreeSet::new());
        }
        for (name, mut stage) in leaving_receivers {
            let _ = within(deadline, &name, &stage.abort, &mut stage.done).await?;
        }
        for (key, receiver, id) in built.receivers {
            let mut targets = self.receiver_targets(&key, &wiring, &BTreeSet::new());
            let signals = self.registry.receivers[id.type_name.as_str()].signals();
            let outputs: HashMap<Signal, Fanout> = signals
                .iter()
                .map(|signal| {
                    let targets = targets.remove(signal).unwrap_or_default();
                    (*signal, Fanout::new(targets, DEFAULT_QUEUE_WAIT))
                })
                .collect();
            let handles = outputs
                .iter()
                .map(|(signal, fanout)| (*signal, fanout.targets()))
                .collect();
            let stage = format!("receiver/{key}");
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
            let stop = self.token.child_token();
            let cx = ReceiverContext {
                id,
                outputs,
                shutdown: stop.clone(),
                stop: self.stop.clone(),
            };
            let stage = self.stages.spawn(stage, receiver.run(cx));
            self.live.receivers.insert(
                key,
                LiveReceiver {
                    stop,
                    stage,
                    targets: handles,
                },
            );
        }
        self.live.config = Some(config);
        Ok(startups)
    }

    /// The channels of the running pipelines (but those in `skip`) that receiver `key` feeds in `wiring`, per
    /// signal.
    fn receiver_targets(
        &self,
        key: &str,
        wiring: &BTreeMap<PipelineId, &crate::config::Pipeline>,
        skip: &BTreeSet<PipelineId>,
    ) -> HashMap<Signal, Vec<BatchSender>> {
        let mut targets: HashMap<Signal, Vec<BatchSender>> = HashMap::new();
        for (pid, p) in wiring {
            if p.receivers.iter().any(|r| r == key)
                && !skip.contains(pid)
                && let Some(live) = self.live.pipelines.get(pid)
            {
                targets
                    .entry(pid.signal)
                    .or_default()
                    .push(live.input.clone());
            }
        }
        targets
    }

    /// Points the running receiver `key` at the pipelines [`Runtime::receiver_targets`] names; a signal left
    /// without one is answered as the receiver answers a signal no pipeline takes.
    fn repoint(
        &self,
        key: &str,
        wiring: &BTreeMap<PipelineId, &crate::config::Pipeline>,
        skip: &BTreeSet<PipelineId>,
    ) {
        let Some(receiver) = self.live.receivers.get(key) else {
            return;
        };
        let mut targets = self.receiver_targets(key, wiring, skip);
        for (signal, handle) in &receiver.targets {
            handle.replace(targets.remove(signal).unwrap_or_default());
        }
    }

    /// Reads the configuration again and applies it; an invalid one changes nothing. An error only when the
    /// running graph could not be brought to the new config (a step outlasted the grace period).
    async fn reload(&mut self, reloads: &mut Reloads, reason: &str) -> Result<(), RunError> {
        let began = Instant::now();
        let refuse = |problems: Vec<String>| {
            metrics::counter!(CONFIG_RELOADS, "result" => "failed").increment(1);
            for problem in &problems {
                error!(reason, problem = %problem, "Invalid configuration.");
            }
            warn!(
                reason,
                problems = problems.len(),
                "Configuration reload refused: nothing changed, the running pipelines go on."
            );
        };
        let config = match (reloads.load)() {
            Ok(config) => config,
            Err(LoadError::Invalid(errors)) => {
                refuse(errors.iter().map(ToString::to_string).collect());
                return Ok(());
            }
            Err(e) => {
                refuse(vec![e.to_string()]);
                return Ok(());
            }
        };
        let built = validate(&config, &self.registry).and_then(|validated| {
            let plan = Plan::between(self.live.config.as_ref(), &config);
            Ok((build(&config, validated, &self.registry, &plan)?, plan))
        });
        let (built, plan) = match built {
            Ok(built) => built,
            Err(errors) => {
                refuse(errors.iter().map(ToString::to_string).collect());
                return Ok(());
            }
        };
        if let Some(old) = &self.live.config {
            warn_about_restart_only_settings(old, &config);
        }
        otlake_core::MemoryBudget::global().set_limit(config.service.memory_limit);
        let grace = config.service.telemetry.shutdown_grace;
        let startups = self.apply(&plan, built, config).await?;
        self.grace = grace;
        let started: Option<Vec<_>> = futures::future::join_all(startups)
            .await
            .into_iter()
            .collect();
        let Some(bound) = started else {
            metrics::counter!(CONFIG_RELOADS, "result" => "failed").increment(1);
            error!(reason, changes = %plan, "Configuration reload: a new stage failed to start.");
            return Ok(()); // the failed stage ends the run
        };
        metrics::counter!(CONFIG_RELOADS, "result" => "success").increment(1);
        let listening: Vec<String> = bound
            .into_iter()
            .flatten()
            .map(|(name, address)| format!("{name}={address}"))
            .collect();
        info!(
            reason,
            took_ms = began.elapsed().as_millis() as u64,
            changes = %plan,
            new_addresses = %listening.join(" "),
            "Configuration reloaded."
        );
        Ok(())
    }

    /// Runs the graph until `shutdown` (or a stage's end); `ready` is called, with every receiver's bound
    /// addresses, once every receiver has bound and every write-ahead log is open.
    async fn run(
        mut self,
        started: Result<Vec<StartupWait>, RunError>,
        health: telemetry_endpoints::Health,
        shutdown: impl Future<Output = ()>,
        ready: impl FnOnce(Vec<(String, SocketAddr)>),
        mut reloads: Option<Reloads>,
    ) -> Result<Stopped, RunError> {
        info!(
            stages = self.stages.tasks.len(),
            "otlake is running; waiting for receivers to bind and write-ahead logs to open."
        );
        // Run until asked to stop, or until a stage ends on its own (a bind error, a failed start-up). When one
        // stage fails, the stages after it end too, and the JoinSet may report those first: every stage error
        // seen until the drain is over counts, and so does a stage ending before shutdown was asked for (unless a
        // receiver asked for it: the one that asks returns as soon as it has, maybe before its request is seen).
        let mut outcome = Outcome::default();
        let startup = futures::future::join_all(started.unwrap_or_else(|e| {
            outcome.failure = Some(e);
            Vec::new()
        }));
        tokio::pin!(shutdown);
        tokio::pin!(startup);
        let mut ready = Some(ready);
        let mut is_ready = false;
        while outcome.failure.is_none() {
            let event = tokio::select! {
                started = &mut startup, if ready.is_some() => Event::Started(started),
                _ = &mut shutdown => Event::Shutdown,
                exit_code = self.stop.wait() => Event::StopRequested(exit_code),
                Some(reason) = next_request(&mut reloads), if is_ready => Event::Reload(reason),
                Some(joined) = self.stages.tasks.join_next() => Event::Ended(joined),
            };
            match event {
                Event::Started(started) => {
                    // A stage that stopped before it was ready ends on its own too: `Ended` sees it.
                    if let Some(addresses) = started.into_iter().collect::<Option<Vec<_>>>()
                        && let Some(ready) = ready.take()
                    {
                        health.set_running(true);
                        is_ready = true;
                        ready(addresses.into_iter().flatten().collect());
                    }
                    ready = None;
                }
                Event::Shutdown => {
                    info!("Shutdown requested: stopping receivers.");
                    break;
                }
                Event::StopRequested(exit_code) => {
                    info!(
                        exit_code,
                        "A receiver ended the run: stopping the other receivers."
                    );
                    break;
                }
                Event::Reload(reason) => {
                    let Some(reloads) = reloads.as_mut() else {
                        continue;
                    };
                    if let Err(e) = self.reload(reloads, &reason).await {
                        error!(error = %e, "Configuration reload failed half-way: stopping.");
                        outcome.failure = Some(e);
                    }
                }
                Event::Ended(Ok((stage, serial, result))) => {
                    let retired = self.stages.retired.contains(&serial);
                    outcome.record(&self.stop, stage, result, retired);
                    if !retired {
                        info!("Shutting down the other stages.");
                        break;
                    }
                }
                Event::Ended(Err(e)) => {
                    error!(error = %e, "Stage panicked.");
                    outcome.panicked = Some(e.to_string());
                    info!("Shutting down the other stages.");
                    break;
                }
            }
        }
        health.set_running(false);
        self.token.cancel();
        // Only the stages hold channel senders now: each ends once its upstream has.
        drop(std::mem::take(&mut self.live));

        // Drain: wait up to the grace period.
        let grace = self.grace;
        let deadline = Instant::now() + grace;
        let mut late = None;
        loop {
            match tokio::time::timeout_at(deadline, self.stages.tasks.join_next()).await {
                Ok(Some(Ok((stage, _, result)))) => {
                    outcome.record(&self.stop, stage, result, true);
                }
                Ok(Some(Err(e))) => {
                    error!(error = %e, "Stage panicked during shutdown.");
                    outcome.panicked.get_or_insert(e.to_string());
                }
                Ok(None) => break,
                Err(_) => {
                    let names = self.stages.running_names();
                    for stage in &names {
                        error!(stage = %stage, grace = ?grace, "Stage did not finish within the shutdown grace period; abandoning it, its clients are answered retryable.");
                    }
                    // Abandoned pipelines and exporters resolve their clients' acknowledgements retryable as
                    // they are dropped; the receivers get a moment to write those answers before they go too
                    // (else the process exits first and a client sees its connection closed, not a 503).
                    self.stages
                        .abort_where(|name| !name.starts_with("receiver/"));
                    let answered = Instant::now() + ANSWER_ABANDONED;
                    while let Ok(Some(_)) =
                        tokio::time::timeout_at(answered, self.stages.tasks.join_next()).await
                    {
                    }
                    self.stages.tasks.abort_all();
                    while self.stages.tasks.join_next().await.is_some() {}
                    late = Some(names.join(", "));
                    break;
                }
            }
        }
        if let Some(failure) = outcome.failure {
            return Err(failure);
        }
        if let Some(panic) = outcome.panicked {
            return Err(RunError::Panicked(panic));
        }
        match late {
            Some(names) => Err(RunError::Late(names)),
            None => {
                info!("otlake stopped cleanly.");
                Ok(match self.stop.requested() {
                    Some(exit_code) => Stopped::ByReceiver { exit_code },
                    None => Stopped::Requested,
                })
            }
        }
    }
}

/// What the main loop waits for.
enum Event {
    Started(Vec<Option<Vec<(String, SocketAddr)>>>),
    Shutdown,
    StopRequested(u8),
    Reload(String),
    Ended(Result<(String, u64, Result<(), ComponentError>), tokio::task::JoinError>),
}

/// How the stages ended: the first failure, the first panic.
#[derive(Default)]
struct Outcome {
    failure: Option<RunError>,
    panicked: Option<String>,
}

impl Outcome {
    /// `expected`: shutdown was under way, or a reload stopped the stage.
    fn record(
        &mut self,
        stop: &StopHandle,
        stage: String,
        result: Result<(), ComponentError>,
        expected: bool,
    ) {
        let expected = expected || stop.requested().is_some();
        match result {
            Err(cause) => {
                error!(stage = %stage, error = %Chain(&cause), "Stage failed.");
                self.failure
                    .get_or_insert(RunError::Component { stage, cause });
            }
            Ok(()) if !expected => {
                warn!(stage = %stage, "Stage ended before shutdown was requested.");
                self.failure.get_or_insert(RunError::Component {
                    cause: ComponentError::failed(
                        stage.clone(),
                        "ended before shutdown was requested",
                    ),
                    stage,
                });
            }
            Ok(()) => info!(stage = %stage, "Stage stopped."),
        }
    }
}

/// Waits for `done` until `deadline`; past it, abandons the stage (its clients are answered retryable) and
/// fails the reload.
async fn within<T>(
    deadline: Instant,
    name: &str,
    abort: &AbortHandle,
    done: &mut oneshot::Receiver<T>,
) -> Result<Result<T, oneshot::error::RecvError>, RunError> {
    match tokio::time::timeout_at(deadline, done).await {
        Ok(result) => Ok(result),
        Err(_) => {
            error!(stage = %name, "Stage did not stop within the shutdown grace period during a reload; abandoning it, its clients are answered retryable.");
            abort.abort();
            Err(RunError::Reload(format!(
                "{name} did not stop within the grace period"
            )))
        }
    }
}

/// The next reload request; never, without reloads.
async fn next_request(reloads: &mut Option<Reloads>) -> Option<String> {
    match reloads {
        Some(reloads) => reloads.requests.recv().await,
        None => std::future::pending().await,
    }
}

/// The daemon's own endpoints and logging are set up once: say so when a reload changes them.
fn warn_about_restart_only_settings(old: &Config, new: &Config) {
    let (o, n) = (&old.service.telemetry, &new.service.telemetry);
    if old.metrics_address() != new.metrics_address()
        || old.health_endpoint() != new.health_endpoint()
        || o.logs.level != n.logs.level
        || o.logs.encoding != n.logs.encoding
    {
        warn!(
            "The reload changes service.telemetry (endpoints or logs): that takes effect at the next start."
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
