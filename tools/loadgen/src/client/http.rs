//! OTLP/HTTP with protobuf bodies over a pooled HTTP/1.1 keep-alive client (hyper), one connection per
//! request in flight.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{Answer, partial_success};
use crate::LoadgenError;
use crate::args::{Compression, LoadgenArgs, Signal};

pub struct HttpClient {
    client: HyperClient<HttpConnector, Full<Bytes>>,
    /// `/v1/traces`, `/v1/logs`, `/v1/metrics` under the endpoint.
    uris: [Uri; 3],
    headers: HeaderMap,
    gzip: bool,
    timeout: Duration,
}

fn slot(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Logs => 1,
        Signal::Metrics => 2,
    }
}

impl HttpClient {
    pub fn new(args: &LoadgenArgs) -> Result<HttpClient, LoadgenError> {
        let base = args.endpoint_url();
        let base = base.trim_end_matches('/');
        let uri = |signal: Signal| -> Result<Uri, LoadgenError> {
            let url = format!("{base}/v1/{}", signal.as_str());
            url.parse()
                .map_err(|e: http::uri::InvalidUri| LoadgenError::Endpoint {
                    url,
                    reason: e.to_string(),
                })
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        if args.compression == Compression::Gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        for (k, v) in &args.headers {
            let bad = || LoadgenError::Header(format!("{k}={v}"));
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad())?,
                HeaderValue::from_str(v).map_err(|_| bad())?,
            );
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(args.concurrency)
            .build(connector);
        Ok(HttpClient {
            client,
            uris: [
                uri(Signal::Traces)?,
                uri(Signal::Logs)?,
                uri(Signal::Metrics)?,
            ],
            headers,
            gzip: args.compression == Compression::Gzip,
            timeout: args.timeout,
        })
    }

    pub async fn send(&self, signal: Signal, body: Bytes) -> Answer {
        let body = if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            match enc.write_all(&body).and_then(|()| enc.finish()) {
                Ok(zipped) => Bytes::from(zipped),
                Err(e) => {
                    return Answer::Refused {
                        reason: format!("gzip: {e}"),
                    };
                }
            }
        } else {
            body
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uris[slot(signal)].clone();
        *request.headers_mut() = self.headers.clone();
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                // hyper-util's error hides the cause (connection refused, reset...) behind its source chain.
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text = format!("{text}: {s}");
                    source = s.source();
                }
                text
            })?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok::<_, String>((parts, body))
        };
        let (parts, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Answer::Retryable {
                    reason: format!("no answer within {:?}", self.timeout),
                    retry_after: None,
                };
            }
            Ok(Err(reason)) => {
                return Answer::Retryable {
                    reason,
                    retry_after: None,
                };
            }
            Ok(Ok(answer)) => answer,
        };
        classify(signal, parts.status, &parts.headers, &body)
    }
}

fn classify(signal: Signal, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Answer {
    if status.is_success() {
        return match partial_success(signal, body) {
            Ok((rejected, message)) => Answer::Accepted { rejected, message },
            // An empty or non-protobuf 2xx body still means accepted (some servers answer `{}`).
            Err(_) => Answer::Accepted {
                rejected: 0,
                message: String::new(),
            },
        };
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)])
        .trim()
        .to_owned();
    let reason = format!(
        "HTTP {status}{}{text}",
        if text.is_empty() { "" } else { ": " }
    );
    match status.as_u16() {
        429 | 502 | 503 | 504 => Answer::Retryable {
            reason,
            retry_after: headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        },
        _ => Answer::Refused { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceResponse,
    };
    use prost::Message;

    #[test]
    fn statuses_are_classified_as_the_otlp_spec_says() {
        let none = HeaderMap::new();
        assert!(matches!(
            classify(Signal::Traces, StatusCode::OK, &none, b""),
            Answer::Accepted { rejected: 0, .. }
        ));
        let mut after = HeaderMap::new();
        after.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        match classify(
            Signal::Logs,
            StatusCode::SERVICE_UNAVAILABLE,
            &after,
            b"busy",
        ) {
            Answer::Retryable {
                retry_after,
                reason,
            } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)));
                assert!(
                    reason.contains("503") && reason.contains("busy"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(Signal::Traces, StatusCode::TOO_MANY_REQUESTS, &none, b""),
            Answer::Retryable { .. }
        ));
        assert!(matches!(
            classify(Signal::Traces, StatusCode::BAD_REQUEST, &none, b"bad"),
            Answer::Refused { .. }
        ));
    }

    #[test]
    fn a_partial_success_reports_the_rejected_count() {
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "too big".into(),
            }),
        }
        .encode_to_vec();
        match classify(Signal::Traces, StatusCode::OK, &HeaderMap::new(), &body) {
            Answer::Accepted { rejected, message } => {
                assert_eq!((rejected, message.as_str()), (3, "too big"));
            }
            other => panic!("{other:?}"),
        }
    }
}
