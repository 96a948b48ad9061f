//! Shared test helpers: running an exporter, awaiting acknowledgements, and the [`Recorder`] both test servers
//! ([`crate::http_server`], [`crate::grpc_server`]) use to keep what arrived and to hold requests at a gate.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use otlake_core::batch::channel;
use otlake_core::test_util::build_exporter;
use otlake_core::{
    AckReceiver, BatchSender, ComponentId, DynExporterFactory, ExporterContext, Payload, Signal,
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
    factory: &dyn DynExporterFactory,
    config: serde_json::Value,
    signals: &[Signal],
) -> Running {
    let id = ComponentId::new(factory.type_name());
    let exporter = build_exporter(factory, &config, signals).expect("a valid configuration");
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
    pub fn new() -> Self {
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

    pub async fn pass_gate(&self) {
        let mut rx = self.gate.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }

    pub fn record(&self, received: Received) {
        self.received.lock().expect("lock").push(received);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().expect("lock").len()
    }
}

pub fn decompress(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
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

/// A port that nothing listens on right now (bound, then released).
pub async fn free_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr")
}

/// The span ids of a trace payload, in order: what "intact" is checked on, with the payload equality.
pub fn span_ids(payload: &Payload) -> Vec<Vec<u8>> {
    match payload.request().expect("decodes") {
        otlake_core::ExportRequest::Traces(r) => r
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|s| s.span_id.clone())
            .collect(),
        _ => Vec::new(),
    }
}
