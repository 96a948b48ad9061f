//! A consumer of the sending queue: takes a request, delivers it with retries, settles it.
//!
//! Per request: encode once (off the reactor), then attempt, each attempt bounded by `timeout`. A retryable
//! failure waits per [`Backoff`] (at least the server's requested delay) and tries again until
//! `max_elapsed_time`; then the request settles `Retryable` (the client sends it again: nothing is lost). A
//! permanent failure settles `Rejected` at once; so does a refusal of the exporter itself (401, 403, 404, 413),
//! except behind a write-ahead log, where it settles `Retryable` at once so the log keeps the entry. Success settles `Delivered`, with the destination's partial
//! success passed on as rejected items.
//!
//! Shutdown: once the input closes, the exporter starts a [`DrainDeadline`] (`max_elapsed_time` from then, or
//! one `timeout` when retries are off). Requests still queued are tried until that instant; what is left
//! afterwards settles `Retryable` at once, so a dead destination cannot hold the daemon's shutdown for
//! `max_elapsed_time` per queued request.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, error, warn};

use otlake_core::{ComponentId, Outcome, Verdict, telemetry};

use crate::config::SenderSettings;
use crate::queue::{Lease, SendingQueue};
use crate::retry::Backoff;
use crate::transport::{Accepted, SendError, Transport};

/// Set once, when the input closes: requests are tried until this instant, then settled `Retryable`.
#[derive(Clone, Debug, Default)]
pub struct DrainDeadline(Arc<OnceLock<Instant>>);

impl DrainDeadline {
    /// Starts the drain: `budget` from now (`None`: retries never give up, so neither does the drain).
    pub fn start(&self, budget: Option<Duration>) {
        if let Some(budget) = budget {
            let _ = self.0.set(Instant::now() + budget);
        }
    }

    fn get(&self) -> Option<Instant> {
        self.0.get().copied()
    }

    /// True when draining and `wait` from now would end past the deadline.
    fn exceeded_by(&self, wait: Duration) -> bool {
        self.get().is_some_and(|deadline| {
            Instant::now()
                .checked_add(wait)
                .is_none_or(|end| end > deadline)
        })
    }
}

impl SenderSettings {
    /// How long the drain at shutdown may take (see the module docs).
    pub fn drain_budget(&self) -> Option<Duration> {
        if self.retry.enabled {
            (!self.retry.max_elapsed_time.is_zero()).then_some(self.retry.max_elapsed_time)
        } else {
            Some(self.timeout.unwrap_or(Duration::from_secs(30)))
        }
    }
}

/// Runs until the queue is closed and drained.
pub async fn consume(
    queue: Arc<dyn SendingQueue>,
    transport: Arc<dyn Transport>,
    settings: Arc<SenderSettings>,
    drain: DrainDeadline,
    id: ComponentId,
) {
    while let Some(lease) = queue.pop().await {
        let verdict = deliver(&transport, &lease, &settings, &drain, &id).await;
        record(&id, &lease, &verdict);
        lease.settle(verdict);
    }
}

fn record(id: &ComponentId, lease: &Lease, verdict: &Verdict) {
    let rejected = verdict.rejected_items;
    let rejected = usize::try_from(rejected)
        .unwrap_or(usize::MAX)
        .min(lease.items);
    telemetry::record_export(id, lease.signal(), lease.items - rejected, &verdict.outcome);
    if rejected > 0 {
        telemetry::record_export(
            id,
            lease.signal(),
            rejected,
            &Outcome::rejected("partial success"),
        );
    }
}

/// One attempt, bounded by the configured timeout.
async fn attempt(
    transport: &dyn Transport,
    lease: &Lease,
    body: &bytes::Bytes,
    timeout: Option<Duration>,
) -> Result<Accepted, SendError> {
    let send = transport.send(lease.signal(), body);
    match timeout {
        None => send.await,
        Some(limit) => tokio::time::timeout(limit, send).await.unwrap_or_else(|_| {
            Err(SendError::retryable(format!(
                "no answer within the timeout of {limit:?}"
            )))
        }),
    }
}

