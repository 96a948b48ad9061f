//! Test servers and helpers: an OTLP/HTTP server (axum) and an OTLP/gRPC trace server (tonic) that record what
//! arrived (decompressed and decoded), can hold requests behind a gate, and answer from a script.

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use otlake_core::batch::channel;
use otlake_core::proto::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use otlake_core::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use otlake_core::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use otlake_core::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otlake_core::{
    AckReceiver, BatchSender, ComponentId, ExporterContext, ExporterFactory, Payload, Signal,
    Verdict,
};

/// The longest any test waits for one thing.
pub const WAIT: Duration = Duration::from_secs(20);

/// Retry settings that keep tests quick: 50 ms first wait, give up after 20 s.
pub fn fast_retry() -> serde_json::Value {
    serde_json::json!({
        "initial_interval": "50ms",
        "max_interval": "200ms",
        "max_elapsed_time": "20s",
    })
}

/// An exporter running in a task, fed through a bounded channel.
pub struct Running {
    pub input: BatchSender,
    pub task: JoinHandle<otlake_core::Result<()>>,
}

/// Builds an exporter with `factory` and `config` and runs it.
pub fn start(
    factory: &dyn ExporterFactory,
    config: serde_json::Value,
    signals: &[Signal],
) -> Running {
    let id = ComponentId::new(factory.type_name());
    let exporter = factory
        .build(&id, &config, signals)
        .expect("a valid configuration");
    let (input, rx) = channel("otlp-test", 2);
    let task = tokio::spawn(exporter.run(rx, ExporterContext { id }));
    Running { input, task }
}

impl Running {
    /// Closes the input and waits for the exporter to return.
    pub async fn stop(self) {
        drop(self.input);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the exporter returns after its input closed")
            .expect("no panic")
            .expect("run ends with Ok");
    }
}

pub async fn verdict(rx: AckReceiver) -> Verdict {
    tokio::time::timeout(WAIT, rx.wait())
        .await
        .expect("the acknowledgement resolves in time")
}

/// One request a test server received.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: HeaderMap,
    /// Size of the body after decompression (protobuf or JSON).
    pub decoded_len: usize,
    pub payload: Payload,
}

/// What a server saw, and a gate that holds requests before they are answered.
#[derive(Clone)]
pub struct Recorder {
    received: Arc<Mutex<Vec<Received>>>,
    gate: Arc<watch::Sender<bool>>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            received: Arc::default(),
            gate: Arc::new(watch::channel(true).0),
        }
    }

    /// Requests wait before being answered until `open_gate`.
    pub fn close_gate(&self) {
        self.gate.send_replace(false);
    }

    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    async fn pass_gate(&self) {
        let mut rx = self.gate.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }

    fn record(&self, received: Received) {
        self.received.lock().expect("lock").push(received);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().expect("lock").len()
    }
}

fn decompress(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    match encoding {
        None | Some("identity") => body.to_vec(),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("a valid gzip body");
            out
        }
        Some("zstd") => zstd::decode_all(body).expect("a valid zstd body"),
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// OTLP/HTTP

/// A scripted answer of the HTTP server; when the script is empty it answers 200 with an empty response.
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn status(status: u16) -> Self {
        HttpReply {
            status,
            headers: Vec::new(),
            content_type: "text/plain",
            body: format!("status {status}").into_bytes(),
        }
    }

    /// 200 with an empty protobuf trace response.
    pub fn default_ok() -> Self {
        HttpReply {
            status: 200,
            headers: Vec::new(),
            content_type: "application/x-protobuf",
            body: ExportTraceServiceResponse::default().encode_to_vec(),
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// 200 with a protobuf trace response that reports `rejected` spans.
    pub fn partial_traces(rejected: i64, message: &str) -> Self {
        HttpReply {
            status: 200,
            headers: Vec::new(),
            content_type: "application/x-protobuf",
            body: ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: message.to_owned(),
                }),
            }
            .encode_to_vec(),
        }
    }
}

#[derive(Clone)]
struct HttpState {
    recorder: Recorder,
    replies: Arc<Mutex<VecDeque<HttpReply>>>,
}

/// An OTLP/HTTP server on 127.0.0.1.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub recorder: Recorder,
    replies: Arc<Mutex<VecDeque<HttpReply>>>,
    task: JoinHandle<()>,
}

