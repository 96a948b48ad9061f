//! OTLP/HTTP: one `POST` per request to the signal's URL, with `reqwest` over our rustls config.
//!
//! Response handling per the OTLP specification:
//! - 2xx: accepted; the body (protobuf or JSON, by its `Content-Type`) may carry a `partial_success`.
//! - 429, 502, 503, 504: retryable, after `Retry-After` (seconds or an HTTP date) when given.
//! - any other status: permanent; the message comes from the `google.rpc.Status` body when there is one.
//! - no response (connection refused, reset, timed out): retryable.
//!
//! Error texts never carry header values, and URLs in them lose their query string (it may hold a token).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use otlake_core::proto::collector::logs::v1::ExportLogsServiceResponse;
use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use otlake_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlake_core::{ExportRequest, Payload, Signal};

use super::{Accepted, PartialSuccess, SendError, Transport};
use crate::compress::compress;
use crate::config::{Encoding, HttpExporterConfig};
use crate::error::{Error, Result};
use crate::retry::MAX_SERVER_DELAY;
use otlake_core::config::Compression;
use otlake_core::rpc_status::RpcStatus;

/// Response bodies are small (a partial success or an error status); more than this is not read.
const MAX_RESPONSE_BYTES: usize = 64 << 10;
/// How much of a non-OTLP error body goes into the rejection reason.
const MAX_REASON_CHARS: usize = 300;

/// Sends to one OTLP/HTTP destination.
pub struct HttpTransport {
    client: reqwest::Client,
    /// Indexed like `Signal::ALL`; `None` for a signal this exporter does not carry.
    urls: [Option<Url>; 3],
    encoding: Encoding,
    compression: Compression,
}

fn signal_index(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Logs => 1,
        Signal::Metrics => 2,
    }
}

/// A URL fit for messages and logs: no query string, no user info (either may hold a token).
pub fn printable(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

impl HttpTransport {
    /// Builds the client: reads the TLS files and the system trust store (so: only in `run`).
    pub fn new(config: &HttpExporterConfig, signals: &[Signal]) -> Result<Self> {
        let mut urls: [Option<Url>; 3] = [None, None, None];
        for &signal in signals {
            let url = config
                .url_for(signal)
                .map_err(|e| Error::Client(e.to_string()))?;
            urls[signal_index(signal)] = Some(url);
        }
        let needs_roots = urls.iter().flatten().any(|u| u.scheme() == "https");
        let tls = super::tls::client_config(&config.tls, needs_roots)?;
        let headers = config.headers.to_header_map().map_err(Error::Client)?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(concat!("otlake/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            .redirect(redirect_policy());
        // No client timeout: the sender bounds each attempt with `timeout`, for both transports alike.
        if let Some(proxy) = &config.proxy_url {
            let proxy = reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| Error::Client(format!("proxy_url: {e}")))?;
            builder = builder.proxy(proxy);
        }
        if let Some(idle) = config.idle_conn_timeout {
            builder = builder.pool_idle_timeout(idle);
        }
        if config.disable_keep_alives {
            builder = builder.pool_max_idle_per_host(0);
        } else if let Some(max) = config.max_idle_conns_per_host {
            builder = builder.pool_max_idle_per_host(max);
        }
        let client = builder.build().map_err(|e| Error::Client(e.to_string()))?;
        Ok(HttpTransport {
            client,
            urls,
            encoding: config.encoding,
            compression: config.compression,
        })
    }
}

#[async_trait]
impl Transport for HttpTransport {
    fn encode(&self, payload: &Payload) -> Result<Bytes, SendError> {
        let body = match self.encoding {
            // A payload still in wire form is sent as received: no encode, and no copy when uncompressed.
            Encoding::Proto if self.compression == Compression::None => {
                return Ok(payload.encoded());
            }
            Encoding::Proto => payload.encode_to_vec(),
            Encoding::Json => {
                let request = payload
                    .request()
                    .map_err(|e| SendError::permanent(e.to_string()))?;
                match request {
                    ExportRequest::Traces(r) => serde_json::to_vec(r),
                    ExportRequest::Logs(r) => serde_json::to_vec(r),
                    ExportRequest::Metrics(r) => serde_json::to_vec(r),
                }
                .map_err(|e| SendError::permanent(format!("cannot encode as OTLP/JSON: {e}")))?
            }
        };
        let body = compress(self.compression, body)
            .map_err(|e| SendError::permanent(format!("cannot compress the request: {e}")))?;
        Ok(Bytes::from(body))
    }

    async fn send(&self, signal: Signal, body: &Bytes) -> Result<Accepted, SendError> {
        let Some(url) = &self.urls[signal_index(signal)] else {
            return Err(SendError::permanent(format!(
                "this exporter has no URL for {signal}"
            )));
        };
        let mut request = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, self.encoding.content_type())
            .body(body.clone());
        if let Some(token) = self.compression.token() {
            request = request.header(CONTENT_ENCODING, token);
        }
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            SendError::retryable(format!(
                "POST {}: {kind}: {}",
                printable(url),
                error_chain(&e.without_url())
            ))
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        // A failure to read the body after a 2xx still means the data was accepted.
        let body = read_limited(response).await;

        if status.is_success() {
            return Ok(parse_partial_success(signal, &body, is_json));
        }
        let reason = format!(
            "POST {} answered {status}: {}",
            printable(url),
            error_message(&body, is_json)
        );
        if is_retryable_status(status) {
            Err(SendError::Retryable {
                reason,
                retry_after,
            })
        } else if is_refusal_status(status) {
            Err(SendError::Refused { reason })
        } else {
            Err(SendError::Permanent { reason })
        }
    }
}

/// An error and its causes, `outer: inner: root` (reqwest's own text stops at "error sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Follows only 307 and 308, which resend the same body with the same method. A 301/302/303 would turn the
/// `POST` into a body-less `GET` whose 200 would look like a delivery: those come back as failures instead.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if matches!(attempt.status().as_u16(), 307 | 308) && attempt.previous().len() < 5 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Retryable per the OTLP/HTTP specification.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// The destination refuses us (credentials, path, its size limit), not the data: see [`SendError::Refused`].
pub fn is_refusal_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403 | 404 | 413)
}

