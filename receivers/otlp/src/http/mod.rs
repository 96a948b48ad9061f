//! The OTLP/HTTP front end: `POST` of protobuf (`application/x-protobuf`) or JSON (`application/json`) to the
//! three signal paths, optionally `gzip`, `zstd` or `deflate` encoded.
//!
//! One handler serves every path: it matches the path against the configured ones itself (an exact string
//! compare, and no router that could panic on an odd configured path), checks method, content type and
//! encoding, reads the body within `max_request_bytes`, decodes it once, hands it to [`Ingest`] and answers from
//! the verdict (see [`response`] for the status codes). Nothing in a request can stop the server: every failure
//! is an answer to that request only.

pub mod body;
pub mod response;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, Method, Version, header};
use otlake_core::Signal;

use crate::config::HttpConfig;
use crate::decode::{Format, decode_off_reactor};
use crate::decompress::Encoding;
use crate::error::Error;
use crate::ingest::Ingest;

/// OTLP/JSON is parsed into a `serde_json::Value` tree first (see [`crate::json`]), which takes far more
/// memory than the decoded protobuf: a JSON body is reserved at this many times a protobuf body of its size.
pub const JSON_WEIGHT: u64 = 4;

/// What the handler needs, shared by every request.
struct HttpState {
    ingest: Arc<Ingest>,
    include_metadata: bool,
    max_request_bytes: usize,
    /// `read_timeout`: longest a body may take to arrive.
    body_timeout: Option<std::time::Duration>,
    paths: [(String, Signal); 3],
}

impl HttpState {
    fn signal_for(&self, path: &str) -> Option<Signal> {
        self.paths
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, signal)| *signal)
    }
}

/// The HTTP application (no socket: tests and `run` serve it).
pub fn router(ingest: Arc<Ingest>, config: &HttpConfig, max_request_bytes: usize) -> Router {
    let state = Arc::new(HttpState {
        ingest,
        include_metadata: config.include_metadata,
        max_request_bytes,
        body_timeout: config.body_timeout(),
        paths: [
            (config.traces_url_path.clone(), Signal::Traces),
            (config.logs_url_path.clone(), Signal::Logs),
            (config.metrics_url_path.clone(), Signal::Metrics),
        ],
    });
    Router::new().fallback(handle).with_state(state)
}

/// The body format from `Content-Type` (parameters such as `charset` are ignored).
fn request_format(headers: &HeaderMap) -> Result<Format, Error> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = value.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/x-protobuf")
        || media_type.eq_ignore_ascii_case("application/protobuf")
    {
        Ok(Format::Protobuf)
    } else if media_type.eq_ignore_ascii_case("application/json") {
        Ok(Format::Json)
    } else {
        Err(Error::Unsupported(format!(
            "unsupported Content-Type `{value}`: OTLP/HTTP takes application/x-protobuf or application/json"
        )))
    }
}

fn request_encoding(headers: &HeaderMap) -> Result<Encoding, Error> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    value
        .to_str()
        .ok()
        .and_then(Encoding::from_header)
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "unsupported Content-Encoding `{}`: use gzip, zstd, deflate or none",
                String::from_utf8_lossy(value.as_bytes())
            ))
        })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn handle(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let http1 = request.version() <= Version::HTTP_11;
    // Errors are answered in the request's encoding when it has a known one, else in JSON (readable by curl).
    let reply_format = request_format(request.headers()).unwrap_or(Format::Json);
    match serve(&state, request).await {
        Ok(response) => response,
        Err(err) => {
            tracing::debug!(receiver = %state.ingest.id(), error = %err, "Refused an OTLP/HTTP request.");
            response::request_error(&err, reply_format, http1)
        }
    }
}

async fn serve(state: &HttpState, request: Request) -> Result<Response, Error> {
    let path = request.uri().path();
    let Some(signal) = state.signal_for(path) else {
        return Err(Error::NoEndpoint {
            path: path.to_string(),
        });
    };
    if request.method() != Method::POST {
        return Err(Error::MethodNotAllowed {
            method: request.method().to_string(),
            path: path.to_string(),
        });
    }
    let headers = request.headers();
    let format = request_format(headers)?;
    let encoding = request_encoding(headers)?;
    let length = content_length(headers);
    let meta = state
        .include_metadata
        .then(|| crate::metadata::from_headers(headers));
    // The memory budget: a JSON body weighs JSON_WEIGHT times a protobuf one; a compressed body is first
    // weighed at four times its size, then re-admitted on its decompressed size as it inflates.
    let weight = if format == Format::Json {
        JSON_WEIGHT
    } else {
        1
    };
    let inflation = if encoding == Encoding::Identity { 1 } else { 4 };
    // Reserved before the body is read when its length is known (an oversized length is refused by
    // `read_body` as 413 instead), else chunk by chunk as it arrives.
    let known = length.filter(|&l| l <= state.max_request_bytes as u64);
    let initial = known.unwrap_or(0).saturating_mul(inflation * weight);
    let mut reservation = match state.ingest.admit(signal, initial) {
        Ok(held) => held,
        Err(refused) => {
            // The body is read and thrown away chunk by chunk (nothing kept): the client hears its 503
            // reliably (closing on an unread body can reset the connection before the answer arrives)
            // and the connection can carry its retry.
            body::drain(request.into_body()).await;
            return Ok(response::answer(signal, refused, format));
        }
    };
    let ingest = &state.ingest;
    let read = body::read_body(
        request.into_body(),
        length,
        state.max_request_bytes,
        |read| {
            ingest.grow(
                signal,
                &mut reservation,
                (read as u64).saturating_mul(inflation * weight),
            )
        },
    );
    // A client that trickles its body would otherwise hold the connection, its reservation and shutdown.
    let bytes = match state.body_timeout {
        Some(limit) => tokio::time::timeout(limit, read)
            .await
            .map_err(|_| Error::TimedOut { limit })??,
        None => read.await?,
    };
    let decode_weight = bytes.len().saturating_mul(inflation as usize);
    let payload = decode_off_reactor(decode_weight, || {
        body::decode_body(
            signal,
            format,
            encoding,
            &bytes,
            state.max_request_bytes,
            |inflated| {
                ingest.grow(
                    signal,
                    &mut reservation,
                    (inflated as u64).saturating_mul(weight),
                )
            },
        )
    })?;
    drop(bytes);
    let answer = state
        .ingest
        .export_held(payload, meta, Some(reservation))
        .await;
    Ok(response::answer(signal, answer, format))
}
