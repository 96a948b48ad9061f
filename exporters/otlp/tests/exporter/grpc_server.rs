//! An OTLP/gRPC trace server (tonic) on 127.0.0.1, plain or TLS, with tonic's default 4 MiB message limit and
//! gzip/zstd accepted: records what arrives and answers from a script (OK when the script is empty).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prost::Message;
use tokio::task::JoinHandle;

use otlake_core::Payload;
use otlake_core::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use otlake_core::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::common::{Received, Recorder};

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
            payload: Payload::from(message),
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
