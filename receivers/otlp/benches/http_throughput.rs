//! CPU cost of the OTLP/HTTP receive path, measured the way issue 7 states the target: server CPU seconds per
//! million spans, HTTP protobuf in, a pipeline that drops (resolves `Delivered` at once) out.
//!
//! The load comes from a child process (this same binary re-run with `client`), so that only the receiver's
//! own CPU is counted (utime + stime of this process, from /proc/self/stat). Requests are ~67 KB / 100 spans,
//! like the project benchmark's. Also prints the cost of the protobuf decode alone, for reference.
//!
//! `cargo bench -p otlake-receiver-otlp --bench http_throughput [requests] [connections] [http|grpc]`
//! (defaults 10000, 4, http; `grpc` loads the gRPC listener instead, through the generated tonic client).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use otlake_core::Factory;
use otlake_core::batch::channel;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::test_util::sample_traces;
use otlake_core::{ComponentId, Fanout, Outcome, Receiver, ReceiverContext, Signal};
use otlake_receiver_otlp::{OtlpReceiver, OtlpReceiverFactory};
use prost::Message;
use tokio_util::sync::CancellationToken;

const SPANS_PER_REQUEST: usize = 100;

fn attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// 100 spans with GenAI-style attributes, about 67 KB encoded.
fn request() -> ExportTraceServiceRequest {
    let mut request = sample_traces(1, SPANS_PER_REQUEST);
    for (i, span) in request.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .enumerate()
    {
        span.parent_span_id = span.span_id.clone();
        for (key, value) in [
            ("gen_ai.system", "vllm".to_owned()),
            (
                "gen_ai.request.model",
                "meta-llama/Llama-3.1-70B-Instruct".to_owned(),
            ),
            ("gen_ai.response.id", format!("chatcmpl-{i:032x}")),
            ("gen_ai.usage.input_tokens", (i * 17).to_string()),
            ("gen_ai.usage.output_tokens", (i * 5).to_string()),
            ("http.route", "/v1/chat/completions".to_owned()),
            (
                "server.address",
                "inference-0.inference.svc.cluster.local".to_owned(),
            ),
            ("gen_ai.response.finish_reasons", "stop".to_owned()),
            ("net.peer.name", "10.0.12.34".to_owned()),
            ("thread.name", format!("worker-{}", i % 8)),
        ] {
            span.attributes.push(attribute(key, value));
        }
        span.events
            .push(otlake_core::proto::trace::v1::span::Event {
                time_unix_nano: span.start_time_unix_nano + 10,
                name: "gen_ai.content.completion".into(),
                attributes: vec![attribute("gen_ai.completion", "x".repeat(64))],
                ..Default::default()
            });
    }
    request
}

fn cpu_seconds() -> f64 {
    // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn client(addr: String, requests: usize, connections: usize, protocol: String) {
    let request = request();
    let body = Bytes::from(request.encode_to_vec());
    let per_connection = requests / connections;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (addr, body, request, protocol) = (
            addr.clone(),
            body.clone(),
            request.clone(),
            protocol.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if protocol == "grpc" {
                // As gRPC clients do (grpcio, tonic): without TCP_NODELAY every call waits on Nagle.
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                let channel = Client::builder(TokioExecutor::new())
                    .http2_only(true)
                    .build::<_, tonic::body::Body>(connector);
                let origin: http::Uri = format!("http://{addr}").parse().expect("uri");
                let mut client = TraceServiceClient::with_origin(channel, origin);
                for _ in 0..per_connection {
                    client.export(request.clone()).await.expect("OK");
                }
                return;
            }
            let client = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(1)
                .build_http::<Full<Bytes>>();
            for _ in 0..per_connection {
                let request = http::Request::post(format!("http://{addr}/v1/traces"))
                    .header("content-type", "application/x-protobuf")
                    .body(Full::new(body.clone()))
                    .expect("request");
                let response = client.request(request).await.expect("answer");
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.expect("body");
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
}

fn decode_only(iterations: usize) {
    let bytes = bytes::Bytes::from(request().encode_to_vec());
    let start = cpu_seconds();
    let wall = Instant::now();
    for _ in 0..iterations {
        let decoded = otlake_receiver_otlp::decode::decode_protobuf(Signal::Traces, bytes.clone())
            .expect("validates");
        std::hint::black_box(decoded);
    }
    let cpu = cpu_seconds() - start;
    let spans = (iterations * SPANS_PER_REQUEST) as f64;
    println!(
        "validate only (wire form): {} B/request, {iterations} requests, {:.2} CPU-s per million spans ({:.2?} wall)",
        bytes.len(),
        cpu / spans * 1e6,
        wall.elapsed()
    );
}

async fn server(requests: usize, connections: usize, protocol: &str) {
    let (tx, mut rx) = channel("drop", 1024);
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            batch.acks.resolve(Outcome::Delivered);
        }
    });
    let outputs = HashMap::from([(
        Signal::Traces,
        Fanout::new(vec![tx], Duration::from_secs(2)),
    )]);
    let config = OtlpReceiverFactory
        .parse(&serde_json::json!({"protocols": {
            "http": {"endpoint": "127.0.0.1:0"}, "grpc": {"endpoint": "127.0.0.1:0"}
        }}))
        .expect("config");
    let receiver = OtlpReceiver::new(config);
    let bound = receiver.bound_addresses();
    let shutdown = CancellationToken::new();
    let cx = ReceiverContext {
        id: ComponentId::new("otlp"),
        outputs,
        shutdown: shutdown.clone(),
        stop: otlake_core::StopHandle::new(),
    };
    let task = tokio::spawn(Box::new(receiver).run(cx));
    let bound = bound.wait().await.expect("bound");
    let addr = if protocol == "grpc" {
        bound.grpc
    } else {
        bound.http
    }
    .expect("listening");

    let exe = std::env::current_exe().expect("current exe");
    let cpu_before = cpu_seconds();
    let wall = Instant::now();
    let args = [
        "client".to_owned(),
        addr.to_string(),
        requests.to_string(),
        connections.to_string(),
        protocol.to_owned(),
    ];
    let status =
        tokio::task::spawn_blocking(move || std::process::Command::new(exe).args(args).status())
            .await
            .expect("join")
            .expect("client process");
    assert!(status.success(), "client failed");
    let elapsed = wall.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    shutdown.cancel();
    task.await.expect("task").expect("clean stop");

    let spans = (requests / connections * connections * SPANS_PER_REQUEST) as f64;
    println!(
        "{protocol} → drop: {requests} requests x {SPANS_PER_REQUEST} spans over {connections} connections in {elapsed:.2?}: \
         {:.0} spans/s, receiver {:.2} CPU-s = {:.2} CPU-s per million spans",
        spans / elapsed.as_secs_f64(),
        cpu,
        cpu / spans * 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if args.first().map(String::as_str) == Some("client") {
        let addr = args.get(1).cloned().expect("addr");
        let requests = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
        let connections = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(4);
        let protocol = args.get(4).cloned().unwrap_or_else(|| "http".into());
        runtime.block_on(client(addr, requests, connections, protocol));
        return;
    }
    let requests = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let connections = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let protocol = args.get(2).map(String::as_str).unwrap_or("http");
    decode_only(requests.min(5_000));
    runtime.block_on(server(requests, connections, protocol));
}
