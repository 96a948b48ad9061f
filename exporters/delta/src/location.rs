//! Where tables live: the base location of the config, the URL of each table under it, and the writer id
//! derived from them.
//!
//! Parsing ([`Location::parse`]) is pure and used by config validation. Resolving a local path to an absolute
//! `file://` URL reads the current directory; creating the directory happens only when the exporter runs
//! ([`Location::prepare`]). Object stores (`s3://`, `abfss://`, `az://`, `gs://`) are reached through delta-rs'
//! object_store handlers, registered once by [`register_object_stores`] (feature `cloud`).

use std::path::{Path, PathBuf};

use url::Url;

use crate::error::{DeltaError, Result};

/// URL schemes a location may use, besides plain local paths.
const CLOUD_SCHEMES: &[&str] = &["s3", "s3a", "az", "abfs", "abfss", "azure", "adl", "gs"];

/// A parsed base location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory on the local file system (relative paths are resolved against the working directory).
    Local(PathBuf),
    /// An object store URL.
    Remote(Url),
}

impl Location {
    /// Parses a configured location without any I/O.
    pub fn parse(text: &str) -> std::result::Result<Location, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if !text.contains("://") {
            return Ok(Location::Local(PathBuf::from(text)));
        }
        let url = Url::parse(text).map_err(|e| format!("`{text}` is not a valid URL: {e}"))?;
        match url.scheme() {
            "file" => url
                .to_file_path()
                .map(Location::Local)
                .map_err(|()| format!("`{text}` is not a valid file URL")),
            "memory" => Ok(Location::Remote(url)),
            scheme if CLOUD_SCHEMES.contains(&scheme) => {
                if cfg!(feature = "cloud") {
                    Ok(Location::Remote(url))
                } else {
                    Err(format!(
                        "`{scheme}://` needs otlake built with the `cloud` feature of otlake-exporter-delta"
                    ))
                }
            }
            scheme => Err(format!(
                "unsupported scheme `{scheme}://`: use a local path, file://, s3://, abfss://, az:// or gs://"
            )),
        }
    }

    /// The base URL, ending in `/`. A relative local path is made absolute against the working directory.
    pub fn base_url(&self) -> Result<Url> {
        match self {
            Location::Local(path) => {
                let absolute = absolute(path)?;
                Url::from_directory_path(&absolute).map_err(|()| DeltaError::Location {
                    location: path.display().to_string(),
                    message: "cannot be expressed as a file URL".to_owned(),
                })
            }
            Location::Remote(url) => {
                let mut url = url.clone();
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                Ok(url)
            }
        }
    }

    /// The URL of table `name` under this location (a directory URL, ending in `/`).
    pub fn table_url(&self, name: &str) -> Result<Url> {
        let base = self.base_url()?;
        base.join(&format!("{name}/"))
            .map_err(|e| DeltaError::Location {
                location: base.to_string(),
                message: format!("cannot add table `{name}`: {e}"),
            })
    }

    /// Creates the local directory if needed (object stores need nothing). Called when the exporter runs.
    pub fn prepare(&self) -> Result<()> {
        if let Location::Local(path) = self {
            std::fs::create_dir_all(path).map_err(|e| DeltaError::Location {
                location: path.display().to_string(),
                message: format!("cannot create directory: {e}"),
            })?;
        }
        register_object_stores();
        Ok(())
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| DeltaError::Location {
        location: path.display().to_string(),
        message: format!("cannot read the working directory: {e}"),
    })?;
    Ok(cwd.join(path))
}

/// Parses a location given as text (the CLI's form) into a table URL; creates a local directory if needed.
pub fn resolve_table_url(location: &str, table: &str) -> Result<Url> {
    let parsed = Location::parse(location).map_err(|message| DeltaError::Location {
        location: location.to_owned(),
        message,
    })?;
    register_object_stores();
    parsed.table_url(table)
}