/// Delivers one request; see the module docs.
pub async fn deliver(
    transport: &Arc<dyn Transport>,
    lease: &Lease,
    settings: &SenderSettings,
    drain: &DrainDeadline,
    id: &ComponentId,
) -> Verdict {
    let signal = lease.signal();
    if drain.exceeded_by(Duration::ZERO) {
        return failed(
            id,
            lease,
            SendError::retryable("shutting down: not sent before the drain deadline"),
            0,
        );
    }
    let encoding = {
        let transport = Arc::clone(transport);
        let payload = Arc::clone(&lease.payload);
        tokio::task::spawn_blocking(move || transport.encode(&payload)).await
    };
    let body = match encoding {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => return failed(id, lease, e, 0),
        Err(join) => {
            return failed(
                id,
                lease,
                SendError::retryable(format!("encoding the request failed: {join}")),
                0,
            );
        }
    };

    let started = Instant::now();
    let mut backoff = Backoff::new(&settings.retry);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match attempt(transport.as_ref(), lease, &body, settings.timeout).await {
            Ok(accepted) => {
                debug!(exporter = %id, %signal, items = lease.items, bytes = body.len(), attempts, "Request delivered.");
                return delivered(id, lease, accepted);
            }
            Err(e @ SendError::Permanent { .. }) => return failed(id, lease, e, attempts),
            // Behind a write-ahead log a refusal of ours (credentials, path) must not delete the entry: the
            // log keeps it and sends it again after its own backoff, once the operator fixed the cause.
            Err(SendError::Refused { reason }) if lease.logged => {
                error!(
                    exporter = %id, %signal, items = lease.items, attempts, %reason,
                    "Destination refuses this exporter (credentials, path or size limit); the write-ahead log keeps the data and sends it again."
                );
                return failed(id, lease, SendError::retryable(reason), attempts);
            }
            Err(e @ SendError::Refused { .. }) => return failed(id, lease, e, attempts),
            Err(SendError::Retryable {
                reason,
                retry_after,
            }) => match backoff
                .next_wait(retry_after, started.elapsed())
                .filter(|wait| !drain.exceeded_by(*wait))
            {
                Some(wait) => {
                    warn!(
                        exporter = %id, %signal, items = lease.items, attempts,
                        wait_ms = wait.as_millis() as u64, %reason,
                        "Request failed; retrying."
                    );
                    tokio::time::sleep(wait).await;
                }
                None => {
                    return failed(
                        id,
                        lease,
                        SendError::Retryable {
                            reason,
                            retry_after,
                        },
                        attempts,
                    );
                }
            },
        }
    }
}

fn delivered(id: &ComponentId, lease: &Lease, accepted: Accepted) -> Verdict {
    let rejection_message = if accepted.rejected_items > 0 {
        let message = accepted
            .message
            .unwrap_or_else(|| "refused by the destination".into());
        warn!(
            exporter = %id, signal = %lease.signal(), rejected = accepted.rejected_items, %message,
            "Destination accepted the request but refused some items."
        );
        Some(message)
    } else {
        if let Some(message) = accepted.message {
            warn!(exporter = %id, signal = %lease.signal(), %message, "Destination accepted the request with a warning.");
        }
        None
    };
    Verdict {
        outcome: Outcome::Delivered,
        rejected_items: accepted.rejected_items,
        rejection_message,
    }
}

fn failed(id: &ComponentId, lease: &Lease, error: SendError, attempts: u32) -> Verdict {
    let signal = lease.signal();
    let outcome = match error {
        SendError::Permanent { reason } | SendError::Refused { reason } => {
            error!(
                exporter = %id, %signal, items = lease.items, attempts, %reason,
                "Destination rejected a request; its data is dropped and the client is told not to retry."
            );
            Outcome::Rejected { reason }
        }
        SendError::Retryable {
            reason,
            retry_after,
        } => {
            warn!(
                exporter = %id, %signal, items = lease.items, attempts, %reason,
                "Giving up on a request; the client is told to retry."
            );
            Outcome::Retryable {
                reason: format!(
                    "{reason} (after {attempts} attempt{})",
                    if attempts == 1 { "" } else { "s" }
                ),
                retry_after,
            }
        }
    };
    Verdict {
        outcome,
        rejected_items: 0,
        rejection_message: None,
    }
}
