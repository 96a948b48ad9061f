//! Test support: run a real receiver on 127.0.0.1 with port 0, pipelines the test controls, and real HTTP/1.1
//! and HTTP/2 (gRPC) clients. Every network wait is bounded.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use otlake_core::Factory;
use otlake_core::batch::channel;
use otlake_core::{
    Batch, BatchReceiver, ComponentId, Fanout, Outcome, Payload, ReceiverContext, RequestMeta,
    Signal,
};
use otlake_receiver_otlp::{OtlpReceiver, OtlpReceiverFactory};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Upper bound on any single wait in these tests (a hang fails the test instead of blocking CI).
pub const BOUND: Duration = Duration::from_secs(30);

pub async fn bounded<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(BOUND, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

/// Both protocols on free loopback ports, with `extra` merged in at the top level.
pub fn config(extra: Value) -> Value {
    let mut config = json!({"protocols": {
        "grpc": {"endpoint": "127.0.0.1:0"},
        "http": {"endpoint": "127.0.0.1:0"}
    }});
    if let (Some(base), Value::Object(extra)) = (config.as_object_mut(), extra) {
        base.extend(extra);
    }
    config
}

/// A running receiver.
pub struct Running {
    pub grpc: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<otlake_core::Result<()>>,
}

impl Running {
    pub fn http_addr(&self) -> SocketAddr {
        self.http.expect("http is configured")
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.expect("grpc is configured")
    }

    /// Fires shutdown and waits for `run` to return.
    pub async fn stop(self) -> otlake_core::Result<()> {
        self.shutdown.cancel();
        bounded("receiver shutdown", self.task)
            .await
            .expect("receiver task")
    }
}

/// Builds the receiver through its factory's parsing and runs it with `outputs`.
pub async fn start(config: Value, outputs: HashMap<Signal, Fanout>) -> Running {
    let config = OtlpReceiverFactory.parse(&config).expect("valid config");
    let receiver = OtlpReceiver::new(config);
    let bound = receiver.bound_addresses();
    let shutdown = CancellationToken::new();
    let cx = ReceiverContext {
        id: ComponentId::new("otlp"),
        outputs,
        shutdown: shutdown.clone(),
        stop: otlake_core::StopHandle::new(),
    };
    let task = tokio::spawn(otlake_core::Receiver::run(Box::new(receiver), cx));
    let addresses = bounded("bind", bound.wait())
        .await
        .expect("receiver bound its ports");
    Running {
        grpc: addresses.grpc,
        http: addresses.http,
        shutdown,
        task,
    }
}

/// One batch as a pipeline saw it.
type SeenBatch = (Arc<Payload>, Arc<RequestMeta>);

/// What the test pipelines saw: each batch's payload and metadata, in arrival order.
#[derive(Clone, Default)]
pub struct Seen {
    batches: Arc<Mutex<Vec<SeenBatch>>>,
}

impl Seen {
    pub fn payloads(&self) -> Vec<Payload> {
        self.batches
            .lock()
            .expect("lock")
            .iter()
            .map(|(p, _)| (**p).clone())
            .collect()
    }

    pub fn metas(&self) -> Vec<RequestMeta> {
        self.batches
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, m)| (**m).clone())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.batches.lock().expect("lock").len()
    }
}

/// A pipeline for every signal whose single stage answers each batch with `decide(&batch)` (which may also
/// count refused items on the batch's acks).
pub fn answering_pipelines(
    decide: impl Fn(&Batch) -> Outcome + Send + Sync + 'static,
) -> (HashMap<Signal, Fanout>, Seen) {
    let seen = Seen::default();
    let decide = Arc::new(decide);
    let mut outputs = HashMap::new();
    for signal in Signal::ALL {
        let (tx, mut rx) = channel(signal.as_str(), 16);
        let (seen, decide) = (seen.clone(), Arc::clone(&decide));
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                seen.batches
                    .lock()
                    .expect("lock")
                    .push((Arc::clone(&batch.payload), Arc::clone(&batch.meta)));
                let outcome = decide(&batch);
                batch.acks.resolve(outcome);
            }
        });
        outputs.insert(signal, Fanout::new(vec![tx], Duration::from_secs(5)));
    }
    (outputs, seen)
}

