//! [`Secret`]: a config value that must never be shown (a token, a password, a private key, a header value).
//!
//! Guarantees: `Debug` and `Display` print `***`; the type has no `Serialize`, so it cannot be written back
//! out; a value of the wrong shape is refused without quoting it. The text is the user's, unchanged: the
//! service keeps a substituted `${env:X}` as text unless it reads back as the same number (`007` stays
//! `"007"`), and a number or boolean that reaches a secret is taken as its text, as the Collector does.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use subtle::ConstantTimeEq;

/// A string that must not be printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it (a request header, a TLS key, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `offered` is this secret, in time that does not depend on where they differ.
    pub fn matches(&self, offered: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(offered))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl Visitor<'_> for SecretVisitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            // A scalar the YAML reader typed (`token: 1234`): its text, which is what the user wrote.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            // Maps, lists and null: serde's own message names only the kind ("invalid type: map"), no content.
        }

        d.deserialize_any(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let secret = Secret::new("s3cr3t");
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert_eq!(secret.expose(), "s3cr3t");
    }

    #[test]
    fn compared_by_content() {
        let secret = Secret::new("s3cr3t");
        assert!(secret.matches(b"s3cr3t"));
        assert!(!secret.matches(b"s3cr3T"));
        assert!(!secret.matches(b"s3cr3"));
    }

    #[test]
    fn scalars_are_taken_as_their_text_and_maps_refused_without_content() {
        let from = |v: serde_json::Value| serde_json::from_value::<Secret>(v);
        assert_eq!(
            from(serde_json::json!(1234)).expect("number").expose(),
            "1234"
        );
        assert_eq!(
            from(serde_json::json!(true)).expect("bool").expose(),
            "true"
        );
        let err = from(serde_json::json!({"s3cr3t": 1})).expect_err("map");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
}
