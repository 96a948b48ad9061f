//! [`ProcessReceiver`]: the child process, its two pipes, and the batches made of its lines.
//!
//! Lifecycle: `run` starts the child (I/O starts here), then reads both pipes, copies the bytes through to
//! otlake's stdout/stderr unchanged, splits them into lines, runs each stream's lines through its own operator
//! chain (stdout and stderr interleave, so a traceback on stderr is joined on stderr), and sends batches.
//!
//! The child owns the daemon's lifetime, as under an init such as `tini`: SIGTERM and SIGINT sent to otlake are
//! forwarded to the child as they are (the binary does not shut down on them while a `process` receiver runs),
//! and its output is captured until it exits. When the child exits (both pipes closed), everything held is
//! flushed and delivered, then the receiver asks the service to stop with the child's exit code
//! ([`otlake_core::StopHandle`]; death by signal N is 128+N, as shells report it) and returns. A signal that
//! arrives after the child has exited stops waiting for delivery. If the daemon shuts down for another reason
//! (another stage failed), the child gets SIGTERM.
//!
//! Delivery: a pipe cannot be read again, so a batch is kept until its verdict is `Delivered` and sent again
//! after a retryable one (at least once while the daemon lives; lines in flight when otlake itself is killed
//! are lost, as for any pipe reader). Back-pressure: with [`MAX_IN_FLIGHT`] batches unacknowledged the pipes are
//! not read, so a child that writes faster than otlake delivers blocks on its pipe; no line is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use otlake_core::{
    Ack, AckSet, Batch, ComponentError, Fanout, MemoryBudget, Outcome, Payload, Receiver,
    ReceiverContext, Signal,
};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{Signal as SignalStream, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use super::ProcessConfig;
use crate::batch::Builder;
use crate::entry::Entry;
use crate::operators::{Chain, Compiled};
use crate::receiver::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_IN_FLIGHT, QUEUE_WAIT, RETRY_AFTER};
use crate::splitter::{Piece, SplitOptions, Splitter};

/// Longest a line waits in a batch that is not full.
const BATCH_DELAY: Duration = Duration::from_millis(200);
/// How often the loop wakes without input (batch delay, force flush, retries).
const TICK: Duration = Duration::from_millis(50);
/// How long undelivered batches are retried once the child has exited during shutdown.
const SHUTDOWN_RETRY: Duration = Duration::from_secs(20);

/// Runs a command and captures its output. See the module docs.
pub struct ProcessReceiver {
    config: ProcessConfig,
    operators: Compiled,
    budget: Arc<MemoryBudget>,
}

impl ProcessReceiver {
    pub fn new(config: ProcessConfig, operators: Compiled) -> Self {
        ProcessReceiver {
            config,
            operators,
            budget: Arc::clone(MemoryBudget::global()),
        }
    }
}

/// One of the child's pipes.
struct Stream {
    name: &'static str,
    reader: Option<Box<dyn AsyncRead + Unpin + Send>>,
    passthrough: Option<Box<dyn AsyncWrite + Unpin + Send>>,
    splitter: Splitter,
    chain: Chain,
    last_data: Instant,
    flushed: bool,
}

/// A batch kept until it is delivered.
struct Kept {
    /// The export request, in wire form (cloned per attempt without copying its bytes).
    payload: Payload,
    records: usize,
    bytes: usize,
}

struct Capture {
    fanout: Fanout,
    budget: Arc<MemoryBudget>,
    split: SplitOptions,
    force_flush: Duration,
    resource: Map<String, Value>,
    builder: Builder,
    batch_opened: Option<Instant>,
    in_flight: usize,
    /// Batches waiting to be sent (again), with when.
    retries: VecDeque<(Instant, Kept)>,
    verdicts: mpsc::UnboundedSender<(Kept, Outcome)>,
    undelivered_lines: usize,
}

