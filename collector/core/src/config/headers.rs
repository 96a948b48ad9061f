//! Request headers from a `headers:` section, whose values are secrets (`Authorization: Bearer ${env:TOKEN}`).
//!
//! Guarantee: a header value never appears in `Debug` output, in a log line or in a validation message: values
//! are [`Secret`]s, and validation names the header, never its value.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, Secret};

/// Header name → value. Names are matched case-insensitively by HTTP and gRPC; we keep them as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Headers(pub BTreeMap<String, Secret>);

impl Headers {
    /// Checks every name and value; messages name the header, never print the value.
    pub fn validate(&self, errors: &mut Vec<ConfigError>) {
        for (name, value) in &self.0 {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(ConfigError::new(
                    format!("headers.{name}"),
                    "not a valid header name (letters, digits and `!#$%&'*+-.^_`|~` only)",
                ));
            }
            if http::HeaderValue::from_str(value.expose()).is_err() {
                errors.push(ConfigError::new(
                    format!("headers.{name}"),
                    "the value is not a valid header value (control characters or non-ASCII); value not shown",
                ));
            }
        }
    }

    /// The headers as an `http` map, for the transports. Call after [`Headers::validate`] passed.
    pub fn to_header_map(&self) -> Result<http::HeaderMap, String> {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.0 {
            let header_name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header `{name}`: invalid name"))?;
            let mut header_value = http::HeaderValue::from_str(value.expose())
                .map_err(|_| format!("header `{name}`: invalid value (not shown)"))?;
            header_value.set_sensitive(true);
            map.insert(header_name, header_value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_values() {
        let headers: Headers = serde_json::from_value(serde_json::json!({
            "Authorization": "Bearer s3cr3t-token",
            "x-project": 1234,
        }))
        .expect("valid");
        let printed = format!("{headers:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(!printed.contains("1234"), "{printed}");
        assert!(printed.contains("Authorization"), "{printed}");
        assert_eq!(headers.0["x-project"].expose(), "1234");
    }

    #[test]
    fn invalid_values_are_reported_without_the_value() {
        let headers = Headers(BTreeMap::from([
            (
                "Authorization".into(),
                Secret::new("Bearer s3cr3t\nX: injected"),
            ),
            ("bad name".into(), Secret::new("s3cr3t")),
        ]));
        let mut errors = Vec::new();
        headers.validate(&mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
        for e in &errors {
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn a_map_as_value_is_refused_without_its_content() {
        let err = serde_json::from_value::<Headers>(serde_json::json!({"a": {"s3cr3t": 1}}))
            .expect_err("not a string");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
