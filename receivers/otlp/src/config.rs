//! The receiver's YAML section: the OpenTelemetry Collector's `otlp` receiver keys (`protocols.grpc`,
//! `protocols.http`, their `endpoint`s, `max_recv_msg_size_mib`, `include_metadata`, the HTTP url paths) plus
//! otlake's `max_request_bytes` and `queue_wait`; `tls` per protocol ([`crate::tls`]) and `auth` for both
//! ([`crate::auth`]).
//!
//! Parsing is [`otlake_core::parse_config`]; [`OtlpReceiverConfig::validate`] is pure and reports every problem
//! at once. A protocol key that is present, even empty (`grpc:`), turns that protocol on with its defaults, as in
//! the Collector; a protocol that is absent is not started.

use std::time::Duration;

use otlake_core::{ConfigError, Signal};
use serde::{Deserialize, Deserializer};

use crate::auth::AuthConfig;
use crate::serve::ConnectionLimits;
use otlake_core::config::endpoint::{bind_address, check_listen};
use otlake_core::config::tls::TlsServerConfig;

/// Default gRPC endpoint: loopback, since otlake runs as a sidecar (the Collector also defaults to localhost).
pub const DEFAULT_GRPC_ENDPOINT: &str = "127.0.0.1:4317";
/// Default HTTP endpoint: loopback, as for gRPC.
pub const DEFAULT_HTTP_ENDPOINT: &str = "127.0.0.1:4318";
/// Default limit on one request's size, on the wire and after decompression: 30 MB.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 30_000_000;
/// Default wait for room in a full pipeline before answering retryable.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Default OTLP/HTTP paths (the OTLP specification's).
pub const DEFAULT_TRACES_URL_PATH: &str = "/v1/traces";
pub const DEFAULT_LOGS_URL_PATH: &str = "/v1/logs";
pub const DEFAULT_METRICS_URL_PATH: &str = "/v1/metrics";
/// Default connections served at once, per protocol. Each is a file descriptor: the write-ahead log and the
/// Delta writers need some too, so the two listeners together stay below the common soft limit of 1024.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default HTTP `read_header_timeout` (the Collector's).
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// Default HTTP `idle_timeout` (the Collector's).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default HTTP `read_timeout`. The Collector has none by default; otlake bounds the body so a client that
/// trickles it cannot hold a connection, its share of the memory budget or shutdown for ever.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default gRPC `max_concurrent_streams` (hyper's; gRPC-Go's is unlimited).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 200;
/// Default gRPC `keepalive.server_parameters.time` and `timeout` (gRPC-Go's).
pub const DEFAULT_KEEPALIVE_TIME: Duration = Duration::from_secs(2 * 60 * 60);
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The `otlp` receiver's configuration.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiverConfig {
    /// Which protocols to serve; at least one is required.
    pub protocols: Protocols,
    /// Largest request accepted, both as sent (possibly compressed) and after decompression. Larger requests
    /// are refused before decoding: HTTP 413, gRPC `RESOURCE_EXHAUSTED`. A byte size (`30MB`, `16MiB`, `1000000`).
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub max_request_bytes: u64,
    /// How long a request waits for room in a full pipeline before it is answered retryable
    /// (HTTP 503 / gRPC `UNAVAILABLE`). A duration (`2s`, `200ms`); `0s` never waits.
    #[serde(with = "humantime_serde")]
    pub queue_wait: Duration,
    /// Bearer-token authentication of every request on both protocols; absent: every client is accepted.
    /// Present but empty (`auth:`) is an error, never "off".
    #[serde(deserialize_with = "listed_means_enabled")]
    pub auth: Option<AuthConfig>,
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        OtlpReceiverConfig {
            protocols: Protocols::default(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            queue_wait: DEFAULT_QUEUE_WAIT,
            auth: None,
        }
    }
}

/// `protocols:`: a protocol that is listed is served, even with an empty section.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocols {
    /// OTLP/gRPC (`grpc:`), off unless listed.
    #[serde(deserialize_with = "listed_means_enabled")]
    pub grpc: Option<GrpcConfig>,
    /// OTLP/HTTP (`http:`), off unless listed.
    #[serde(deserialize_with = "listed_means_enabled")]
    pub http: Option<HttpConfig>,
}

