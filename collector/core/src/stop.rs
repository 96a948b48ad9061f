//! [`StopHandle`]: how a receiver ends the daemon on its own, with the exit code the daemon should end with.
//!
//! A daemon normally runs until it is told to stop (a signal). One receiver owns the daemon's lifetime instead:
//! `process` (`otlake run -- CMD`), whose child's exit is the daemon's end, and whose exit code is the daemon's.
//! It asks through the handle in its [`crate::ReceiverContext`]; the service then shuts down as it does for a
//! signal (receivers stop, pipelines drain, exporters make what they hold durable) and reports the code. A
//! receiver that asks should have delivered what it holds first: the drain that follows does not wait for
//! data the receiver still keeps.
//!
//! The first request wins; later ones are ignored (two children cannot both decide the exit code).

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// A clonable request line from the receivers to the service. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct StopHandle {
    inner: Arc<Requested>,
}

#[derive(Debug, Default)]
struct Requested {
    exit_code: OnceLock<u8>,
    signalled: CancellationToken,
}

impl StopHandle {
    /// A handle no service watches: for running a receiver outside the service (tests, benches).
    pub fn new() -> Self {
        StopHandle::default()
    }

    /// Asks the service to stop the daemon and exit with `exit_code`. The first request wins.
    pub fn request(&self, exit_code: u8) {
        let _ = self.inner.exit_code.set(exit_code);
        self.inner.signalled.cancel();
    }

    /// The exit code asked for, if a receiver asked.
    pub fn requested(&self) -> Option<u8> {
        self.inner.exit_code.get().copied()
    }

    /// Completes when a receiver asks, with the exit code it asked for.
    pub async fn wait(&self) -> u8 {
        self.inner.signalled.cancelled().await;
        self.requested().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_request_wins_and_wakes_the_waiter() {
        let handle = StopHandle::new();
        assert_eq!(handle.requested(), None);
        let waiter = tokio::spawn({
            let handle = handle.clone();
            async move { handle.wait().await }
        });
        handle.clone().request(3);
        handle.request(0);
        assert_eq!(waiter.await.expect("joins"), 3);
        assert_eq!(handle.requested(), Some(3));
    }
}
