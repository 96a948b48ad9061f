//! `auth:`: bearer-token authentication of every request, on both protocols (the Collector's
//! `bearertokenauth` extension, as receiver keys: `bearer_token` or `bearer_token_file`).
//!
//! Lifecycle: [`AuthConfig::validate`] checks the shape (no I/O); [`AuthConfig::authenticator`] reads the token
//! file at start-up; the [`Authenticator`] then wraps each protocol's router as its outermost layer
//! ([`layer_http`], [`layer_grpc`]).
//!
//! Guarantees:
//! - A request is judged from its headers alone, before anything else looks at it: without a valid
//!   `Authorization: Bearer <token>` it is answered HTTP 401 (with `WWW-Authenticate: Bearer`) or gRPC
//!   `UNAUTHENTICATED`, and its body is never read, decompressed or decoded, no memory budget is reserved and
//!   nothing reaches a pipeline. Over HTTP/1.1 the refusal closes the connection (its body is unread).
//! - Tokens are compared in constant time.
//! - The token is a [`Secret`], whose `Debug` prints `***`; no message quotes it. Once a request is
//!   authenticated its `Authorization` header is removed, so `include_metadata` never copies the credential
//!   into batch metadata (where an exporter could print or forward it).
//! - Each refusal is counted in `otlake_receiver_refused_items_total` with `reason="unauthenticated"` (a
//!   request, since its items are unknown) and the signal its path names (`unknown` for any other path).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use metrics::Counter;
use otlake_core::config::Secret;
use otlake_core::telemetry::RECEIVER_REFUSED;
use otlake_core::{ComponentId, ConfigError, Signal};
use serde::Deserialize;
use tonic::{Code, Status};

use crate::decode::Format;
use crate::error::Error;

/// The `reason` label of a refused request.
pub const REASON_UNAUTHENTICATED: &str = "unauthenticated";

/// `auth:`: exactly one of `bearer_token` and `bearer_token_file`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The token clients must send as `Authorization: Bearer <token>`; usually `${env:OTLAKE_TOKEN}`.
    pub bearer_token: Option<Secret>,
    /// A file holding the token (read at start-up; surrounding whitespace such as a final newline is ignored).
    pub bearer_token_file: Option<PathBuf>,
}

/// Why a token cannot be sent in a header, without quoting it.
fn token_problem(token: &Secret) -> Option<&'static str> {
    if token.is_empty() {
        Some("is empty")
    } else if !token.expose().bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be visible ASCII without spaces (it travels in an HTTP header)")
    } else {
        None
    }
}

impl AuthConfig {
    /// Shape checks, each at its path under `auth`; never quotes the token.
    pub fn validate(&self, errors: &mut Vec<ConfigError>) {
        match (&self.bearer_token, &self.bearer_token_file) {
            (None, None) => errors.push(ConfigError::new(
                "auth",
                "give `bearer_token` or `bearer_token_file` (or leave `auth` out to accept every client)",
            )),
            (Some(_), Some(_)) => errors.push(ConfigError::new(
                "auth",
                "give `bearer_token` or `bearer_token_file`, not both",
            )),
            (Some(token), None) => {
                if let Some(problem) = token_problem(token) {
                    errors.push(ConfigError::new("auth.bearer_token", problem));
                }
            }
            (None, Some(path)) if path.as_os_str().is_empty() => {
                errors.push(ConfigError::new("auth.bearer_token_file", "is empty"))
            }
            (None, Some(_)) => {}
        }
    }

    /// The token to check requests against, reading `bearer_token_file` (I/O: start-up only).
    pub fn token(&self) -> Result<Secret, Error> {
        match (&self.bearer_token, &self.bearer_token_file) {
            (Some(token), _) => Ok(token.clone()),
            (None, Some(path)) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| Error::TokenFileUnreadable {
                        path: path.clone(),
                        source,
                    })?;
                let token = Secret::new(text.trim());
                match token_problem(&token) {
                    Some(problem) => Err(Error::BadTokenFile {
                        path: path.clone(),
                        problem,
                    }),
                    None => Ok(token),
                }
            }
            // Validation refuses this; an empty token would match nothing a client can send.
            (None, None) => Ok(Secret::default()),
        }
    }
}

/// Checks requests against one token and counts the refusals of one receiver.
pub struct Authenticator {
    token: Secret,
    refused: [Counter; 4],
}

/// Index of the `unknown` signal counter.
const UNKNOWN: usize = 3;

fn index(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Logs => 1,
        Signal::Metrics => 2,
    }
}

