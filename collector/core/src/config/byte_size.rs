//! Byte sizes in configs: a plain number of bytes, or a string with a unit (`512KiB`, `30MB`, `1MiB`). The unit's
//! case is not significant, because Collector configs write `1kb` and `1mib` (its filelog's `fingerprint_size`).

use serde::{Deserialize, Deserializer, de::Error};

pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a byte size (e.g. 1048576, 512KiB, 30MB)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown byte unit `{}` in `{text}` (B, KB, MB, GB, KiB, MiB, GiB, in any case)",
                unit.trim()
            ));
        }
    };
    Ok((number * factor as f64) as u64)
}

/// `#[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]`
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(t) => parse(&t).map_err(D::Error::custom),
    }
}
