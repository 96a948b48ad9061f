//! What the writer hands the dispatcher (and recovery seeds it with), and the helpers both halves use.

use std::sync::Arc;

use otlake_core::{ComponentError, Payload, RequestMeta, Reservation};
use tokio::time::Instant;

use crate::log::{Location, Wal};

/// One entry the writer appended, on its way to the dispatcher.
/// Entries handed to the exporter and not yet answered, at most (also the exporter channel's capacity).
pub const MAX_IN_FLIGHT_ENTRIES: usize = 1024;

pub(super) struct Appended {
    pub(super) sequence: u64,
    pub(super) location: Location,
    pub(super) bytes: u64,
    /// The batch's payload, if the memory budget allowed keeping it (else it is read back from disk).
    pub(super) payload: Option<Arc<Payload>>,
    /// The payload's share of the daemon's memory budget, while it is kept.
    pub(super) reservation: Option<Reservation>,
    pub(super) meta: Arc<RequestMeta>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Waiting,
    InFlight,
    Done,
    Failed,
}

pub(super) struct Pending {
    pub(super) sequence: u64,
    pub(super) location: Location,
    pub(super) bytes: u64,
    pub(super) payload: Option<Arc<Payload>>,
    pub(super) meta: Option<Arc<RequestMeta>>,
    /// The payload counts against the writer's memory budget until first dispatched.
    pub(super) in_budget: bool,
    /// The kept payload's share of the daemon's memory budget; handed to the exporter's acknowledgement.
    pub(super) reservation: Option<Reservation>,
    pub(super) state: State,
}

/// Runs blocking log I/O off the reactor, handing the log there and back.
pub(super) async fn with_wal<T: Send + 'static>(
    wal: Wal,
    f: impl FnOnce(&mut Wal) -> T + Send + 'static,
) -> Result<(Wal, T), ComponentError> {
    tokio::task::spawn_blocking(move || {
        let mut wal = wal;
        let out = f(&mut wal);
        (wal, out)
    })
    .await
    .map_err(|e| ComponentError::failed("write-ahead log task", e))
}

pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
