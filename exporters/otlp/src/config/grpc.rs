//! The `otlp` exporter's configuration: the Collector's `otlpexporter` keys (`configgrpc` client, timeout,
//! retry, queue) and defaults, so a Collector section moves over unchanged.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use otlake_core::ConfigError;
use otlake_core::config::tls::TlsClientConfig;
use otlake_core::config::{Compression, Headers};

use super::{DEFAULT_MAX_REQUEST_BYTES, QueueConfig, RetryConfig, validate_max_request_bytes};

/// The Collector's `exporterhelper` default: per attempt.
pub const DEFAULT_GRPC_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2 keepalive pings (the Collector's `keepalive`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveConfig {
    /// Ping the server after this long without activity.
    #[serde(with = "humantime_serde")]
    pub time: Option<Duration>,
    /// Close the connection when a ping is not answered within this.
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Ping even when no request is in flight.
    pub permit_without_stream: bool,
}

/// `exporters.otlp`: OTLP over gRPC to one destination.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcExporterConfig {
    /// `host:port` of the destination (`https://host:port` and `http://host:port` are accepted; `http://` means
    /// plain text). Required.
    pub endpoint: String,
    /// Metadata sent with every request (`authorization: Bearer ${env:TOKEN}`); values are never printed.
    pub headers: Headers,
    /// `gzip` (default), `zstd` or `none`.
    pub compression: Compression,
    /// TLS settings; TLS is on unless `tls.insecure: true` or the endpoint starts with `http://`.
    pub tls: TlsClientConfig,
    /// Time limit of one attempt (default 5s); `0s` means none.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Retry with exponential backoff on retryable failures.
    pub retry_on_failure: RetryConfig,
    /// The bounded queue in front of the concurrent requests.
    pub sending_queue: QueueConfig,
    /// Split batches so one request's protobuf stays under this many bytes (default 4MiB less 128KiB, since 4 MiB
    /// is the default message limit of most gRPC servers).
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub max_request_bytes: u64,
    /// HTTP/2 keepalive pings.
    pub keepalive: Option<KeepaliveConfig>,
    /// Overrides the `:authority` the server sees (virtual hosting behind a proxy).
    pub authority: Option<String>,
    /// Accepted for compatibility; no effect (otlake retries until the server is ready).
    pub wait_for_ready: Option<bool>,
    /// Accepted for compatibility; no effect (one connection to the endpoint).
    pub balancer_name: Option<String>,
    /// Accepted for compatibility; no effect.
    pub read_buffer_size: Option<Value>,
    /// Accepted for compatibility; no effect.
    pub write_buffer_size: Option<Value>,
}

impl Default for GrpcExporterConfig {
    fn default() -> Self {
        GrpcExporterConfig {
            endpoint: String::new(),
            headers: Headers::default(),
            compression: Compression::Gzip,
            tls: TlsClientConfig::default(),
            timeout: DEFAULT_GRPC_TIMEOUT,
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            keepalive: None,
            authority: None,
            wait_for_ready: None,
            balancer_name: None,
            read_buffer_size: None,
            write_buffer_size: None,
        }
    }
}

/// Where a gRPC exporter connects: the URI tonic dials and whether TLS is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcTarget {
    pub uri: http::Uri,
    pub tls: bool,
}

impl GrpcExporterConfig {
    /// Every problem at once, with paths inside the component.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if let Err(e) = self.target() {
            errors.push(e);
        }
        self.headers.validate(&mut errors);
        self.tls.validate(&mut errors);
        self.retry_on_failure.validate(&mut errors);
        self.sending_queue.validate(&mut errors);
        validate_max_request_bytes(self.max_request_bytes, &mut errors);
        if let Some(authority) = &self.authority
            && authority.parse::<http::uri::Authority>().is_err()
        {
            errors.push(ConfigError::new(
                "authority",
                format!("`{authority}` is not a valid authority (host[:port])"),
            ));
        }
        errors
    }

    /// Parses `endpoint` the way the Collector does: `host:port`, or with an `http://`/`https://` scheme.
    pub fn target(&self) -> Result<GrpcTarget, ConfigError> {
        let endpoint = self.endpoint.trim();
        if endpoint.is_empty() {
            return Err(ConfigError::new(
                "endpoint",
                "required: the destination as `host:port` (e.g. `gateway:4317`)",
            ));
        }
        let endpoint = endpoint.strip_prefix("dns:///").unwrap_or(endpoint);
        let (tls, rest) = if let Some(rest) = endpoint.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = endpoint.strip_prefix("http://") {
            (false, rest)
        } else if endpoint.contains("://") || endpoint.starts_with("unix:") {
            return Err(ConfigError::new(
                "endpoint",
                format!(
                    "`{endpoint}`: unsupported scheme; use `host:port`, `http://host:port` or `https://host:port`"
                ),
            ));
        } else {
            (!self.tls.insecure, endpoint)
        };
        let authority = rest.trim_end_matches('/');
        let bad = |why: &str| {
            ConfigError::new(
                "endpoint",
                format!("`{}` is not a valid gRPC endpoint: {why}", self.endpoint),
            )
        };
        let parsed: http::uri::Authority =
            authority.parse().map_err(|_| bad("expected `host:port`"))?;
        if parsed.port_u16().is_none() && !endpoint.contains("://") {
            return Err(bad(
                "the port is missing (the OTLP/gRPC port is usually 4317)",
            ));
        }
        let scheme = if tls { "https" } else { "http" };
        let uri = format!("{scheme}://{parsed}")
            .parse()
            .map_err(|_| bad("expected `host:port`"))?;
        Ok(GrpcTarget { uri, tls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(endpoint: &str, insecure: bool) -> Result<GrpcTarget, ConfigError> {
        GrpcExporterConfig {
            endpoint: endpoint.into(),
            tls: TlsClientConfig {
                insecure,
                ..Default::default()
            },
            ..Default::default()
        }
        .target()
    }

    #[test]
    fn endpoints_parse_like_the_collectors() {
        let t = target("gateway:4317", false).expect("valid");
        assert_eq!(
            (t.uri.to_string().as_str(), t.tls),
            ("https://gateway:4317/", true)
        );
        let t = target("gateway:4317", true).expect("valid");
        assert_eq!(
            (t.uri.to_string().as_str(), t.tls),
            ("http://gateway:4317/", false)
        );
        let t = target("http://127.0.0.1:4317", false).expect("valid");
        assert!(!t.tls);
        let t = target("https://ingest.example.com", false).expect("valid");
        assert!(t.tls);
        assert!(target("gateway", false).is_err(), "no port");
        assert!(target("", false).is_err());
        assert!(target("unix:///tmp/otlp.sock", false).is_err());
    }
}
