//! One HTTP scrape of one target: the request Prometheus makes (content negotiation, gzip, authorization,
//! timeout header) and a body read under two bounds, `body_size_limit` and the daemon's memory budget.
//!
//! Lifecycle: a [`Scraper`] is made once per target in the receiver's `run` (it reads credential files and
//! TLS material); [`Scraper::fetch`] runs once per scrape. The scrape's deadline is the caller's (the whole
//! scrape, parse included, is bounded by `scrape_timeout`).
//!
//! Guarantees: no body larger than `body_size_limit` is held, compressed or not: the read stops at the first
//! byte past it. Every byte held is reserved against [`MemoryBudget`] first (in doubling steps), so many targets
//! answering large bodies at once slow to a failed scrape instead of growing the daemon. Credentials are sent,
//! never logged: errors name the URL without them.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, header};
use otlake_core::{MemoryBudget, Reservation};

use crate::error::ScrapeError;
use crate::parse::Format;

/// What Prometheus asks for: OpenMetrics first, the text format as the fallback.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.9,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// The first reservation made for a body; it doubles as the body grows.
const FIRST_RESERVATION: u64 = 64 << 10;

/// A fetched body and what holds its memory.
#[derive(Debug)]
pub struct Fetched {
    /// Decompressed.
    pub body: Vec<u8>,
    pub format: Format,
    /// The body's share of the memory budget, held until the body is dropped.
    pub held: BodyBudget,
}

/// Scrapes one URL.
pub struct Scraper {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    body_size_limit: u64,
    budget: Arc<MemoryBudget>,
}

impl Scraper {
    /// `headers` carries the authorization (already built from the secrets) and the per-job constants.
    pub fn new(
        client: reqwest::Client,
        url: reqwest::Url,
        headers: HeaderMap,
        body_size_limit: u64,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        Scraper {
            client,
            url,
            headers,
            body_size_limit,
            budget,
        }
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// GETs the target and reads the whole body within the limits.
    pub async fn fetch(&self) -> Result<Fetched, ScrapeError> {
        let response = self
            .client
            .get(self.url.clone())
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| ScrapeError::Connect(describe(e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ScrapeError::Status(status.as_u16()));
        }
        let limit = self.body_size_limit;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(ScrapeError::BodyTooLarge { limit });
        }
        let headers = response.headers();
        let format = Format::from_content_type(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        let gzip = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        let mut held = BodyBudget::new(Arc::clone(&self.budget));
        let mut raw = Vec::new();
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ScrapeError::Connect(describe(e)))?
        {
            let len = raw.len() as u64 + chunk.len() as u64;
            if len > limit {
                return Err(ScrapeError::BodyTooLarge { limit });
            }
            held.grow_to(len)?;
            raw.extend_from_slice(&chunk);
        }
        if !gzip {
            return Ok(Fetched {
                body: raw,
                format,
                held,
            });
        }
        let mut decompressed_budget = BodyBudget::new(Arc::clone(&self.budget));
        let body = gunzip(&raw, limit, &mut decompressed_budget)?;
        drop(raw);
        drop(held);
        Ok(Fetched {
            body,
            format,
            held: decompressed_budget,
        })
    }
}

/// Decompresses a gzip body, stopping at the first byte past `limit`.
fn gunzip(raw: &[u8], limit: u64, budget: &mut BodyBudget) -> Result<Vec<u8>, ScrapeError> {
    let mut decoder = flate2::read::GzDecoder::new(raw).take(limit.saturating_add(1));
    let mut out = Vec::new();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let n = decoder
            .read(&mut buffer)
            .map_err(|e| ScrapeError::Decompress(e.to_string()))?;
        if n == 0 {
            return Ok(out);
        }
        let len = out.len() as u64 + n as u64;
        if len > limit {
            return Err(ScrapeError::BodyTooLarge { limit });
        }
        budget.grow_to(len)?;
        out.extend_from_slice(&buffer[..n]);
    }
}

