//! The command line of `otlake loadgen` (a `clap::Args` the binary flattens into its subcommand) and its
//! validation, which reports every problem at once.

use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

/// Default items (spans, log records, data points) per request: what an SDK's batch processor sends.
pub const DEFAULT_BATCH: usize = 100;
/// Default number of requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Default run length when neither `--count` nor `--duration` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Default retries of a request that failed with a retryable answer.
pub const DEFAULT_RETRIES: u32 = 3;
/// Default share of model calls (spans) and log records that fail.
pub const DEFAULT_ERROR_RATE: f64 = 0.05;
/// Default number of different request templates per signal.
pub const DEFAULT_TEMPLATES: usize = 8;

/// The wire protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/gRPC (HTTP/2 cleartext).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (HTTP/1.1, keep-alive).
    Http,
}

/// What the requests carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }
}

/// Request body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
}

/// Sends GenAI-style OTLP traces, logs or metrics to an OTLP endpoint and reports what was acknowledged.
#[derive(clap::Args, Clone, Debug)]
pub struct LoadgenArgs {
    /// Where to send. HTTP: the base URL, `/v1/<signal>` is appended (default http://127.0.0.1:4318);
    /// gRPC: the server's URL (default http://127.0.0.1:4317). A bare `host:port` means http://host:port.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The wire protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Http)]
    pub protocol: Protocol,
    /// What to send; several (comma-separated) alternate request by request.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "traces")]
    pub signal: Vec<Signal>,
    /// Items (spans, log records or metric data points) per request.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
    /// Offered load in items per second (spread evenly over time); 0 sends as fast as the endpoint answers.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Stop after this many items (the last request carries the remainder).
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop starting requests after this long (e.g. `30s`, `2m`); default 10s unless --count is given.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// gRPC: HTTP/2 connections the requests are spread over (HTTP/1.1 opens one per request in flight).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Request body compression.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Appends the id of every acknowledged span (span id) and log record (`log.record.uid`), one lowercase
    /// hex id per line. Requests with a partial rejection are not recorded (which items were refused is unknown).
    #[arg(long)]
    pub ack_log: Option<PathBuf>,
    /// Per-attempt time limit.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Retries of a request refused with a retryable answer (HTTP 429/502/503/504, gRPC UNAVAILABLE,
    /// RESOURCE_EXHAUSTED, ..., connection errors, timeouts), with exponential backoff from 100 ms.
    #[arg(long, default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,
    /// Share (0..1) of model calls and log records that are errors.
    #[arg(long, default_value_t = DEFAULT_ERROR_RATE)]
    pub error_rate: f64,
    /// Different request contents per signal, built before the run (ids and times vary per request).
    #[arg(long, default_value_t = DEFAULT_TEMPLATES)]
    pub templates: usize,
    /// Seed for the content (ids are always fresh).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Runtime threads of the generator (1: a single-threaded runtime, cheapest for one pinned core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Extra request header or gRPC metadata, `KEY=VALUE`, repeatable.
    #[arg(long = "header", value_parser = key_value)]
    pub headers: Vec<(String, String)>,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Default for LoadgenArgs {
    fn default() -> Self {
        LoadgenArgs {
            endpoint: None,
            protocol: Protocol::Http,
            signal: vec![Signal::Traces],
            batch: DEFAULT_BATCH,
            rate: 0,
            count: None,
            duration: None,
            concurrency: DEFAULT_CONCURRENCY,
            connections: 1,
            compression: Compression::None,
            ack_log: None,
            timeout: Duration::from_secs(10),
            retries: DEFAULT_RETRIES,
            error_rate: DEFAULT_ERROR_RATE,
            templates: DEFAULT_TEMPLATES,
            seed: 1,
            threads: 1,
            headers: Vec::new(),
            json: false,
        }
    }
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("`{text}`: expected KEY=VALUE"))
}

