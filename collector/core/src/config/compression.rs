//! The `compression:` key of a sender: `gzip` (the Collector's default), `zstd` or `none`.

use serde::Deserialize;

/// How request bodies are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    /// No compression; `""` is accepted too, as in the Collector.
    #[serde(alias = "")]
    None,
}

impl Compression {
    /// The `Content-Encoding` / `grpc-encoding` token.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
            Compression::None => None,
        }
    }
}
