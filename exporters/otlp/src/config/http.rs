//! The `otlphttp` exporter's configuration: the Collector's `otlphttpexporter` keys (`confighttp` client,
//! per-signal URLs, encoding, retry, queue) and defaults, so a Collector section moves over unchanged.
//!
//! URLs: `traces_endpoint` (and the logs/metrics ones) is used as given; otherwise `endpoint` + `/v1/traces`.
//! That covers an MLflow tracking server (`traces_endpoint: http://mlflow:5000/v1/traces`) and the managed
//! ingest endpoint (`traces_endpoint: https://<workspace>/api/2.0/otel/v1/traces`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use otlake_core::config::tls::TlsClientConfig;
use otlake_core::config::{Compression, Headers};
use otlake_core::{ConfigError, Signal};

use super::{DEFAULT_MAX_REQUEST_BYTES, QueueConfig, RetryConfig, validate_max_request_bytes};

/// The Collector's `otlphttp` default: the whole request, per attempt.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The body format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// `application/x-protobuf` (default).
    #[default]
    Proto,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Proto => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `exporters.otlphttp`: OTLP over HTTP to one destination.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpExporterConfig {
    /// Base URL (`https://gateway:4318`); `/v1/<signal>` is appended. Required unless every signal the
    /// exporter carries has its own `<signal>_endpoint`.
    pub endpoint: Option<String>,
    /// Full URL for traces, used as given (no path appended).
    pub traces_endpoint: Option<String>,
    /// Full URL for logs, used as given.
    pub logs_endpoint: Option<String>,
    /// Full URL for metrics, used as given.
    pub metrics_endpoint: Option<String>,
    /// `proto` (default) or `json`.
    pub encoding: Encoding,
    /// Headers sent with every request (`Authorization: Bearer ${env:TOKEN}`); values are never printed.
    pub headers: Headers,
    /// `gzip` (default), `zstd` or `none`.
    pub compression: Compression,
    /// TLS settings for `https://` URLs (CA, client certificate); `http://` URLs are plain text.
    pub tls: TlsClientConfig,
    /// Time limit of one attempt, response included (default 30s); `0s` means none.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Retry with exponential backoff on retryable failures.
    pub retry_on_failure: RetryConfig,
    /// The bounded queue in front of the concurrent requests.
    pub sending_queue: QueueConfig,
    /// Split batches so one request's protobuf stays under this many bytes (default 4MiB less 128KiB).
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub max_request_bytes: u64,
    /// An HTTP(S) proxy for every request (`http://proxy:3128`).
    pub proxy_url: Option<String>,
    /// Close idle connections after this long (default: the client's, 90s).
    #[serde(with = "humantime_serde")]
    pub idle_conn_timeout: Option<Duration>,
    /// Idle connections kept per host.
    pub max_idle_conns_per_host: Option<usize>,
    /// Open a new connection for every request.
    pub disable_keep_alives: bool,
    /// Accepted for compatibility; no effect.
    pub read_buffer_size: Option<Value>,
    /// Accepted for compatibility; no effect.
    pub write_buffer_size: Option<Value>,
    /// Accepted for compatibility; no effect.
    pub max_idle_conns: Option<Value>,
    /// Accepted for compatibility; no effect.
    pub max_conns_per_host: Option<Value>,
    /// Accepted for compatibility; no effect.
    pub http2_read_idle_timeout: Option<Value>,
    /// Accepted for compatibility; no effect.
    pub http2_ping_timeout: Option<Value>,
    /// Accepted for compatibility; no effect (OTLP/HTTP goes over HTTP/1.1).
    pub force_attempt_http2: Option<Value>,
}

impl Default for HttpExporterConfig {
    fn default() -> Self {
        HttpExporterConfig {
            endpoint: None,
            traces_endpoint: None,
            logs_endpoint: None,
            metrics_endpoint: None,
            encoding: Encoding::Proto,
            headers: Headers::default(),
            compression: Compression::Gzip,
            tls: TlsClientConfig::default(),
            timeout: DEFAULT_HTTP_TIMEOUT,
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            proxy_url: None,
            idle_conn_timeout: None,
            max_idle_conns_per_host: None,
            disable_keep_alives: false,
            read_buffer_size: None,
            write_buffer_size: None,
            max_idle_conns: None,
            max_conns_per_host: None,
            http2_read_idle_timeout: None,
            http2_ping_timeout: None,
            force_attempt_http2: None,
        }
    }
}

