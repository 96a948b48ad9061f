//! A TLS listener for `axum::serve`: accepts TCP connections and hands over only those whose TLS handshake
//! completed.
//!
//! Why not handshake inside `accept`: `axum::serve` calls `accept` in one loop, so one slow or silent client
//! would stall every other connection. Handshakes run as tasks of their own instead, each bounded by
//! [`HANDSHAKE_TIMEOUT`], at most [`MAX_PENDING_HANDSHAKES`] at a time (further connections wait in the
//! kernel's backlog). A failed handshake (plain text on a TLS port, an untrusted or missing client certificate)
//! closes that connection only and is logged at debug level.
//!
//! Lifecycle: made in `run` once the socket is bound; dropped by `axum::serve` at shutdown, which aborts the
//! handshakes still pending.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longest a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once.
pub const MAX_PENDING_HANDSHAKES: usize = 256;

type Handshake = (io::Result<TlsStream<TcpStream>>, SocketAddr);

/// Wraps a TCP listener (`L`) so that `accept` returns TLS streams.
pub struct TlsListener<L> {
    inner: L,
    acceptor: TlsAcceptor,
    pending: JoinSet<Handshake>,
}

impl<L> TlsListener<L> {
    pub fn new(inner: L, config: Arc<rustls::ServerConfig>) -> Self {
        TlsListener {
            inner,
            acceptor: TlsAcceptor::from(config),
            pending: JoinSet::new(),
        }
    }

    fn start_handshake(&mut self, tcp: TcpStream, peer: SocketAddr) {
        let acceptor = self.acceptor.clone();
        self.pending.spawn(async move {
            let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS handshake timed out",
                    ))
                });
            (result, peer)
        });
    }
}

impl<L> Listener for TlsListener<L>
where
    L: Listener<Io = TcpStream, Addr = SocketAddr>,
{
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.pending.len() < MAX_PENDING_HANDSHAKES;
            tokio::select! {
                // Both branches are cancel-safe: an accepted connection is owned by a task at once, and a
                // finished handshake stays in the set until it is taken.
                (tcp, peer) = self.inner.accept(), if room => self.start_handshake(tcp, peer),
                Some(done) = self.pending.join_next(), if !self.pending.is_empty() => match done {
                    Ok((Ok(stream), peer)) => return (stream, peer),
                    Ok((Err(err), peer)) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed; connection closed.");
                    }
                    Err(err) => tracing::debug!(error = %err, "TLS handshake task ended abnormally."),
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