/// Pipelines that deliver everything.
pub fn delivering_pipelines() -> (HashMap<Signal, Fanout>, Seen) {
    answering_pipelines(|_| Outcome::Delivered)
}

/// One signal's pipeline whose batches the test takes and resolves itself.
pub fn held_pipeline(signal: Signal, capacity: usize) -> (HashMap<Signal, Fanout>, BatchReceiver) {
    let (tx, rx) = channel("held", capacity);
    (
        HashMap::from([(signal, Fanout::new(vec![tx], Duration::from_secs(5)))]),
        rx,
    )
}

pub type TestBody = BoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into()).boxed()
}

/// A body that sends `first` and then never ends: proves the server answered without reading the rest.
pub struct Stalling {
    first: Option<Bytes>,
}

impl http_body::Body for Stalling {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.first.take() {
            Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            None => Poll::Pending,
        }
    }
}

pub fn stalling(first: impl Into<Bytes>) -> TestBody {
    Stalling {
        first: Some(first.into()),
    }
    .boxed()
}

/// A body sent in `chunk`-sized pieces with no known length (HTTP/1.1 chunked encoding).
pub struct Chunked {
    data: Bytes,
    chunk: usize,
}

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.data.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.chunk.min(self.data.len());
        let piece = self.data.split_to(n);
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }
}

pub fn chunked(data: impl Into<Bytes>, chunk: usize) -> TestBody {
    Chunked {
        data: data.into(),
        chunk,
    }
    .boxed()
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// `grpc-message` (percent-decoded) from the headers or the trailers.
    pub fn grpc_message(&self) -> Option<String> {
        let raw = self
            .headers
            .get("grpc-message")
            .or_else(|| self.trailers.as_ref()?.get("grpc-message"))?
            .as_bytes();
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (raw[i], hex) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// `grpc-status` from the headers (trailers-only answer) or the trailers.
    pub fn grpc_status(&self) -> Option<i32> {
        self.headers
            .get("grpc-status")
            .or_else(|| self.trailers.as_ref()?.get("grpc-status"))
            .and_then(|v| v.to_str().ok()?.parse().ok())
    }
}

fn client(http2: bool) -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build_http()
}

/// Sends one HTTP/1.1 request.
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: TestBody,
) -> Reply {
    send_with(client(false), addr, method, path, headers, body).await
}

async fn send_with(
    client: Client<HttpConnector, TestBody>,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: TestBody,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body).expect("request");
    let response = bounded("HTTP request", client.request(request))
        .await
        .expect("the server answered");
    let (parts, body) = response.into_parts();
    let collected = bounded("HTTP response body", body.collect())
        .await
        .expect("response body");
    let trailers = collected.trailers().cloned();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// POSTs protobuf to an OTLP/HTTP path.
pub async fn post_protobuf(addr: SocketAddr, path: &str, body: Vec<u8>) -> Reply {
    send(
        addr,
        Method::POST,
        path,
        &[("content-type", "application/x-protobuf")],
        full(body),
    )
    .await
}

/// POSTs JSON to an OTLP/HTTP path.
pub async fn post_json(addr: SocketAddr, path: &str, body: impl Into<Bytes>) -> Reply {
    send(
        addr,
        Method::POST,
        path,
        &[("content-type", "application/json")],
        full(body),
    )
    .await
}

/// A gRPC client channel over h2c, for the generated OTLP clients.
pub fn grpc_channel() -> Client<HttpConnector, tonic::body::Body> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

pub fn grpc_origin(addr: SocketAddr) -> http::Uri {
    format!("http://{addr}").parse().expect("uri")
}

/// Sends one unary gRPC call by hand: `message` framed with the 5-byte prefix (`compressed` flag set if so).
pub async fn grpc_raw(
    addr: SocketAddr,
    path: &str,
    message: &[u8],
    compressed: Option<&str>,
) -> Reply {
    let mut frame = Vec::with_capacity(message.len() + 5);
    frame.push(u8::from(compressed.is_some()));
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    let mut headers = vec![("content-type", "application/grpc"), ("te", "trailers")];
    if let Some(encoding) = compressed {
        headers.push(("grpc-encoding", encoding));
    }
    send_with(
        client(true),
        addr,
        Method::POST,
        path,
        &headers,
        full(frame),
    )
    .await
}

pub const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("write");
    encoder.finish().expect("finish")
}
