//! Access to the receiver, over real sockets on 127.0.0.1 with real clients: TLS and mutual TLS on both
//! protocols (`tls`), and bearer-token authentication (`auth`), which refuses a request from its headers
//! before anything of it is read or reaches a pipeline.

#[path = "../receiver/support.rs"]
#[allow(dead_code)]
mod support;
mod tls_client;

mod auth;
mod tls;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;

use support::{BOUND, TestBody, bounded};

/// An HTTP answer (status, headers, body).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends one request with `client` to `uri`; `Err` when the exchange failed (refused handshake, closed
/// connection), as a client would see it.
pub async fn request<C>(
    client: &Client<C, TestBody>,
    uri: String,
    headers: &[(&str, &str)],
    body: TestBody,
) -> Result<Answer, String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let mut request = Request::builder().method(Method::POST).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body).expect("request");
    let response = tokio::time::timeout(BOUND, client.request(request))
        .await
        .map_err(|_| "no answer in time".to_owned())?
        .map_err(|e| format!("{e:?}"))?;
    let (parts, body) = response.into_parts();
    let body = bounded("response body", body.collect())
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