/// `Retry-After: <seconds>` or `Retry-After: <HTTP date>`, at most [`MAX_SERVER_DELAY`] (the delay is also
/// what our own client is told).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(SystemTime::now()).unwrap_or_default()
        }
    };
    Some(delay.min(MAX_SERVER_DELAY))
}

async fn read_limited(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    body
}

fn decode_response<R>(body: &[u8], is_json: bool) -> Option<Accepted>
where
    R: Message + Default + serde::de::DeserializeOwned + PartialSuccess,
{
    let response: R = if is_json {
        serde_json::from_slice(body).ok()?
    } else {
        R::decode(body).ok()?
    };
    Some(response.partial())
}

/// The partial success in a 2xx body; an empty or unreadable body means "all accepted".
fn parse_partial_success(signal: Signal, body: &[u8], is_json: bool) -> Accepted {
    if body.is_empty() {
        return Accepted::default();
    }
    let parsed = match signal {
        Signal::Traces => decode_response::<ExportTraceServiceResponse>(body, is_json),
        Signal::Logs => decode_response::<ExportLogsServiceResponse>(body, is_json),
        Signal::Metrics => decode_response::<ExportMetricsServiceResponse>(body, is_json),
    };
    parsed.unwrap_or_default()
}

/// The message of a `google.rpc.Status` body, or the start of whatever text came back.
fn error_message(body: &[u8], is_json: bool) -> String {
    if body.is_empty() {
        return "(empty body)".into();
    }
    if !is_json
        && let Ok(status) = RpcStatus::decode(body)
        && !status.message.is_empty()
    {
        return status.message;
    }
    if is_json
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
        // `message` in an OTLP/JSON status; `detail` in FastAPI's errors (MLflow).
        && let Some(message) = ["message", "detail"]
            .iter()
            .find_map(|key| value.get(*key).and_then(|m| m.as_str()))
    {
        return message.to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let mut text: String = text.chars().take(MAX_REASON_CHARS).collect();
    if text.len() < body.len() {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        let later = SystemTime::now() + Duration::from_secs(30);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(later)).expect("a date");
        assert!(parsed <= Duration::from_secs(30) && parsed >= Duration::from_secs(28));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("18446744073709551615"),
            Some(MAX_SERVER_DELAY)
        );
    }

    #[test]
    fn only_the_specs_statuses_are_retryable() {
        for code in [429, 502, 503, 504] {
            assert!(is_retryable_status(
                StatusCode::from_u16(code).expect("code")
            ));
        }
        for code in [400, 401, 403, 404, 413, 500] {
            assert!(!is_retryable_status(
                StatusCode::from_u16(code).expect("code")
            ));
        }
    }

    #[test]
    fn error_messages_come_from_the_status_body() {
        let status = RpcStatus {
            code: 3,
            message: "bad span".into(),
            details: vec![],
        };
        assert_eq!(error_message(&status.encode_to_vec(), false), "bad span");
        assert_eq!(
            error_message(br#"{"code":3,"message":"bad json span"}"#, true),
            "bad json span"
        );
        assert_eq!(error_message(b"plain words", false), "plain words");
    }

    #[test]
    fn printable_urls_lose_their_query() {
        let url = Url::parse("https://user:pw@host/v1/traces?token=s3cr3t").expect("url");
        assert_eq!(printable(&url), "https://host/v1/traces");
    }
}
