//! Serving one listener: our own accept loop around hyper-util's connection builder.
//!
//! Why not `axum::serve`: it runs hyper without a timer, so no header, idle or keep-alive timeout can apply, and
//! it accepts without limit: a slow or silent client holds its connection (a file descriptor and buffers) for
//! ever, and one slow body holds shutdown to the service's grace deadline. Here:
//! - **Connection cap**: at [`ConnectionLimits::max_connections`] the loop stops accepting; further clients wait
//!   in the kernel's backlog (they are not reset) and are accepted as soon as a connection ends.
//! - **First bytes**: a connection that sends nothing at all within [`FIRST_BYTES_TIMEOUT`] is closed (before
//!   its first bytes, hyper-util cannot tell HTTP/1 from HTTP/2, so no other timeout runs yet).
//! - **HTTP/1 headers**: hyper's `header_read_timeout`. Its clock also runs while a keep-alive connection waits
//!   for its next request, so it bounds that wait too.
//! - **Idle**: a connection with no request in flight for `idle_timeout` is closed gracefully (HTTP/1: closed
//!   between requests; HTTP/2: GOAWAY), as [`Activity`] tracks.
//! - **Age** (gRPC's `max_connection_age`): a connection older than this is closed gracefully, and dropped
//!   `max_connection_age_grace` later if its requests have not finished.
//! - **HTTP/2 keep-alive pings** and `max_concurrent_streams`: hyper's own settings.
//! - **TLS**: the handshake runs in the connection's task (so it counts against the cap), bounded by
//!   [`HANDSHAKE_TIMEOUT`]; a failed handshake closes that connection only.
//!
//! Shutdown: when `shutdown` fires the loop stops accepting and drops the listener (new clients are refused by
//! the kernel), every open connection is told to finish (HTTP/1 closes after its current request, HTTP/2 sends
//! GOAWAY), and [`serve`] returns once the last one has ended. A request body that trickles in is bounded by the
//! handler's own read timeout (HTTP `read_timeout`), so it cannot hold shutdown longer than that.

use std::future::{Future, pending};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection may stay silent after it is accepted (after its TLS handshake, if any).
pub const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);
/// After an accept error other than a dropped connection (such as running out of file descriptors), wait this
/// long before accepting again instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// What bounds the connections of one listener. `None` means no limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once (at least 1).
    pub max_connections: usize,
    /// HTTP/1: longest wait for a request's headers, including the wait for the next request on a keep-alive
    /// connection.
    pub header_read_timeout: Option<Duration>,
    /// A connection with no request in flight for this long is closed gracefully.
    pub idle_timeout: Option<Duration>,
    /// A connection older than this is closed gracefully.
    pub max_age: Option<Duration>,
    /// ... and dropped this long after that if its requests have not finished.
    pub max_age_grace: Option<Duration>,
    /// HTTP/2: ping an idle connection this often ...
    pub keepalive_interval: Option<Duration>,
    /// ... and close it when a ping is not answered within this.
    pub keepalive_timeout: Duration,
    /// HTTP/2: streams (requests) in flight at once on one connection.
    pub max_concurrent_streams: Option<u32>,
}

fn builder(limits: &ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams);
    builder
}

/// Serves `app` on `listener` (over TLS when `tls` is set) within `limits` until `shutdown` fires and every
/// open connection has finished.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let builder = Arc::new(builder(&limits));
    let limits = Arc::new(limits);
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    loop {
        // At the cap, stop accepting: the next clients wait in the kernel's backlog, not reset.
        let slot = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_closed) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot accept a connection; pausing before the next accept.");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        // Small request/response exchanges: Nagle's algorithm would only add latency.
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            builder: Arc::clone(&builder),
            limits: Arc::clone(&limits),
            app: app.clone(),
            shutdown: shutdown.clone(),
            _slot: slot,
        };
        connections.spawn(connection.run(tcp, peer, acceptor.clone()));
    }
    // New clients are refused from here on; the open connections finish on their own.
    drop(listener);
    drop(app);
    connections.close();
    connections.wait().await;
}