/// The default writer id: stable for a given host, table URL and exporter id, so a restart finds its own
/// transactions again, and sidecars of identical configuration on different hosts (pods) never share one.
/// Several daemons writing one table from the same host must set `writer_id` themselves. FNV-1a (64 bit) is used
/// because its output never changes between Rust releases, unlike `std`'s hasher.
pub fn default_writer_id(table_url: &Url, exporter_id: &str) -> String {
    writer_id_on_host(table_url, exporter_id, &host_name())
}

/// [`default_writer_id`] for a given host name.
pub(crate) fn writer_id_on_host(table_url: &Url, exporter_id: &str, host: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in table_url
        .as_str()
        .bytes()
        .chain(std::iter::once(b'\n'))
        .chain(exporter_id.bytes())
        .chain(std::iter::once(b'\n'))
        .chain(host.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("otlake-{exporter_id}-{hash:016x}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// This host's name (a Kubernetes pod's name): the kernel's, else `$HOSTNAME`, else empty.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Registers delta-rs' object-store handlers for S3, Azure and GCS (feature `cloud`). delta-rs also does this
/// from a static constructor; calling it explicitly keeps us working if a linker drops that constructor.
pub fn register_object_stores() {
    #[cfg(feature = "cloud")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            deltalake::aws::register_handlers(None);
            deltalake::azure::register_handlers(None);
            deltalake::gcp::register_handlers(None);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_urls_parse() {
        assert_eq!(
            Location::parse("./data").expect("ok"),
            Location::Local(PathBuf::from("./data"))
        );
        assert_eq!(
            Location::parse("file:///tmp/lake").expect("ok"),
            Location::Local(PathBuf::from("/tmp/lake"))
        );
        assert!(matches!(
            Location::parse("s3://bucket/prefix"),
            Ok(Location::Remote(_))
        ));
        assert!(matches!(
            Location::parse("abfss://c@acct.dfs.core.windows.net/p"),
            Ok(Location::Remote(_))
        ));
        // GCS: parsed and routed like the others (no emulator test: see the crate README, "Unverified").
        assert_eq!(
            Location::parse("gs://bucket/lake")
                .expect("ok")
                .table_url("otel_spans")
                .expect("ok")
                .as_str(),
            "gs://bucket/lake/otel_spans/"
        );
        assert!(Location::parse("ftp://x/y").is_err());
        assert!(Location::parse("").is_err());
    }

    #[test]
    fn table_urls_are_directories_under_the_base() {
        let loc = Location::parse("s3://bucket/lake").expect("ok");
        assert_eq!(
            loc.table_url("otel_spans").expect("ok").as_str(),
            "s3://bucket/lake/otel_spans/"
        );
        let loc = Location::parse("/tmp/lake/").expect("ok");
        assert_eq!(
            loc.table_url("otel_logs").expect("ok").as_str(),
            "file:///tmp/lake/otel_logs/"
        );
    }

    #[test]
    fn writer_ids_are_stable_and_distinct() {
        let a = Url::parse("s3://b/otel_spans/").expect("url");
        let b = Url::parse("s3://b/otel_logs/").expect("url");
        assert_eq!(
            default_writer_id(&a, "delta"),
            default_writer_id(&a, "delta")
        );
        assert_ne!(
            default_writer_id(&a, "delta"),
            default_writer_id(&b, "delta")
        );
        assert_ne!(
            default_writer_id(&a, "delta"),
            default_writer_id(&a, "delta/2")
        );
        // Identical sidecars on two hosts (pods) never share a writer id.
        assert_ne!(
            writer_id_on_host(&a, "delta", "pod-1"),
            writer_id_on_host(&a, "delta", "pod-2")
        );
        // Pinned: a change here would make restarts lose track of their own commits.
        assert_eq!(
            writer_id_on_host(&a, "delta/x", "pod-1"),
            "otlake-delta_x-b442c161da302bc3"
        );
    }
}
