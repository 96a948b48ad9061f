//! The running receiver: one HTTP client per job, one task per target, all stopped by the shutdown token.
//!
//! Lifecycle: `new` (from `build`) compiles the relabel rules and does no I/O; `run` reads the credential
//! files and TLS material, starts a task per target ([`crate::target`]) and returns once every task has seen
//! the shutdown token, which interrupts any scrape or verdict wait at once. A receiver wired into no metrics
//! pipeline scrapes nothing.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use otlake_core::{
    ComponentError, ComponentId, ConfigError, MemoryBudget, Receiver, ReceiverContext, Result,
    Signal,
};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::{PrometheusReceiverConfig, ScrapeConfig, parse_target};
use crate::mapping::TargetInfo;
use crate::relabel::Relabeler;
use crate::scrape::{Scraper, request_headers};
use crate::sink::Sink;
use crate::target::Target;

/// The `prometheus` receiver.
pub struct PrometheusReceiver {
    id: ComponentId,
    config: PrometheusReceiverConfig,
    relabelers: Vec<Arc<Relabeler>>,
    budget: Arc<MemoryBudget>,
}

impl PrometheusReceiver {
    /// From a validated config; compiles the relabel rules (no I/O).
    pub fn new(
        id: ComponentId,
        config: PrometheusReceiverConfig,
    ) -> std::result::Result<Self, ConfigError> {
        let relabelers = config
            .config
            .scrape_configs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                Relabeler::new(&job.metric_relabel_configs)
                    .map(Arc::new)
                    .map_err(|m| {
                        ConfigError::new(
                            format!("config.scrape_configs[{i}].metric_relabel_configs"),
                            m,
                        )
                    })
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(PrometheusReceiver {
            id,
            config,
            relabelers,
            budget: Arc::clone(MemoryBudget::global()),
        })
    }

    /// Reserves scrape memory against `budget` instead of the process-wide one (tests).
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// Every target of every job, ready to run (reads files: call from `run`).
    pub fn targets(&self) -> Result<Vec<Target>> {
        let global = &self.config.config.global;
        let mut targets = Vec::new();
        for (job, relabel) in self
            .config
            .config
            .scrape_configs
            .iter()
            .zip(&self.relabelers)
        {
            let startup = |message: String| {
                ComponentError::startup(format!("{}: job {}", self.id, job.job_name), message)
            };
            let client = client(job).map_err(startup)?;
            let authorization = authorization(job).map_err(startup)?;
            let timeout = job.timeout(global);
            let headers =
                request_headers(timeout, job.enable_compression, authorization.as_deref())
                    .map_err(|e| startup(e.to_string()))?;
            for group in &job.static_configs {
                for address in &group.targets {
                    let parsed = parse_target(address, &job.scheme).map_err(startup)?;
                    let mut url = reqwest::Url::parse(&format!(
                        "{}://{}{}",
                        job.scheme, address, job.metrics_path
                    ))
                    .map_err(|e| startup(format!("target `{address}`: {e}")))?;
                    if !job.params.is_empty() {
                        let mut query = url.query_pairs_mut();
                        for (name, values) in &job.params {
                            for value in values {
                                query.append_pair(name, value);
                            }
                        }
                    }
                    let mut labels: Vec<(String, String)> = group
                        .labels
                        .iter()
                        .filter(|(name, _)| *name != "job" && *name != "instance")
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect();
                    labels.sort();
                    let info = TargetInfo {
                        job: group
                            .labels
                            .get("job")
                            .cloned()
                            .unwrap_or_else(|| job.job_name.clone()),
                        instance: group
                            .labels
                            .get("instance")
                            .cloned()
                            .unwrap_or_else(|| address.clone()),
                        scheme: job.scheme.clone(),
                        host: parsed.host,
                        port: parsed.port,
                        labels,
                        honor_labels: job.honor_labels,
                        honor_timestamps: job.honor_timestamps,
                        sample_limit: job.sample_limit,
                    };
                    let scraper = Scraper::new(
                        client.clone(),
                        url,
                        headers.clone(),
                        job.body_size_limit,
                        Arc::clone(&self.budget),
                    );
                    targets.push(Target::new(
                        self.id.to_string(),
                        info,
                        scraper,
                        Arc::clone(relabel),
                        job.interval(global),
                        timeout,
                    ));
                }
            }
        }
        Ok(targets)
    }
}

/// The job's HTTP client: its TLS settings, no proxy from the environment (Prometheus' default), no client
/// timeout (each scrape is bounded by `scrape_timeout`).
fn client(job: &ScrapeConfig) -> std::result::Result<reqwest::Client, String> {
    let tls = crate::tls::client_config(&job.tls_config, job.scheme == "https")?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .user_agent(concat!("otlake/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

/// The `Authorization` header value of a job, from its secrets (files are read here, at start-up).
fn authorization(job: &ScrapeConfig) -> std::result::Result<Option<String>, String> {
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map(|text| text.trim().to_owned())
            .map_err(|e| format!("{key} {}: {e}", path.display()))
    };
    if let Some(auth) = &job.authorization {
        let credentials = match (&auth.credentials, &auth.credentials_file) {
            (Some(secret), _) => secret.expose().to_owned(),
            (None, Some(path)) => read("authorization.credentials_file", path)?,
            (None, None) => return Ok(None),
        };
        let kind = auth
            .kind
            .as_deref()
            .unwrap_or(crate::config::DEFAULT_AUTHORIZATION_TYPE);
        return Ok(Some(format!("{kind} {credentials}")));
    }
    if let Some(basic) = &job.basic_auth {
        let password = match (&basic.password, &basic.password_file) {
            (Some(secret), _) => secret.expose().to_owned(),
            (None, Some(path)) => read("basic_auth.password_file", path)?,
            (None, None) => String::new(),
        };
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", basic.username));
        return Ok(Some(format!("Basic {encoded}")));
    }
    Ok(None)
}

#[async_trait]
impl Receiver for PrometheusReceiver {
    async fn run(self: Box<Self>, cx: ReceiverContext) -> Result<()> {
        let Some(fanout) = cx.outputs.get(&Signal::Metrics).cloned() else {
            warn!(receiver = %self.id, "No metrics pipeline takes this receiver's data: nothing is scraped.");
            cx.shutdown.cancelled().await;
            return Ok(());
        };
        let targets = self.targets()?;
        info!(receiver = %self.id, targets = targets.len(), "Scraping.");
        let sink = Arc::new(Sink::new(&self.id, fanout, Arc::clone(&self.budget)));
        let mut tasks = JoinSet::new();
        for target in targets {
            tasks.spawn(target.run(Arc::clone(&sink), cx.shutdown.clone()));
        }
        drop(sink);
        while let Some(joined) = tasks.join_next().await {
            if let Err(error) = joined
                && error.is_panic()
            {
                return Err(ComponentError::failed(
                    format!("{}: a scrape task", self.id),
                    error,
                ));
            }
        }
        Ok(())
    }
}