/// `protocols.grpc`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// `host:port` to listen on; `:4317` means every interface. Default `127.0.0.1:4317`.
    pub endpoint: String,
    /// Largest gRPC message in MiB (the Collector's key). When set it replaces `max_request_bytes` for gRPC.
    pub max_recv_msg_size_mib: Option<u64>,
    /// Copy the request's headers (gRPC metadata) into the batch's metadata. Default `false`.
    pub include_metadata: bool,
    /// Serve over TLS (absent: plain text, h2c). Present but empty (`tls:`) is an error, never plain text.
    #[serde(deserialize_with = "listed_means_enabled")]
    pub tls: Option<TlsServerConfig>,
    /// Requests in flight at once on one connection (HTTP/2 streams; the Collector's key). Default 200.
    pub max_concurrent_streams: u32,
    /// Connection lifetime and HTTP/2 pings (the Collector's `keepalive.server_parameters`).
    pub keepalive: GrpcKeepalive,
    /// Connections served at once; further clients wait in the kernel's backlog. Default 512.
    pub max_connections: usize,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            endpoint: DEFAULT_GRPC_ENDPOINT.to_owned(),
            max_recv_msg_size_mib: None,
            include_metadata: false,
            tls: None,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            keepalive: GrpcKeepalive::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// `protocols.grpc.keepalive` (the Collector's keys; its `enforcement_policy` is not supported).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcKeepalive {
    pub server_parameters: KeepaliveServerParameters,
}

/// `protocols.grpc.keepalive.server_parameters`: gRPC-Go's `keepalive.ServerParameters`. `0s` turns one off.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveServerParameters {
    /// A connection with no call in flight for this long is closed (GOAWAY). Default off.
    #[serde(with = "humantime_serde")]
    pub max_connection_idle: Duration,
    /// A connection older than this is closed (GOAWAY) once its calls finish. Default off.
    #[serde(with = "humantime_serde")]
    pub max_connection_age: Duration,
    /// How long calls may go on after `max_connection_age` before the connection is dropped. Default off.
    #[serde(with = "humantime_serde")]
    pub max_connection_age_grace: Duration,
    /// Ping the client after this long without activity. Default 2h.
    #[serde(with = "humantime_serde")]
    pub time: Duration,
    /// Close the connection when a ping is not answered within this. Default 20s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for KeepaliveServerParameters {
    fn default() -> Self {
        KeepaliveServerParameters {
            max_connection_idle: Duration::ZERO,
            max_connection_age: Duration::ZERO,
            max_connection_age_grace: Duration::ZERO,
            time: DEFAULT_KEEPALIVE_TIME,
            timeout: DEFAULT_KEEPALIVE_TIMEOUT,
        }
    }
}

