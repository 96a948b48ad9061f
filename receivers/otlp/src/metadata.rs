//! `include_metadata`: the client's request headers (gRPC metadata) copied into the batch's [`RequestMeta`],
//! as the Collector's `client.Info.Metadata`. Only called when the option is on, so the default path builds
//! no strings per request.
//!
//! Names are lower case (HTTP/2 and the `http` crate already are); a header sent several times becomes one
//! entry with the values joined by `, ` (HTTP's own folding rule). Values that are not visible ASCII/UTF-8
//! (binary `-bin` gRPC metadata) are skipped.
//!
//! Credentials are never copied ([`NEVER_COPIED`]): batch metadata may be written to a write-ahead log on
//! disk in plain text. The pipeline then keeps only the keys one of its processors reads (the batch
//! processor's `metadata_keys`), so other headers do not travel further either.

use http::HeaderMap;
use otlake_core::RequestMeta;

/// Headers that carry credentials: never copied into metadata, whatever the configuration.
pub const NEVER_COPIED: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// The headers worth keeping as metadata.
pub fn from_headers(headers: &HeaderMap) -> RequestMeta {
    let mut meta = RequestMeta::default();
    for (name, value) in headers {
        if name.as_str().ends_with("-bin") || NEVER_COPIED.contains(&name.as_str()) {
            continue;
        }
        let Ok(value) = value.to_str() else {
            continue;
        };
        meta.metadata
            .entry(name.as_str().to_owned())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_fold_and_binary_ones_are_skipped() {
        let mut headers = HeaderMap::new();
        headers.append("x-tenant", "a".parse().expect("value"));
        headers.append("x-tenant", "b".parse().expect("value"));
        headers.append("trace-bin", "AAEC".parse().expect("value"));
        headers.append("X-Model", "llama".parse().expect("value"));
        let meta = from_headers(&headers);
        assert_eq!(
            meta.metadata.get("x-tenant").map(String::as_str),
            Some("a, b")
        );
        assert_eq!(
            meta.metadata.get("x-model").map(String::as_str),
            Some("llama")
        );
        assert!(!meta.metadata.contains_key("trace-bin"));
    }

    #[test]
    fn credentials_are_never_copied() {
        let mut headers = HeaderMap::new();
        for name in NEVER_COPIED {
            headers.append(name, "secret".parse().expect("value"));
        }
        headers.append("x-tenant", "a".parse().expect("value"));
        let meta = from_headers(&headers);
        assert_eq!(meta.metadata.keys().collect::<Vec<_>>(), ["x-tenant"]);
    }
}