impl Authenticator {
    pub fn new(id: &ComponentId, token: Secret) -> Arc<Self> {
        let receiver = id.to_string();
        let counter = |signal: &'static str| {
            metrics::counter!(RECEIVER_REFUSED, "receiver" => receiver.clone(),
                "signal" => signal, "reason" => REASON_UNAUTHENTICATED)
        };
        Arc::new(Authenticator {
            token,
            refused: [
                counter(Signal::Traces.as_str()),
                counter(Signal::Logs.as_str()),
                counter(Signal::Metrics.as_str()),
                counter("unknown"),
            ],
        })
    }

    /// Whether `headers` carry `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC 7235).
    pub fn is_authorized(&self, headers: &HeaderMap) -> bool {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        // Exactly one header: two credentials are ambiguous.
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let value = value.as_bytes();
        let scheme_len = b"bearer ".len();
        if value.len() <= scheme_len || !value[..scheme_len].eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        self.token.matches(value[scheme_len..].trim_ascii())
    }

    fn count_refusal(&self, signal: Option<Signal>) {
        self.refused[signal.map_or(UNKNOWN, index)].increment(1);
    }
}

/// The message of every refusal (the same for a missing and a wrong token: it tells a caller nothing).
const REFUSAL: &str = "missing or invalid bearer token: send `Authorization: Bearer <token>`";

struct HttpAuth {
    authenticator: Arc<Authenticator>,
    paths: [(String, Signal); 3],
}

/// Wraps the OTLP/HTTP router: unauthenticated requests get 401 before the router sees them.
/// `paths` are the signals' URL paths (`HttpConfig::signal_paths`), to count refusals per signal.
pub fn layer_http(
    router: Router,
    authenticator: Arc<Authenticator>,
    paths: [(String, Signal); 3],
) -> Router {
    let state = Arc::new(HttpAuth {
        authenticator,
        paths,
    });
    router.layer(middleware::from_fn_with_state(state, check_http))
}