/// `0s` means "no limit".
fn limit(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

/// `protocols.http`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `host:port` to listen on; `:4318` means every interface. Default `127.0.0.1:4318`.
    pub endpoint: String,
    /// Copy the request's headers into the batch's metadata. Default `false`.
    pub include_metadata: bool,
    /// Path of trace exports. Default `/v1/traces`.
    pub traces_url_path: String,
    /// Path of log exports. Default `/v1/logs`.
    pub logs_url_path: String,
    /// Path of metric exports. Default `/v1/metrics`.
    pub metrics_url_path: String,
    /// Serve over TLS (absent: plain text). Present but empty (`tls:`) is an error, never plain text.
    #[serde(deserialize_with = "listed_means_enabled")]
    pub tls: Option<TlsServerConfig>,
    /// Longest a client may take to send a request's headers, including the wait for the next request on a
    /// keep-alive HTTP/1.1 connection (the Collector's key). Default 1m; `0s` none.
    #[serde(with = "humantime_serde")]
    pub read_header_timeout: Duration,
    /// Longest a client may take to send a request's body, counted from its headers (the Collector's key,
    /// which counts from the headers' start). Default 1m; `0s` none.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed (the Collector's key). Default 1m;
    /// `0s` none.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Connections served at once; further clients wait in the kernel's backlog. Default 512.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            endpoint: DEFAULT_HTTP_ENDPOINT.to_owned(),
            include_metadata: false,
            traces_url_path: DEFAULT_TRACES_URL_PATH.to_owned(),
            logs_url_path: DEFAULT_LOGS_URL_PATH.to_owned(),
            metrics_url_path: DEFAULT_METRICS_URL_PATH.to_owned(),
            tls: None,
            read_header_timeout: DEFAULT_READ_HEADER_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// `grpc:` with an empty (null) section means "on, with defaults"; only an absent key means off.
fn listed_means_enabled<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(
        Option::<T>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

impl GrpcConfig {
    /// The gRPC message size limit: `max_recv_msg_size_mib` if set, else the receiver's `max_request_bytes`.
    pub fn max_message_bytes(&self, max_request_bytes: u64) -> u64 {
        match self.max_recv_msg_size_mib {
            Some(mib) => mib.saturating_mul(1 << 20),
            None => max_request_bytes,
        }
    }

    /// What bounds the gRPC listener's connections.
    pub fn connection_limits(&self) -> ConnectionLimits {
        let keepalive = &self.keepalive.server_parameters;
        ConnectionLimits {
            max_connections: self.max_connections,
            // Only an HTTP/1 request (never gRPC) meets this one: hyper's default.
            header_read_timeout: Some(DEFAULT_HTTP1_HEADER_READ_TIMEOUT_ON_GRPC),
            idle_timeout: limit(keepalive.max_connection_idle),
            max_age: limit(keepalive.max_connection_age),
            max_age_grace: limit(keepalive.max_connection_age_grace),
            keepalive_interval: limit(keepalive.time),
            keepalive_timeout: keepalive.timeout,
            max_concurrent_streams: Some(self.max_concurrent_streams),
        }
    }
}

/// An HTTP/1 request on the gRPC port is answered 404/UNIMPLEMENTED; its headers get hyper's default time.
const DEFAULT_HTTP1_HEADER_READ_TIMEOUT_ON_GRPC: Duration = Duration::from_secs(30);

impl HttpConfig {
    /// Each signal's URL path.
    pub fn signal_paths(&self) -> [(String, Signal); 3] {
        [
            (self.traces_url_path.clone(), Signal::Traces),
            (self.logs_url_path.clone(), Signal::Logs),
            (self.metrics_url_path.clone(), Signal::Metrics),
        ]
    }

    /// What bounds the HTTP listener's connections.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: limit(self.read_header_timeout),
            idle_timeout: limit(self.idle_timeout),
            max_age: None,
            max_age_grace: None,
            keepalive_interval: None,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            max_concurrent_streams: Some(DEFAULT_MAX_CONCURRENT_STREAMS),
        }
    }

    /// The body read limit (`read_timeout`), if any.
    pub fn body_timeout(&self) -> Option<Duration> {
        limit(self.read_timeout)
    }

    /// The three export paths with their config keys.
    pub fn url_paths(&self) -> [(&'static str, &str); 3] {
        [
            ("traces_url_path", &self.traces_url_path),
            ("logs_url_path", &self.logs_url_path),
            ("metrics_url_path", &self.metrics_url_path),
        ]
    }
}

impl OtlpReceiverConfig {
    /// Reports every problem at once, each at its path inside the receiver's section.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.protocols.grpc.is_none() && self.protocols.http.is_none() {
            errors.push(ConfigError::new(
                "protocols",
                "no protocol configured: list `grpc:` and/or `http:`",
            ));
        }
        if self.max_request_bytes == 0 {
            errors.push(ConfigError::new(
                "max_request_bytes",
                "must be greater than 0",
            ));
        }
        if let Some(grpc) = &self.protocols.grpc {
            if grpc.max_recv_msg_size_mib == Some(0) {
                errors.push(ConfigError::new(
                    "protocols.grpc.max_recv_msg_size_mib",
                    "must be greater than 0 (leave it out to use max_request_bytes)",
                ));
            }
            if grpc.max_concurrent_streams == 0 {
                errors.push(ConfigError::new(
                    "protocols.grpc.max_concurrent_streams",
                    "must be at least 1",
                ));
            }
            check_listener(
                "protocols.grpc",
                &grpc.endpoint,
                grpc.tls.as_ref(),
                grpc.max_connections,
                &mut errors,
            );
        }
        if let Some(http) = &self.protocols.http {
            check_listener(
                "protocols.http",
                &http.endpoint,
                http.tls.as_ref(),
                http.max_connections,
                &mut errors,
            );
            let paths = http.url_paths();
            for (i, (key, path)) in paths.iter().enumerate() {
                if !path.starts_with('/') {
                    errors.push(ConfigError::new(
                        format!("protocols.http.{key}"),
                        format!("`{path}` must start with `/`"),
                    ));
                } else if let Some((other, _)) = paths[..i].iter().find(|(_, p)| p == path) {
                    errors.push(ConfigError::new(
                        format!("protocols.http.{key}"),
                        format!("`{path}` is also `{other}`: each signal needs its own path"),
                    ));
                }
            }
        }
        // Port 0 asks the system for a free port, so two of them never collide.
        if let (Some(grpc), Some(http)) = (&self.protocols.grpc, &self.protocols.http)
            && bind_address(&grpc.endpoint) == bind_address(&http.endpoint)
            && !grpc.endpoint.ends_with(":0")
        {
            errors.push(ConfigError::new(
                "protocols.http.endpoint",
                format!(
                    "`{}` is also the gRPC endpoint: gRPC and HTTP need separate ports",
                    http.endpoint
                ),
            ));
        }
        if let Some(auth) = &self.auth {
            auth.validate(&mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The endpoints this receiver will listen on.
    pub fn endpoints(&self) -> Vec<String> {
        let grpc = self.protocols.grpc.iter().map(|g| g.endpoint.clone());
        let http = self.protocols.http.iter().map(|h| h.endpoint.clone());
        grpc.chain(http).collect()
    }
}

/// What both protocols' listeners check: the endpoint, the TLS section and the connection cap.
fn check_listener(
    prefix: &str,
    endpoint: &str,
    tls: Option<&TlsServerConfig>,
    max_connections: usize,
    errors: &mut Vec<ConfigError>,
) {
    if let Err(message) = check_listen(endpoint) {
        errors.push(ConfigError::new(format!("{prefix}.endpoint"), message));
    }
    if let Some(tls) = tls {
        tls.validate(&format!("{prefix}.tls"), errors);
    }
    if max_connections == 0 {
        errors.push(ConfigError::new(
            format!("{prefix}.max_connections"),
            "must be at least 1",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::parse_config;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<OtlpReceiverConfig, ConfigError> {
        parse_config(&value)
    }

    #[test]
    fn collector_style_config_parses_with_every_key() {
        let config = parse(json!({
            "protocols": {
                "grpc": {"endpoint": "0.0.0.0:14317", "max_recv_msg_size_mib": 16, "include_metadata": true},
                "http": {
                    "endpoint": ":14318",
                    "include_metadata": true,
                    "traces_url_path": "/t",
                    "logs_url_path": "/l",
                    "metrics_url_path": "/m"
                }
            },
            "max_request_bytes": "8MiB",
            "queue_wait": "250ms"
        }))
        .expect("valid");
        let grpc = config.protocols.grpc.clone().expect("grpc on");
        let http = config.protocols.http.clone().expect("http on");
        assert_eq!(grpc.endpoint, "0.0.0.0:14317");
        assert!(grpc.include_metadata);
        assert_eq!(grpc.max_message_bytes(config.max_request_bytes), 16 << 20);
        assert_eq!(http.traces_url_path, "/t");
        assert_eq!(bind_address(&http.endpoint), "0.0.0.0:14318");
        assert_eq!(config.max_request_bytes, 8 << 20);
        assert_eq!(config.queue_wait, Duration::from_millis(250));
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.endpoints(), vec!["0.0.0.0:14317", ":14318"]);
    }

    #[test]
    fn an_empty_protocol_section_turns_it_on_with_defaults() {
        let config = parse(json!({"protocols": {"grpc": null, "http": null}})).expect("valid");
        assert_eq!(config.protocols.grpc, Some(GrpcConfig::default()));
        assert_eq!(config.protocols.http, Some(HttpConfig::default()));
        assert_eq!(config.max_request_bytes, DEFAULT_MAX_REQUEST_BYTES);
        assert_eq!(config.queue_wait, DEFAULT_QUEUE_WAIT);
        assert_eq!(
            config.endpoints(),
            vec![DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_ENDPOINT]
        );
        assert_eq!(
            config
                .protocols
                .grpc
                .as_ref()
                .expect("on")
                .max_message_bytes(30_000_000),
            30_000_000
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn connection_limits_take_the_collector_keys_and_defaults() {
        let config = parse(json!({"protocols": {"grpc": null, "http": null}})).expect("valid");
        let grpc = config.protocols.grpc.expect("on").connection_limits();
        let http = config.protocols.http.clone().expect("on");
        assert_eq!(http.body_timeout(), Some(DEFAULT_READ_TIMEOUT));
        let http = http.connection_limits();
        assert_eq!(http.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(http.header_read_timeout, Some(DEFAULT_READ_HEADER_TIMEOUT));
        assert_eq!(http.idle_timeout, Some(DEFAULT_IDLE_TIMEOUT));
        assert_eq!(grpc.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(grpc.idle_timeout, None, "gRPC-Go's default: no idle limit");
        assert_eq!(grpc.max_age, None);
        assert_eq!(grpc.keepalive_interval, Some(DEFAULT_KEEPALIVE_TIME));
        assert_eq!(
            grpc.max_concurrent_streams,
            Some(DEFAULT_MAX_CONCURRENT_STREAMS)
        );

        let config = parse(json!({"protocols": {
            "grpc": {
                "max_concurrent_streams": 16,
                "max_connections": 10,
                "keepalive": {"server_parameters": {
                    "max_connection_idle": "1m", "max_connection_age": "30m",
                    "max_connection_age_grace": "10s", "time": "30s", "timeout": "5s"
                }}
            },
            "http": {"read_header_timeout": "5s", "read_timeout": "0s", "idle_timeout": "90s", "max_connections": 20}
        }}))
        .expect("valid");
        assert_eq!(config.validate(), Ok(()));
        let grpc = config.protocols.grpc.expect("on").connection_limits();
        assert_eq!(
            (grpc.max_connections, grpc.max_concurrent_streams),
            (10, Some(16))
        );
        assert_eq!(grpc.idle_timeout, Some(Duration::from_secs(60)));
        assert_eq!(grpc.max_age, Some(Duration::from_secs(1800)));
        assert_eq!(grpc.max_age_grace, Some(Duration::from_secs(10)));
        assert_eq!(grpc.keepalive_interval, Some(Duration::from_secs(30)));
        assert_eq!(grpc.keepalive_timeout, Duration::from_secs(5));
        let http = config.protocols.http.expect("on");
        assert_eq!(http.body_timeout(), None, "0s: no limit");
        let http = http.connection_limits();
        assert_eq!(http.header_read_timeout, Some(Duration::from_secs(5)));
        assert_eq!(http.idle_timeout, Some(Duration::from_secs(90)));
        assert_eq!(http.max_connections, 20);
    }

    #[test]
    fn connection_limits_of_zero_and_unsupported_keepalive_keys_are_errors() {
        let config = parse(json!({"protocols": {
            "grpc": {"max_connections": 0, "max_concurrent_streams": 0},
            "http": {"max_connections": 0}
        }}))
        .expect("parses");
        let errors = config.validate().expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "protocols.grpc.max_concurrent_streams",
                "protocols.grpc.max_connections",
                "protocols.http.max_connections",
            ],
            "{errors:?}"
        );
        let err = parse(json!({"protocols": {"grpc": {"keepalive": {"enforcement_policy": {}}}}}))
            .expect_err("not supported");
        assert_eq!(err.path, "protocols.grpc.keepalive.enforcement_policy");
    }

    #[test]
    fn an_absent_protocol_is_off() {
        let config = parse(json!({"protocols": {"http": {}}})).expect("valid");
        assert_eq!(config.protocols.grpc, None);
        assert_eq!(config.endpoints(), vec![DEFAULT_HTTP_ENDPOINT]);
    }

    #[test]
    fn no_protocols_at_all_is_an_error() {
        for value in [serde_json::Value::Null, json!({}), json!({"protocols": {}})] {
            let errors = parse(value)
                .expect("parses")
                .validate()
                .expect_err("invalid");
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].path, "protocols");
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let err = parse(json!({"protocols": {"grpc": {"endpoit": "x"}}})).expect_err("unknown key");
        assert_eq!(err.path, "protocols.grpc.endpoit");
        let err = parse(json!({"protocols": {"websocket": {}}})).expect_err("unknown protocol");
        assert!(err.message.contains("websocket"), "{err}");
    }

    #[test]
    fn validate_reports_every_problem() {
        let config = parse(json!({
            "protocols": {
                "grpc": {"endpoint": "127.0.0.1:5000", "max_recv_msg_size_mib": 0},
                "http": {"endpoint": "127.0.0.1:5000", "logs_url_path": "v1/logs", "metrics_url_path": "/v1/traces"}
            },
            "max_request_bytes": 0
        }))
        .expect("parses");
        let errors = config.validate().expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "max_request_bytes",
                "protocols.grpc.max_recv_msg_size_mib",
                "protocols.http.logs_url_path",
                "protocols.http.metrics_url_path",
                "protocols.http.endpoint",
            ],
            "{errors:?}"
        );
    }

    #[test]
    fn both_protocols_may_ask_for_a_free_port() {
        let config = parse(json!({"protocols": {
            "grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}
        }}))
        .expect("parses");
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn endpoints_must_be_host_and_port() {
        for bad in ["localhost", "127.0.0.1:99999", ":x", "::1:4317"] {
            let config = parse(json!({"protocols": {"grpc": {"endpoint": bad}}})).expect("parses");
            let errors = config.validate().expect_err(bad);
            assert_eq!(errors[0].path, "protocols.grpc.endpoint", "{bad}");
        }
        for good in ["localhost:4317", "[::1]:4317", ":4317", "0.0.0.0:0"] {
            let config = parse(json!({"protocols": {"grpc": {"endpoint": good}}})).expect("parses");
            assert_eq!(config.validate(), Ok(()), "{good}");
        }
    }

    #[test]
    fn access_keys_parse_and_the_token_is_never_printed() {
        let config = parse(json!({
            "protocols": {
                "grpc": {"tls": {"cert_file": "/c.pem", "key_file": "/c.key", "client_ca_file": "/ca.pem"}},
                "http": {"tls": {"cert_file": "/c.pem", "key_file": "/c.key"}}
            },
            "auth": {"bearer_token": "s3cr3t-receiver-token"}
        }))
        .expect("valid");
        assert_eq!(config.validate(), Ok(()));
        let grpc_tls = config.protocols.grpc.as_ref().and_then(|g| g.tls.as_ref());
        assert_eq!(
            grpc_tls.and_then(|t| t.client_ca_file.as_deref()),
            Some(std::path::Path::new("/ca.pem"))
        );
        let printed = format!("{config:?} {config:#?}");
        assert!(!printed.contains("s3cr3t-receiver-token"), "{printed}");
        assert!(printed.contains("bearer_token: Some(***)"), "{printed}");
    }

    #[test]
    fn an_empty_tls_or_auth_section_is_an_error_never_off() {
        let config =
            parse(json!({"protocols": {"grpc": {"tls": null}, "http": {"tls": {}}}, "auth": null}))
                .expect("parses");
        let errors = config.validate().expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "protocols.grpc.tls.cert_file",
                "protocols.grpc.tls.key_file",
                "protocols.http.tls.cert_file",
                "protocols.http.tls.key_file",
                "auth",
            ],
            "{errors:?}"
        );
    }
}