/// Memory reserved for a body as it grows, in doubling steps so that a large body costs few reservations.
#[derive(Debug)]
pub struct BodyBudget {
    budget: Arc<MemoryBudget>,
    held: Vec<Reservation>,
    reserved: u64,
}

impl BodyBudget {
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        BodyBudget {
            budget,
            held: Vec::new(),
            reserved: 0,
        }
    }

    /// Makes sure `bytes` are reserved, or fails the scrape when the budget is spent.
    pub fn grow_to(&mut self, bytes: u64) -> Result<(), ScrapeError> {
        while self.reserved < bytes {
            let step = self.reserved.max(FIRST_RESERVATION);
            let reservation = self
                .budget
                .try_reserve(step)
                .ok_or_else(|| ScrapeError::Memory {
                    used: self.budget.used(),
                    limit: self.budget.limit(),
                })?;
            self.reserved += step;
            self.held.push(reservation);
        }
        Ok(())
    }

    pub fn reserved(&self) -> u64 {
        self.reserved
    }
}

/// A client error without the URL's query or credentials (reqwest's Display includes the URL).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The headers every scrape of a job sends.
pub fn request_headers(
    timeout: Duration,
    enable_compression: bool,
    authorization: Option<&str>,
) -> Result<HeaderMap, ScrapeError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
    if enable_compression {
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    } else {
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    headers.insert(
        "x-prometheus-scrape-timeout-seconds",
        HeaderValue::from_str(&format!("{}", timeout.as_secs_f64()))
            .map_err(|_| ScrapeError::Config("timeout".into()))?,
    );
    if let Some(value) = authorization {
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            ScrapeError::Config("the authorization is not a valid header value (not shown)".into())
        })?;
        value.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).expect("write");
        encoder.finish().expect("finish")
    }

    #[test]
    fn gunzip_stops_at_the_limit_without_inflating_the_rest() {
        let bomb = gzip(&vec![b'a'; 10 << 20]);
        let budget = MemoryBudget::new(1 << 30);
        let mut held = BodyBudget::new(Arc::clone(&budget));
        let err = gunzip(&bomb, 1 << 20, &mut held).expect_err("over the limit");
        assert!(
            matches!(err, ScrapeError::BodyTooLarge { limit } if limit == 1 << 20),
            "{err}"
        );
        assert!(held.reserved() <= 2 << 20, "{}", held.reserved());

        let mut held = BodyBudget::new(Arc::clone(&budget));
        let body = gunzip(&gzip(b"up 1\n"), 1 << 20, &mut held).expect("small");
        assert_eq!(body, b"up 1\n");
    }

    #[test]
    fn a_spent_memory_budget_fails_the_body() {
        let budget = MemoryBudget::new(100 << 10);
        let _other = budget.try_reserve(90 << 10).expect("fits");
        let mut held = BodyBudget::new(Arc::clone(&budget));
        let err = held.grow_to(10).expect_err("no room for 64 KiB");
        assert!(matches!(err, ScrapeError::Memory { .. }), "{err}");
    }

    #[test]
    fn reservations_double_and_are_released_with_the_body() {
        let budget = MemoryBudget::new(1 << 30);
        let mut held = BodyBudget::new(Arc::clone(&budget));
        held.grow_to(1 << 20).expect("fits");
        assert_eq!(held.reserved(), 1 << 20);
        assert_eq!(held.held.len(), 5, "64K, 64K, 128K, 256K, 512K");
        drop(held);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_authorization_header_is_sensitive() {
        let headers =
            request_headers(Duration::from_secs(10), true, Some("Bearer s3cret")).expect("valid");
        assert!(headers[header::AUTHORIZATION].is_sensitive());
        assert_eq!(headers["x-prometheus-scrape-timeout-seconds"], "10");
        assert_eq!(headers[header::ACCEPT_ENCODING], "gzip");
    }
}