impl HttpExporterConfig {
    /// Every problem at once, with paths inside the component.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if self.endpoint.is_none()
            && self.traces_endpoint.is_none()
            && self.logs_endpoint.is_none()
            && self.metrics_endpoint.is_none()
        {
            errors.push(ConfigError::new(
                "endpoint",
                "required: a base URL (`https://gateway:4318`) or a `traces_endpoint`/`logs_endpoint`/\
                 `metrics_endpoint`",
            ));
        }
        if let Some(endpoint) = &self.endpoint
            && let Err(message) = parse_http_url(endpoint)
        {
            errors.push(ConfigError::new("endpoint", message));
        }
        for signal in Signal::ALL {
            if let Some(url) = self.signal_endpoint(signal)
                && let Err(message) = parse_http_url(url)
            {
                errors.push(ConfigError::new(format!("{signal}_endpoint"), message));
            }
        }
        if let Some(proxy) = &self.proxy_url
            && let Err(message) = parse_http_url(proxy)
        {
            errors.push(ConfigError::new("proxy_url", message));
        }
        self.headers.validate(&mut errors);
        self.tls.validate(&mut errors);
        self.retry_on_failure.validate(&mut errors);
        self.sending_queue.validate(&mut errors);
        validate_max_request_bytes(self.max_request_bytes, &mut errors);
        errors
    }

    fn signal_endpoint(&self, signal: Signal) -> Option<&String> {
        match signal {
            Signal::Traces => self.traces_endpoint.as_ref(),
            Signal::Logs => self.logs_endpoint.as_ref(),
            Signal::Metrics => self.metrics_endpoint.as_ref(),
        }
    }

    /// The URL requests of `signal` go to: `<signal>_endpoint` as given, else `endpoint` + `/v1/<signal>`.
    pub fn url_for(&self, signal: Signal) -> Result<reqwest::Url, ConfigError> {
        if let Some(url) = self.signal_endpoint(signal) {
            return parse_http_url(url)
                .map_err(|m| ConfigError::new(format!("{signal}_endpoint"), m));
        }
        let Some(base) = &self.endpoint else {
            return Err(ConfigError::new(
                "endpoint",
                format!("the exporter carries {signal}: set `endpoint` or `{signal}_endpoint`"),
            ));
        };
        let joined = format!("{}/v1/{signal}", base.trim_end_matches('/'));
        parse_http_url(&joined).map_err(|m| ConfigError::new("endpoint", m))
    }
}

fn parse_http_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| {
        format!("`{text}` is not a URL ({e}); expected e.g. `https://gateway:4318`")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}`: the scheme must be `http` or `https`"));
    }
    if url.host_str().is_none() {
        return Err(format!("`{text}` has no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_urls_follow_the_collectors_rules() {
        let config = HttpExporterConfig {
            endpoint: Some("https://gateway:4318/".into()),
            traces_endpoint: Some("http://mlflow:5000/v1/traces".into()),
            ..Default::default()
        };
        assert_eq!(
            config.url_for(Signal::Traces).expect("url").as_str(),
            "http://mlflow:5000/v1/traces"
        );
        assert_eq!(
            config.url_for(Signal::Logs).expect("url").as_str(),
            "https://gateway:4318/v1/logs"
        );
        let only_traces = HttpExporterConfig {
            traces_endpoint: Some("https://host/api/2.0/otel/v1/traces".into()),
            ..Default::default()
        };
        assert!(only_traces.validate().is_empty());
        assert!(only_traces.url_for(Signal::Metrics).is_err());
    }

    #[test]
    fn bad_urls_are_reported_with_their_key() {
        let config = HttpExporterConfig {
            endpoint: Some("gateway:4318".into()),
            logs_endpoint: Some("ftp://x/v1/logs".into()),
            ..Default::default()
        };
        let errors = config.validate();
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["endpoint", "logs_endpoint"], "{errors:?}");
    }
}