#[async_trait]
impl Receiver for ProcessReceiver {
    async fn run(self: Box<Self>, cx: ReceiverContext) -> otlake_core::Result<()> {
        let ProcessReceiver {
            config,
            operators,
            budget,
        } = *self;
        let id = cx.id.to_string();
        let Some(fanout) = cx.outputs.get(&Signal::Logs).cloned() else {
            warn!(receiver = %id, "The process receiver is in no logs pipeline; the command is not started.");
            cx.shutdown.cancelled().await;
            return Ok(());
        };
        let mut command = tokio::process::Command::new(&config.command[0]);
        command
            .args(&config.command[1..])
            .envs(&config.env)
            .stdin(std::process::Stdio::inherit())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // If the service gives up on this receiver (shutdown grace over), the child must not outlive otlake.
            .kill_on_drop(true);
        if let Some(dir) = &config.working_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|e| {
            ComponentError::startup(
                format!("receiver {id}: starting `{}`", config.command.join(" ")),
                e,
            )
        })?;
        let pid = child.id();
        info!(receiver = %id, pid, command = %config.command.join(" "), "Process started.");
        let now = Instant::now();
        let passthrough = config.passthrough;
        // One chain per stream (a traceback on stderr joins on stderr); the compiled operators are not `Sync`,
        // so they are done with before the first await.
        let (out_chain, err_chain) = (operators.chain(), operators.chain());
        drop(operators);
        let stream = |name, reader: Option<Box<dyn AsyncRead + Unpin + Send>>, out, chain| Stream {
            name,
            reader,
            passthrough: passthrough.then_some(out),
            splitter: Splitter::new(0),
            chain,
            last_data: now,
            flushed: true,
        };
        let stdout: Box<dyn AsyncWrite + Unpin + Send> = Box::new(tokio::io::stdout());
        let stderr: Box<dyn AsyncWrite + Unpin + Send> = Box::new(tokio::io::stderr());
        let mut streams = [
            stream(
                "stdout",
                child
                    .stdout
                    .take()
                    .map(|r| Box::new(r) as Box<dyn AsyncRead + Unpin + Send>),
                stdout,
                out_chain,
            ),
            stream(
                "stderr",
                child
                    .stderr
                    .take()
                    .map(|r| Box::new(r) as Box<dyn AsyncRead + Unpin + Send>),
                stderr,
                err_chain,
            ),
        ];
        let (verdicts, mut settled) = mpsc::unbounded_channel();
        let mut resource = Map::new();
        resource.insert(
            "process.command".into(),
            Value::String(config.command.join(" ")),
        );
        if let Some(pid) = pid {
            resource.insert("process.pid".into(), Value::from(pid));
        }
        let mut capture = Capture {
            fanout: fanout.with_queue_wait(QUEUE_WAIT),
            budget,
            split: SplitOptions {
                max_size: usize::try_from(config.max_log_size).unwrap_or(usize::MAX),
                multiline: None,
                preserve_leading: true,
                preserve_trailing: false,
            },
            force_flush: config.force_flush_period,
            resource,
            builder: Builder::default(),
            batch_opened: None,
            in_flight: 0,
            retries: VecDeque::new(),
            verdicts,
            undelivered_lines: 0,
        };
        drop(cx.outputs);
        let (mut sigterm, mut sigint) = (
            listen(SignalKind::terminate()),
            listen(SignalKind::interrupt()),
        );
        let mut forwarded = false;
        let mut exited_at: Option<Instant> = None;
        let mut given_up = false;
        let (mut out_buf, mut err_buf) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        loop {
            while let Ok((kept, outcome)) = settled.try_recv() {
                capture.settle(kept, outcome);
            }
            capture.send_due().await;
            let [out, err] = &mut streams;
            let pipes_open = out.reader.is_some() || err.reader.is_some();
            if !pipes_open {
                exited_at.get_or_insert_with(Instant::now);
                capture.flush_batch().await;
                if capture.in_flight == 0 && capture.retries.is_empty() {
                    break;
                }
                if given_up
                    || cx.shutdown.is_cancelled()
                        && exited_at.is_some_and(|t| t.elapsed() > SHUTDOWN_RETRY)
                {
                    capture.undelivered_lines += capture
                        .retries
                        .iter()
                        .map(|(_, k)| k.records)
                        .sum::<usize>();
                    break;
                }
            }
            // Back-pressure: no reading while the in-flight batches are all out.
            let reading = capture.in_flight < MAX_IN_FLIGHT;
            tokio::select! {
                n = read(&mut out.reader, &mut out_buf), if reading && out.reader.is_some() => {
                    capture.take(out, &out_buf[..n]).await;
                }
                n = read(&mut err.reader, &mut err_buf), if reading && err.reader.is_some() => {
                    capture.take(err, &err_buf[..n]).await;
                }
                verdict = settled.recv() => {
                    if let Some((kept, outcome)) = verdict {
                        capture.settle(kept, outcome);
                    }
                }
                () = cx.shutdown.cancelled(), if !forwarded => {
                    forwarded = true;
                    forward(&id, pid, rustix::process::Signal::TERM);
                }
                Some(()) = recv(&mut sigterm) => {
                    given_up |= exited_at.is_some();
                    forward(&id, pid, rustix::process::Signal::TERM);
                }
                Some(()) = recv(&mut sigint) => {
                    given_up |= exited_at.is_some();
                    forward(&id, pid, rustix::process::Signal::INT);
                }
                () = tokio::time::sleep(TICK) => {}
            }
            for stream in &mut streams {
                capture.force_flush(stream);
            }
            capture.batch_if_due().await;
        }
        // The pipes are closed, but a child may close them and live on: signals still go to it meanwhile.
        let status = loop {
            tokio::select! {
                status = child.wait() => break status.map_err(|e| {
                    ComponentError::failed(format!("receiver {id}: waiting for the process"), e)
                })?,
                () = cx.shutdown.cancelled(), if !forwarded => {
                    forwarded = true;
                    forward(&id, pid, rustix::process::Signal::TERM);
                }
                Some(()) = recv(&mut sigterm) => forward(&id, pid, rustix::process::Signal::TERM),
                Some(()) = recv(&mut sigint) => forward(&id, pid, rustix::process::Signal::INT),
            }
        };
        let exit_code = exit_code(status);
        if capture.undelivered_lines > 0 {
            return Err(ComponentError::failed(
                format!("receiver {id}"),
                format!(
                    "the process exited ({status}) with {} of its lines undelivered",
                    capture.undelivered_lines
                ),
            ));
        }
        info!(receiver = %id, exit_code, "Process exited; its output is delivered.");
        cx.stop.request(exit_code);
        Ok(())
    }
}

