//! An OTLP/HTTP server (axum) on 127.0.0.1, plain or TLS: decompresses and decodes what arrives (protobuf or
//! JSON), records it, and answers from a script (200 with an empty response when the script is empty).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use prost::Message;
use tokio::task::JoinHandle;

use otlake_core::proto::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use otlake_core::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use otlake_core::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otlake_core::{Payload, Signal};

use crate::common::{Received, Recorder, decompress};

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
        Payload::from(parse::<ExportTraceServiceRequest>(&raw, json))
    } else if path.ends_with("logs") {
        Payload::from(parse::<ExportLogsServiceRequest>(&raw, json))
    } else {
        Payload::from(parse::<ExportMetricsServiceRequest>(&raw, json))
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