/// Errors that concern one connection only (the client went away before it was accepted).
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One accepted connection and what it needs; holds its slot under the cap until it ends.
struct Connection {
    builder: Arc<Builder<TokioExecutor>>,
    limits: Arc<ConnectionLimits>,
    app: Router,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, tcp: TcpStream, peer: SocketAddr, acceptor: Option<TlsAcceptor>) {
        let Some(acceptor) = acceptor else {
            return self.drive(tcp, peer).await;
        };
        let handshake = tokio::select! {
            () = self.shutdown.cancelled() => return,
            handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => handshake,
        };
        match handshake {
            Ok(Ok(tls)) => self.drive(tls, peer).await,
            Ok(Err(err)) => {
                tracing::debug!(%peer, error = %err, "TLS handshake failed; connection closed.");
            }
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out; connection closed."),
        }
    }

    /// Serves HTTP on `io` until the connection ends, closing it when a limit says so.
    async fn drive<I>(self, io: I, peer: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let started = Instant::now();
        let io = FirstBytes::new(io);
        let heard = Arc::clone(&io.heard);
        let activity = Activity::new(started);
        let service = TowerToHyperService::new(Tracked {
            inner: self.app,
            activity: activity.clone(),
        });
        let connection = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let limits = &self.limits;
        let first_bytes_deadline = started + FIRST_BYTES_TIMEOUT;
        let age_deadline = limits.max_age.map(|age| started + age);
        // Set once the connection has been told to finish: no further limit applies, except the grace below.
        let mut closing = false;
        let mut drop_deadline: Option<Instant> = None;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, error = %err, "Connection ended with an error.");
                    }
                    return;
                }
                () = self.shutdown.cancelled(), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = tokio::time::sleep_until(first_bytes_deadline), if !heard.load(Ordering::Relaxed) => {
                    // Checked again: the flag may have been set since the branch was enabled.
                    if !heard.load(Ordering::Relaxed) {
                        tracing::debug!(%peer, "Connection sent nothing; closed.");
                        return;
                    }
                }
                () = activity.idle_for(limits.idle_timeout), if !closing => {
                    tracing::debug!(%peer, "Idle connection closed.");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = sleep_until(age_deadline), if !closing => {
                    tracing::debug!(%peer, "Connection reached max_connection_age; closing.");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                    drop_deadline = limits.max_age_grace.map(|grace| Instant::now() + grace);
                }
                () = sleep_until(drop_deadline) => {
                    tracing::debug!(%peer, "Connection outlived max_connection_age_grace; dropped.");
                    return;
                }
            }
        }
    }
}

/// Sleeps until `deadline`, or for ever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => pending().await,
    }
}

/// Tracks the requests in flight on one connection, to tell when it has been idle for how long.
#[derive(Clone)]
struct Activity(Arc<ActivityState>);

struct ActivityState {
    /// Requests in flight, and since when the connection has been idle (its start, or the last request's end).
    state: Mutex<(usize, Instant)>,
    changed: Notify,
}

impl Activity {
    fn new(started: Instant) -> Self {
        Activity(Arc::new(ActivityState {
            state: Mutex::new((0, started)),
            changed: Notify::new(),
        }))
    }

    fn begin(&self) -> InFlight {
        if let Ok(mut state) = self.0.state.lock() {
            state.0 += 1;
        }
        self.0.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Resolves once no request has been in flight for `limit` (never without a limit).
    async fn idle_for(&self, limit: Option<Duration>) {
        let Some(limit) = limit else {
            return pending().await;
        };
        loop {
            // Registered before the state is read, so a change in between is not missed.
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let state = self.0.state.lock().map(|state| *state).ok();
            let Some((in_flight, idle_since)) = state else {
                return pending().await;
            };
            if in_flight > 0 {
                changed.await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep_until(idle_since + limit) => return,
                () = changed => {}
            }
        }
    }
}

/// One request in flight; its end is recorded when dropped.
struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.0.state.lock() {
            state.0 = state.0.saturating_sub(1);
            state.1 = Instant::now();
        }
        self.0.0.changed.notify_waiters();
    }
}

/// The application, counting each request in flight on the connection's [`Activity`].
#[derive(Clone)]
struct Tracked {
    inner: Router,
    activity: Activity,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<B> tower::Service<http::Request<B>> for Tracked
where
    Router: tower::Service<http::Request<B>>,
    <Router as tower::Service<http::Request<B>>>::Future: Send + 'static,
{
    type Response = <Router as tower::Service<http::Request<B>>>::Response;
    type Error = <Router as tower::Service<http::Request<B>>>::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<http::Request<B>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let in_flight = self.activity.begin();
        let response = tower::Service::<http::Request<B>>::call(&mut self.inner, request);
        Box::pin(async move {
            let response = response.await;
            drop(in_flight);
            response
        })
    }
}

/// An I/O stream that notes whether the client has sent anything yet.
struct FirstBytes<I> {
    inner: I,
    heard: Arc<AtomicBool>,
}

impl<I> FirstBytes<I> {
    fn new(inner: I) -> Self {
        FirstBytes {
            inner,
            heard: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstBytes<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.heard.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstBytes<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
