//! The log's identity: an id generated once, when the directory is first used, and kept in it (`identity`).
//!
//! The sequences a log gives its entries belong to its directory, so the name under which an exporter records
//! what it has committed from them (the Delta `txn` app id) must belong to the directory too: not to the host
//! name (a log replayed under a new pod name would commit again) and not to the exporter's own writer id (which
//! also numbers commits made without a log, so turning the log off and on again would skip entries as
//! committed). The id travels with every entry as [`otlake_core::SourcePosition::app_id`].

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Result, WalError};

const IDENTITY_FILE: &str = "identity";
const PREFIX: &str = "otlake-wal-";

/// Reads the identity of the log in `dir`, creating it on first use. Call with the directory's lock held.
pub fn read_or_create(dir: &Path, fsync: bool) -> Result<Arc<str>> {
    let path = dir.join(IDENTITY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if id.starts_with(PREFIX) && id.len() > PREFIX.len() && is_app_id(id) {
                return Ok(id.into());
            }
            Err(WalError::Identity {
                path,
                reason: format!(
                    "`{}` is not a log identity (it names this log's commits in the destination; restore it \
                     rather than edit it)",
                    id.escape_debug()
                ),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = format!("{PREFIX}{}", uuid::Uuid::now_v7().simple());
            write_atomically(dir, &id, fsync)?;
            Ok(id.into())
        }
        Err(e) => Err(WalError::io(&path, "reading the identity")(e)),
    }
}

fn is_app_id(id: &str) -> bool {
    id.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Writes the identity so that a crash leaves either none or all of it, durable before the first entry is.
fn write_atomically(dir: &Path, id: &str, fsync: bool) -> Result<()> {
    let path = dir.join(IDENTITY_FILE);
    let tmp = dir.join("identity.tmp");
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(format!("{id}\n").as_bytes())?;
        if fsync {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if fsync {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(WalError::io(&path, "writing the identity"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_created_once_and_read_back_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = read_or_create(dir.path(), true).expect("created");
        assert!(first.starts_with(PREFIX), "{first}");
        assert_eq!(read_or_create(dir.path(), true).expect("read"), first);
        let other = tempfile::tempdir().expect("tempdir");
        assert_ne!(
            read_or_create(other.path(), true).expect("created"),
            first,
            "two logs never share an identity"
        );
    }

    #[test]
    fn a_damaged_identity_stops_start_up_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(IDENTITY_FILE), "garbage\n").expect("write");
        let err = read_or_create(dir.path(), true).expect_err("refused");
        assert!(err.to_string().contains("identity"), "{err}");
    }
}