async fn check_http(
    State(auth): State<Arc<HttpAuth>>,
    mut request: Request,
    next: Next,
) -> Response {
    if auth.authenticator.is_authorized(request.headers()) {
        request.headers_mut().remove(header::AUTHORIZATION);
        return next.run(request).await;
    }
    let path = request.uri().path();
    let signal = auth.paths.iter().find(|(p, _)| p == path).map(|(_, s)| *s);
    auth.authenticator.count_refusal(signal);
    tracing::debug!(
        path,
        "Refused an OTLP/HTTP request without a valid bearer token."
    );
    // The answer is in the request's encoding when it names protobuf, else JSON (readable by curl).
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let format = if content_type
        .windows(8)
        .any(|w| w.eq_ignore_ascii_case(b"protobuf"))
    {
        Format::Protobuf
    } else {
        Format::Json
    };
    let mut response = crate::http::response::status(
        StatusCode::UNAUTHORIZED,
        Code::Unauthenticated,
        REFUSAL,
        format,
    );
    let headers = response.headers_mut();
    headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    if request.version() <= Version::HTTP_11 {
        // The body was not read, so the connection cannot carry another request.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Wraps the OTLP/gRPC router: unauthenticated calls get `UNAUTHENTICATED` before the router sees them.
pub fn layer_grpc(router: Router, authenticator: Arc<Authenticator>) -> Router {
    router.layer(middleware::from_fn_with_state(authenticator, check_grpc))
}

async fn check_grpc(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    if authenticator.is_authorized(request.headers()) {
        request.headers_mut().remove(header::AUTHORIZATION);
        return next.run(request).await;
    }
    let path = request.uri().path();
    let signal = Signal::ALL.into_iter().find(|signal| {
        let service = match signal {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/",
        };
        path.starts_with(service)
    });
    authenticator.count_refusal(signal);
    tracing::debug!(
        path,
        "Refused an OTLP/gRPC call without a valid bearer token."
    );
    Status::unauthenticated(REFUSAL).into_http::<Body>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::parse_config;
    use serde_json::json;

    const TOKEN: &str = "s3cr3t-t0ken";

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::AUTHORIZATION, value.parse().expect("value"));
        }
        map
    }

    #[test]
    fn only_the_exact_bearer_token_is_authorized() {
        let auth = Authenticator::new(&ComponentId::new("otlp"), Secret::new(TOKEN));
        assert!(auth.is_authorized(&headers(&["Bearer s3cr3t-t0ken"])));
        assert!(auth.is_authorized(&headers(&["bearer s3cr3t-t0ken"])));
        assert!(auth.is_authorized(&headers(&["BEARER  s3cr3t-t0ken "])));
        for refused in [
            &[][..],
            &["s3cr3t-t0ken"],
            &["Basic s3cr3t-t0ken"],
            &["Bearer"],
            &["Bearer "],
            &["Bearer s3cr3t-t0ke"],
            &["Bearer s3cr3t-t0ken2"],
            &["Bearer S3CR3T-T0KEN"],
            &["Bearer s3cr3t-t0ken", "Bearer s3cr3t-t0ken"],
        ] {
            assert!(!auth.is_authorized(&headers(refused)), "{refused:?}");
        }
    }

    #[test]
    fn the_token_is_never_printed() {
        let config: AuthConfig = parse_config(&json!({"bearer_token": TOKEN})).expect("parses");
        let printed = format!("{config:?} {:#?}", config);
        assert!(!printed.contains(TOKEN), "{printed}");
        assert!(printed.contains("***"), "{printed}");

        // A token that is refused is not quoted either.
        let config: AuthConfig =
            parse_config(&json!({"bearer_token": "has space"})).expect("parses");
        let mut errors = Vec::new();
        config.validate(&mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "auth.bearer_token");
        assert!(
            !errors[0].to_string().contains("has space"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_numeric_token_from_the_environment_is_its_text() {
        let config: AuthConfig = parse_config(&json!({"bearer_token": 123456})).expect("parses");
        assert!(config.token().expect("token").matches(b"123456"));
    }

    #[test]
    fn validation_wants_exactly_one_source() {
        for (value, message) in [
            (json!({}), "give `bearer_token` or `bearer_token_file`"),
            (
                json!({"bearer_token": TOKEN, "bearer_token_file": "/t"}),
                "not both",
            ),
            (json!({"bearer_token": ""}), "is empty"),
            (json!({"bearer_token_file": ""}), "is empty"),
        ] {
            let config: AuthConfig = parse_config(&value).expect("parses");
            let mut errors = Vec::new();
            config.validate(&mut errors);
            assert_eq!(errors.len(), 1, "{value}");
            assert!(
                errors[0].message.contains(message),
                "{value}: {}",
                errors[0]
            );
        }
        let err = parse_config::<AuthConfig>(&json!({"token": TOKEN})).expect_err("unknown key");
        assert_eq!(err.path, "token");
        assert!(!err.to_string().contains(TOKEN), "{err}");
        let err = parse_config::<AuthConfig>(&json!({"bearer_token": [TOKEN]})).expect_err("list");
        assert!(!err.to_string().contains(TOKEN), "{err}");
    }

    #[test]
    fn the_token_file_is_read_and_trimmed_and_its_errors_name_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, format!("{TOKEN}\n")).expect("write");
        let config = AuthConfig {
            bearer_token_file: Some(file.clone()),
            ..AuthConfig::default()
        };
        assert!(config.token().expect("read").matches(TOKEN.as_bytes()));

        std::fs::write(&file, "two words\n").expect("write");
        let err = config.token().expect_err("a space");
        let text = err.to_string();
        assert!(
            text.contains("bearer_token_file") && text.contains(&file.display().to_string()),
            "{text}"
        );
        assert!(!text.contains("two words"), "{text}");

        let missing = AuthConfig {
            bearer_token_file: Some(dir.path().join("missing")),
            ..AuthConfig::default()
        };
        let text = missing.token().expect_err("missing").to_string();
        assert!(text.contains("missing"), "{text}");
    }

    #[tokio::test]
    async fn refusals_are_answered_and_counted_by_signal_and_never_reach_the_router() {
        use crate::counters::tests::Counters;
        use tower::ServiceExt;

        let recorder = Counters::default();
        let authenticator = metrics::with_local_recorder(&recorder, || {
            Authenticator::new(&ComponentId::new("otlp"), Secret::new(TOKEN))
        });
        let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let inner = {
            let reached = Arc::clone(&reached);
            Router::new().fallback(move || {
                reached.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { "served" }
            })
        };
        let http = layer_http(
            inner.clone(),
            Arc::clone(&authenticator),
            crate::config::HttpConfig::default().signal_paths(),
        );
        let grpc = layer_grpc(inner, authenticator);
        let request = |path: &str, authorization: Option<&str>| {
            let mut builder = http::Request::post(path);
            if let Some(value) = authorization {
                builder = builder.header(header::AUTHORIZATION, value);
            }
            builder.body(Body::empty()).expect("request")
        };

        let answer = http
            .clone()
            .oneshot(request("/v1/logs", None))
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        let answer = http
            .clone()
            .oneshot(request("/elsewhere", Some("Bearer nope")))
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        let answer = grpc
            .clone()
            .oneshot(request(
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                None,
            ))
            .await
            .expect("answer");
        assert_eq!(
            answer
                .headers()
                .get("grpc-status")
                .map(HeaderValue::as_bytes),
            Some(&b"16"[..])
        );
        assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0);

        let bearer = format!("Bearer {TOKEN}");
        let answer = http
            .oneshot(request("/v1/logs", Some(&bearer)))
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 1);

        let refused = |signal: &str| {
            recorder.get(&format!(
                "{RECEIVER_REFUSED}{{receiver=otlp,signal={signal},reason=unauthenticated}}"
            ))
        };
        assert_eq!(
            [
                refused("logs"),
                refused("unknown"),
                refused("metrics"),
                refused("traces")
            ],
            [1, 1, 1, 0]
        );
    }
}
