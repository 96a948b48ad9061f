//! What the receiver tests share: a config from YAML, a receiver running in a task against a channel, the next
//! scrape of a job from that channel, gauge values, and a shutdown that must be prompt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use otlake_core::batch::channel;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::common::v1::any_value;
use otlake_core::proto::metrics::v1::{Metric, metric, number_data_point};
use otlake_core::{
    BatchReceiver, ComponentId, Fanout, MemoryBudget, Outcome, Receiver, ReceiverContext, Signal,
};
use otlake_receiver_prometheus::{PrometheusReceiver, PrometheusReceiverConfig};
use tokio_util::sync::CancellationToken;

/// A validated config from YAML.
pub fn config(yaml: &str) -> PrometheusReceiverConfig {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("YAML");
    let config: PrometheusReceiverConfig = otlake_core::parse_config(&value).expect("parses");
    config.validate().expect("valid");
    config
}

/// A receiver running in a task, and the pipeline end it sends to.
pub struct Running {
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<otlake_core::Result<()>>,
    pub rx: BatchReceiver,
}

pub fn start(
    config: PrometheusReceiverConfig,
    budget: Arc<MemoryBudget>,
    capacity: usize,
) -> Running {
    let receiver = PrometheusReceiver::new(ComponentId::new("prometheus"), config)
        .expect("builds")
        .with_budget(budget);
    run(Box::new(receiver), capacity)
}

/// Runs a built receiver into a channel of `capacity` batches.
pub fn run(receiver: Box<dyn Receiver>, capacity: usize) -> Running {
    let (tx, rx) = channel("test", capacity);
    let shutdown = CancellationToken::new();
    let cx = ReceiverContext {
        id: ComponentId::new("prometheus"),
        outputs: HashMap::from([(
            Signal::Metrics,
            Fanout::new(vec![tx], Duration::from_millis(50)),
        )]),
        shutdown: shutdown.clone(),
        stop: otlake_core::StopHandle::new(),
    };
    let task = tokio::spawn(receiver.run(cx));
    Running { shutdown, task, rx }
}

/// The next scrape of `job` (earlier batches of other jobs are delivered and skipped; bounded: 10 s).
pub async fn next_request(rx: &mut BatchReceiver, job: &str) -> ExportMetricsServiceRequest {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let batch = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("a scrape within 10 s")
            .expect("open");
        let request = match batch.payload.request().expect("decodes") {
            otlake_core::ExportRequest::Metrics(r) => r.clone(),
            other => panic!("{other:?}"),
        };
        batch.acks.resolve(Outcome::Delivered);
        if resource_attribute(&request, "service.name").as_deref() == Some(job) {
            return request;
        }
    }
}

/// A string attribute of the request's first resource.
pub fn resource_attribute(request: &ExportMetricsServiceRequest, key: &str) -> Option<String> {
    let resource = request.resource_metrics.first()?.resource.as_ref()?;
    let value = resource
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?;
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Every metric of a request, whatever its resource.
pub fn metrics_of(request: ExportMetricsServiceRequest) -> Vec<Metric> {
    request
        .resource_metrics
        .into_iter()
        .flat_map(|r| r.scope_metrics)
        .flat_map(|s| s.metrics)
        .collect()
}

/// The metrics of the next scrape of `job`.
pub async fn next_scrape(rx: &mut BatchReceiver, job: &str) -> Vec<Metric> {
    metrics_of(next_request(rx, job).await)
}

/// The value of gauge `name`, if the metrics hold it.
pub fn gauge_value(metrics: &[Metric], name: &str) -> Option<f64> {
    match &metrics.iter().find(|m| m.name == name)?.data {
        Some(metric::Data::Gauge(g)) => match g.data_points.first()?.value {
            Some(number_data_point::Value::AsDouble(v)) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// The value of gauge `name`, which must be there.
pub fn gauge(metrics: &[Metric], name: &str) -> f64 {
    gauge_value(metrics, name).unwrap_or_else(|| panic!("no gauge {name}"))
}

/// Fires shutdown and expects the receiver to return, cleanly, within 5 s.
pub async fn stop(running: Running) {
    running.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), running.task)
        .await
        .expect("stops within 5 s of shutdown")
        .expect("no panic")
        .expect("ok");
}