/// The exit code a shell would report for `status`: the child's own, or 128+N after death by signal N.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signo)) => u8::try_from(128 + signo).unwrap_or(255),
        (None, None) => 1,
    }
}

/// Watches one of the signals the child gets forwarded; `None` (with a warning) if it cannot be watched.
fn listen(kind: SignalKind) -> Option<SignalStream> {
    signal(kind)
        .inspect_err(|e| warn!(error = %e, signal = kind.as_raw_value(), "Cannot watch a signal to forward it to the process."))
        .ok()
}

async fn recv(stream: &mut Option<SignalStream>) -> Option<()> {
    match stream {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends `sig` to the child (it may have exited already: nothing to do then).
fn forward(id: &str, pid: Option<u32>, sig: rustix::process::Signal) {
    if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        info!(receiver = %id, pid = pid.as_raw_nonzero().get(), signal = ?sig, "Forwarding a signal to the process.");
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Reads from a pipe; 0 bytes (EOF or error) closes it.
async fn read(reader: &mut Option<Box<dyn AsyncRead + Unpin + Send>>, buf: &mut [u8]) -> usize {
    let n = match reader.as_mut() {
        Some(r) => r.read(buf).await.unwrap_or(0),
        None => 0,
    };
    if n == 0 {
        *reader = None;
    }
    n
}

impl Capture {
    /// Bytes from a pipe: through to otlake's own stream, then into lines.
    async fn take(&mut self, stream: &mut Stream, bytes: &[u8]) {
        if let Some(out) = &mut stream.passthrough {
            // Passthrough is best effort: a closed stdout of otlake must not stop the capture.
            if out.write_all(bytes).await.is_err() || out.flush().await.is_err() {
                stream.passthrough = None;
            }
        }
        let mut pieces = Vec::new();
        if bytes.is_empty() {
            // The pipe closed: what it held is complete.
            stream.splitter.flush(&self.split, &mut pieces);
            self.entries(stream, pieces, true);
            return;
        }
        stream.last_data = Instant::now();
        stream.flushed = false;
        stream.splitter.push(&self.split, bytes, &mut pieces);
        self.entries(stream, pieces, false);
        if self.builder.records() >= MAX_BATCH_RECORDS || self.builder.bytes() >= MAX_BATCH_BYTES {
            self.flush_batch().await;
        }
    }

    fn entries(&mut self, stream: &mut Stream, pieces: Vec<Piece>, flush: bool) {
        let observed = now_nanos();
        let mut entries = Vec::new();
        for piece in pieces {
            let mut entry = Entry::line(piece.text, piece.start, piece.end);
            entry
                .attributes
                .insert("log.iostream".into(), Value::String(stream.name.to_owned()));
            entry.resource = self.resource.clone();
            if let Some(size) = piece.truncated_from {
                entry.mark_truncated(size);
            }
            stream.chain.process(entry, &mut entries);
        }
        if flush {
            stream.chain.flush(&mut entries);
        }
        for entry in entries {
            self.batch_opened.get_or_insert_with(Instant::now);
            self.builder.push(entry, observed);
        }
    }

    fn force_flush(&mut self, stream: &mut Stream) {
        if stream.flushed
            || self.force_flush.is_zero()
            || stream.last_data.elapsed() < self.force_flush
        {
            return;
        }
        stream.flushed = true;
        let mut pieces = Vec::new();
        stream.splitter.flush(&self.split, &mut pieces);
        self.entries(stream, pieces, true);
    }

    async fn batch_if_due(&mut self) {
        if self
            .batch_opened
            .is_some_and(|t| t.elapsed() >= BATCH_DELAY)
        {
            self.flush_batch().await;
        }
    }

    async fn flush_batch(&mut self) {
        self.batch_opened = None;
        if self.builder.records() == 0 {
            return;
        }
        let builder = std::mem::take(&mut self.builder);
        let (records, bytes) = (builder.records(), builder.bytes());
        let payload = builder.finish().payload;
        self.retries.push_back((
            Instant::now(),
            Kept {
                payload,
                records,
                bytes,
            },
        ));
        self.send_due().await;
    }

    /// Sends the batches whose time has come, while slots and memory allow.
    async fn send_due(&mut self) {
        while self.in_flight < MAX_IN_FLIGHT
            && self
                .retries
                .front()
                .is_some_and(|(at, _)| *at <= Instant::now())
        {
            let Some((_, kept)) = self.retries.pop_front() else {
                break;
            };
            let Some(reservation) = self.budget.try_reserve(kept.bytes as u64) else {
                self.retries.push_front((Instant::now() + TICK, kept));
                return;
            };
            let (ack, verdict) = Ack::new();
            ack.hold(reservation);
            let batch = Batch::new(kept.payload.clone(), AckSet::single(ack));
            self.fanout.send(batch).await;
            self.in_flight += 1;
            let verdicts = self.verdicts.clone();
            tokio::spawn(async move {
                let outcome = verdict.wait().await.outcome;
                let _ = verdicts.send((kept, outcome));
            });
        }
    }

    fn settle(&mut self, kept: Kept, outcome: Outcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Delivered => {}
            Outcome::Rejected { reason } => {
                warn!(
                    reason,
                    lines = kept.records,
                    "An exporter refused the process's lines for good."
                );
            }
            Outcome::Retryable { retry_after, .. } => {
                let at = Instant::now() + retry_after.unwrap_or(RETRY_AFTER);
                self.retries.push_back((at, kept));
            }
        }
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(script: &str) -> std::process::ExitStatus {
        std::process::Command::new("sh")
            .args(["-c", script])
            .status()
            .expect("sh runs")
    }

    #[test]
    fn the_exit_code_is_the_childs_or_128_plus_the_signal_that_killed_it() {
        assert_eq!(exit_code(status_of("exit 3")), 3);
        assert_eq!(exit_code(status_of("exit 0")), 0);
        assert_eq!(exit_code(status_of("kill -TERM $$")), 128 + 15);
        assert_eq!(exit_code(status_of("kill -KILL $$")), 128 + 9);
    }
}