impl LoadgenArgs {
    /// The endpoint with a scheme, defaulted per protocol.
    pub fn endpoint_url(&self) -> String {
        let raw = self
            .endpoint
            .clone()
            .unwrap_or_else(|| match self.protocol {
                Protocol::Http => "http://127.0.0.1:4318".to_owned(),
                Protocol::Grpc => "http://127.0.0.1:4317".to_owned(),
            });
        if raw.contains("://") {
            raw
        } else {
            format!("http://{raw}")
        }
    }

    /// How long the run may start requests: `--duration`, else 10 s unless `--count` bounds it.
    pub fn run_limit(&self) -> Option<Duration> {
        match (self.duration, self.count) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_DURATION),
        }
    }

    /// Every problem with the arguments (empty when they are usable).
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.batch == 0 {
            problems.push("--batch must be at least 1".to_owned());
        }
        if self.concurrency == 0 {
            problems.push("--concurrency must be at least 1".to_owned());
        }
        if self.connections == 0 {
            problems.push("--connections must be at least 1".to_owned());
        }
        if self.threads == 0 {
            problems.push("--threads must be at least 1".to_owned());
        }
        if self.templates == 0 {
            problems.push("--templates must be at least 1".to_owned());
        }
        if self.signal.is_empty() {
            problems.push("--signal needs at least one of traces, logs, metrics".to_owned());
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            problems.push(format!(
                "--error-rate {} is not between 0 and 1",
                self.error_rate
            ));
        }
        if self.count == Some(0) {
            problems.push("--count must be at least 1".to_owned());
        }
        if self.duration == Some(Duration::ZERO) {
            problems.push("--duration must be longer than 0".to_owned());
        }
        if self.timeout == Duration::ZERO {
            problems.push("--timeout must be longer than 0".to_owned());
        }
        let url = self.endpoint_url();
        match url.parse::<http::Uri>() {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => {}
            Ok(_) => problems.push(format!(
                "--endpoint {url}: expected http://host:port (TLS endpoints are not supported)"
            )),
            Err(e) => problems.push(format!("--endpoint {url}: {e}")),
        }
        for (k, v) in &self.headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || http::HeaderValue::from_str(v).is_err()
            {
                problems.push(format!("--header {k}={v}: not a valid header"));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadgenArgs,
    }

    fn parse(argv: &[&str]) -> LoadgenArgs {
        Cli::try_parse_from(std::iter::once("loadgen").chain(argv.iter().copied()))
            .expect("parses")
            .args
    }

    #[test]
    fn defaults_match_the_documented_constants() {
        let args = parse(&[]);
        assert_eq!(args.batch, DEFAULT_BATCH);
        assert_eq!(args.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(args.signal, vec![Signal::Traces]);
        assert_eq!(args.endpoint_url(), "http://127.0.0.1:4318");
        assert_eq!(args.run_limit(), Some(DEFAULT_DURATION));
        assert!(args.validate().is_empty());
        assert_eq!(args.batch, LoadgenArgs::default().batch);
    }

    #[test]
    fn flags_parse_into_the_plan() {
        let args = parse(&[
            "--protocol",
            "grpc",
            "--endpoint",
            "127.0.0.1:14317",
            "--signal",
            "traces,logs",
            "--count",
            "1050",
            "--rate",
            "5000",
            "--compression",
            "gzip",
            "--header",
            "x-tenant=a",
        ]);
        assert_eq!(args.endpoint_url(), "http://127.0.0.1:14317");
        assert_eq!(args.signal, vec![Signal::Traces, Signal::Logs]);
        assert_eq!(args.run_limit(), None, "a count alone is not time-bounded");
        assert_eq!(args.headers, vec![("x-tenant".to_owned(), "a".to_owned())]);
        assert!(args.validate().is_empty());
    }

    #[test]
    fn validate_reports_every_problem() {
        let args = LoadgenArgs {
            batch: 0,
            concurrency: 0,
            error_rate: 2.0,
            endpoint: Some("https://collector:4318".into()),
            ..Default::default()
        };
        let problems = args.validate();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("TLS")));
    }
}
