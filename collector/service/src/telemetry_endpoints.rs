//! The daemon's own endpoints: Prometheus metrics and a health check.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tracing::info;

use crate::config::Config;
use crate::error::RunError;

/// Whether the daemon is ready (every receiver bound, every write-ahead log open, no shutdown begun); the
/// health endpoint answers 200 from it, 503 otherwise.
#[derive(Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    pub fn set_running(&self, running: bool) {
        self.0.store(running, Ordering::SeqCst);
    }
    fn running(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Keeps the telemetry servers alive; they stop when it drops.
pub struct TelemetryGuard {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Where each endpoint listens (`health`, `metrics`), as bound (port `0` resolved).
    pub addresses: Vec<(String, std::net::SocketAddr)>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds the health and metrics endpoints (before any receiver, so a port clash stops start-up early).
pub async fn start(config: &Config, health: Health) -> Result<TelemetryGuard, RunError> {
    let mut tasks = Vec::new();
    let mut addresses = Vec::new();
    let bind = |address: String| async move {
        let listener = tokio::net::TcpListener::bind(&address).await;
        let local = listener.and_then(|l| Ok((l.local_addr()?, l)));
        local.map_err(|cause| RunError::Telemetry { address, cause })
    };
    if let Some(address) = config.health_endpoint() {
        let (local, listener) = bind(address.clone()).await?;
        addresses.push(("health".to_owned(), local));
        let app = Router::new().route(
            "/",
            get(move || {
                let health = health.clone();
                async move {
                    if health.running() {
                        (StatusCode::OK, "{\"status\":\"Server available\"}")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "{\"status\":\"Server not available\"}",
                        )
                    }
                }
            }),
        );
        info!(endpoint = %local, "Health endpoint listening.");
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }
    if let Some(address) = config.metrics_address() {
        let (local, listener) = bind(address.clone()).await?;
        addresses.push(("metrics".to_owned(), local));
        let handle = prometheus_handle();
        let in_flight = metrics::gauge!("otlake_memory_in_flight_bytes");
        let limit = metrics::gauge!("otlake_memory_limit_bytes");
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let budget = otlake_core::MemoryBudget::global();
                in_flight.set(budget.used() as f64);
                limit.set(budget.limit() as f64);
                std::future::ready(handle.render())
            }),
        );
        info!(address = %local, "Metrics endpoint listening.");
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }
    Ok(TelemetryGuard { tasks, addresses })
}

/// The process-wide Prometheus recorder, installed on first use.
fn prometheus_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed (tests): then this handle just renders nothing.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
