//! Factory, configuration file, lifecycle and shutdown.

use std::collections::HashMap;

use http::StatusCode;
use otlake_core::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlake_core::test_util::sample_traces;
use otlake_core::{
    ComponentError, ComponentId, DynReceiverFactory, Factory, Outcome, Receiver, ReceiverContext,
    Signal,
};
use otlake_receiver_otlp::{OtlpReceiver, OtlpReceiverFactory};
use prost::Message;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::*;

#[test]
fn the_example_config_file_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/examples/otlp-receiver.yaml"
    );
    let text = std::fs::read_to_string(path).expect("configs/examples/otlp-receiver.yaml");
    let tree: Value = serde_saphyr::from_str(&text).expect("YAML");
    let section = &tree["receivers"]["otlp"];
    let factory: &dyn DynReceiverFactory = &OtlpReceiverFactory;
    let validated = factory.validate(section).expect("valid");
    let config = OtlpReceiverFactory.parse(section).expect("valid");
    assert_eq!(config.max_request_bytes, 30_000_000);
    assert_eq!(
        config.protocols.grpc.expect("grpc").max_recv_msg_size_mib,
        Some(16)
    );
    assert!(config.protocols.http.expect("http").include_metadata);
    assert_eq!(
        factory.listen_addresses(&validated),
        vec!["127.0.0.1:4317", "127.0.0.1:4318"]
    );
}

#[test]
fn factory_describes_validates_and_builds_without_io() {
    let factory: &dyn DynReceiverFactory = &OtlpReceiverFactory;
    assert_eq!(factory.type_name(), "otlp");
    assert_eq!(factory.signals(), &Signal::ALL);
    let grpc_only = factory
        .validate(&json!({"protocols": {"grpc": {"endpoint": ":4317"}}}))
        .expect("valid");
    assert_eq!(factory.listen_addresses(&grpc_only), vec!["0.0.0.0:4317"]);
    let errors = factory
        .validate(&json!({"protocols": {}, "max_request_bytes": 0}))
        .expect_err("invalid");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        factory.validate(&Value::Null).is_err(),
        "no protocols: nothing to build"
    );

    // Built on a port that is in use by nobody's test, and dropped without running: nothing binds.
    let section = json!({"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"}}});
    let built = factory
        .build(
            &ComponentId::new("otlp"),
            factory.validate(&section).expect("valid"),
        )
        .expect("builds");
    drop(built);
}

#[tokio::test]
async fn runs_and_returns_when_shutdown_has_already_fired() {
    let receiver = OtlpReceiver::new(
        OtlpReceiverFactory
            .parse(&config(json!({})))
            .expect("valid"),
    );
    let bound = receiver.bound_addresses();
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    let cx = ReceiverContext {
        id: ComponentId::new("otlp"),
        outputs: HashMap::new(),
        shutdown,
        stop: otlake_core::StopHandle::new(),
    };
    bounded("run", Box::new(receiver).run(cx))
        .await
        .expect("clean return");
    // Addresses were published before serving; the watch keeps the last value after the receiver is gone.
    let addresses = bounded("bound", bound.wait()).await.expect("published");
    assert!(addresses.grpc.is_some() && addresses.http.is_some());
}

#[tokio::test]
async fn a_port_in_use_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let config = json!({"protocols": {
        "grpc": {"endpoint": "127.0.0.1:0"},
        "http": {"endpoint": format!("127.0.0.1:{port}")}
    }});
    let receiver = OtlpReceiver::new(OtlpReceiverFactory.parse(&config).expect("valid"));
    let cx = ReceiverContext {
        id: ComponentId::new("otlp"),
        outputs: HashMap::new(),
        shutdown: CancellationToken::new(),
        stop: otlake_core::StopHandle::new(),
    };
    let err = bounded("run", Box::new(receiver).run(cx))
        .await
        .expect_err("port in use");
    match err {
        ComponentError::Bind { address, .. } => assert_eq!(address, format!("127.0.0.1:{port}")),
        other => panic!("expected a bind error, got {other}"),
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_get_their_answer() {
    let (outputs, mut rx) = held_pipeline(Signal::Traces, 8);
    let receiver = start(config(json!({})), outputs).await;
    let (http_addr, grpc_addr) = (receiver.http_addr(), receiver.grpc_addr());

    let http_call = tokio::spawn(post_protobuf(
        http_addr,
        "/v1/traces",
        sample_traces(1, 1).encode_to_vec(),
    ));
    let grpc_call = tokio::spawn(async move {
        TraceServiceClient::with_origin(grpc_channel(), grpc_origin(grpc_addr))
            .export(sample_traces(1, 2))
            .await
    });
    // Both requests are in the pipeline, waiting for their verdicts, when shutdown fires.
    let first = bounded("first batch", rx.recv()).await.expect("batch");
    let second = bounded("second batch", rx.recv()).await.expect("batch");
    receiver.shutdown.cancel();

    // New connections are no longer accepted once the listeners are closed.
    bounded("listener closed", async {
        while tokio::net::TcpStream::connect(http_addr).await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        !receiver.task.is_finished(),
        "run waits for in-flight requests"
    );

    first.acks.resolve(Outcome::Delivered);
    second.acks.resolve(Outcome::Delivered);
    let reply = bounded("HTTP answer", http_call).await.expect("task");
    assert_eq!(reply.status, StatusCode::OK);
    bounded("gRPC answer", grpc_call)
        .await
        .expect("task")
        .expect("OK");

    bounded("run", receiver.task)
        .await
        .expect("task")
        .expect("clean return");
    // run returned and dropped the fan-outs: the pipeline sees its input close.
    assert!(bounded("input closed", rx.recv()).await.is_none());
}