impl HttpServer {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr")).await
    }

    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        Self::serve(listener)
    }

    /// An OTLP/HTTPS server with `tls` (see [`crate::tls`]).
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> Self {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve(TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(tls),
        })
    }

    fn serve<L: axum::serve::Listener<Addr = SocketAddr>>(listener: L) -> Self {
        let addr = listener.local_addr().expect("addr");
        let state = HttpState {
            recorder: Recorder::new(),
            replies: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(handle_http)
            .layer(DefaultBodyLimit::max(256 << 20))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        HttpServer {
            addr,
            recorder: state.recorder,
            replies: state.replies,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn script(&self, reply: HttpReply) {
        self.replies.lock().expect("lock").push_back(reply);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle_http(
    State(state): State<HttpState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.recorder.pass_gate().await;
    let at = Instant::now();
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok());
    let raw = decompress(encoding, &body);
    let json = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/json");
    let path = uri.path().to_owned();
    fn parse<T: Message + Default + serde::de::DeserializeOwned>(raw: &[u8], json: bool) -> T {
        if json {
            serde_json::from_slice(raw).expect("valid OTLP/JSON")
        } else {
            T::decode(raw).expect("valid OTLP protobuf")
        }
    }
    let payload = if path.ends_with("traces") {
        Payload::Traces(parse::<ExportTraceServiceRequest>(&raw, json))
    } else if path.ends_with("logs") {
        Payload::Logs(parse::<ExportLogsServiceRequest>(&raw, json))
    } else {
        Payload::Metrics(parse::<ExportMetricsServiceRequest>(&raw, json))
    };
    let signal = payload.signal();
    state.recorder.record(Received {
        at,
        path,
        headers,
        decoded_len: raw.len(),
        payload,
    });
    let reply = state.replies.lock().expect("lock").pop_front();
    let reply = reply.unwrap_or_else(|| HttpReply {
        status: 200,
        headers: Vec::new(),
        content_type: "application/x-protobuf",
        body: match signal {
            Signal::Traces => ExportTraceServiceResponse::default().encode_to_vec(),
            Signal::Logs => ExportLogsServiceResponse::default().encode_to_vec(),
            Signal::Metrics => ExportMetricsServiceResponse::default().encode_to_vec(),
        },
    });
    let mut response_headers = HeaderMap::new();
    response_headers.insert("content-type", HeaderValue::from_static(reply.content_type));
    for (name, value) in reply.headers {
        response_headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
    }
    (
        StatusCode::from_u16(reply.status).expect("status"),
        response_headers,
        reply.body,
    )
        .into_response()
}

/// Accepts TCP connections and completes the TLS handshake; failed handshakes (the negative tests) are skipped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// A server-side TLS stream tonic can serve (tonic implements `Connected` for it only with its TLS features).
struct TlsIo(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for TlsIo {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl tokio::io::AsyncRead for TlsIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------------------
// OTLP/gRPC

/// A scripted answer of the gRPC server; when the script is empty it answers OK.
pub enum GrpcReply {
    Fail(tonic::Status),
    /// The handler panics: the connection breaks without a gRPC status (a gateway dying mid-request).
    Crash,
    Partial(i64, &'static str),
}

struct TraceSink {
    recorder: Recorder,
    replies: Arc<Mutex<VecDeque<GrpcReply>>>,
}

#[tonic::async_trait]
impl TraceService for TraceSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.recorder.pass_gate().await;
        let headers = request.metadata().clone().into_headers();
        let message = request.into_inner();
        self.recorder.record(Received {
            at: Instant::now(),
            path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export".into(),
            headers,
            decoded_len: message.encoded_len(),
            payload: Payload::Traces(message),
        });
        let reply = self.replies.lock().expect("lock").pop_front();
        match reply {
            None => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
            Some(GrpcReply::Fail(status)) => Err(status),
            Some(GrpcReply::Crash) => panic!("test server crashes mid-request (expected)"),
            Some(GrpcReply::Partial(rejected, message)) => {
                Ok(tonic::Response::new(ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: rejected,
                        error_message: message.to_owned(),
                    }),
                }))
            }
        }
    }
}

/// An OTLP/gRPC trace server on 127.0.0.1 (tonic's default 4 MiB message limit, gzip and zstd accepted).
pub struct GrpcServer {
    pub addr: SocketAddr,
    pub recorder: Recorder,
    replies: Arc<Mutex<VecDeque<GrpcReply>>>,
    task: JoinHandle<()>,
}

impl GrpcServer {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr")).await
    }

    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        Self::serve(addr, tonic::transport::server::TcpIncoming::from(listener))
    }

    /// An OTLP/gRPC server over TLS (`tls` must offer ALPN `h2`).
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> Self {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let incoming = futures::stream::unfold((tcp, acceptor), |(tcp, acceptor)| async move {
            loop {
                let Ok((stream, _)) = tcp.accept().await else {
                    continue;
                };
                if let Ok(tls) = acceptor.accept(stream).await {
                    return Some((Ok::<_, std::io::Error>(TlsIo(tls)), (tcp, acceptor)));
                }
            }
        });
        Self::serve(addr, Box::pin(incoming))
    }

    fn serve<I, IO, IE>(addr: SocketAddr, incoming: I) -> Self
    where
        I: futures::Stream<Item = Result<IO, IE>> + Send + 'static,
        IO: tokio::io::AsyncRead
            + tokio::io::AsyncWrite
            + tonic::transport::server::Connected
            + Unpin
            + Send
            + 'static,
        IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let recorder = Recorder::new();
        let replies: Arc<Mutex<VecDeque<GrpcReply>>> = Arc::default();
        let service = TraceServiceServer::new(TraceSink {
            recorder: recorder.clone(),
            replies: Arc::clone(&replies),
        })
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Zstd);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        GrpcServer {
            addr,
            recorder,
            replies,
            task,
        }
    }

    /// The `otlp` exporter's endpoint for this server (plain text).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, reply: GrpcReply) {
        self.replies.lock().expect("lock").push_back(reply);
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port that nothing listens on right now (bound, then released).
pub async fn free_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr")
}

/// The span ids of a trace payload, in order: what "intact" is checked on, with the payload equality.
pub fn span_ids(payload: &Payload) -> Vec<Vec<u8>> {
    match payload {
        Payload::Traces(r) => r
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|s| s.span_id.clone())
            .collect(),
        _ => Vec::new(),
    }
}
