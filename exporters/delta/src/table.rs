//! Opening an OTel table: create it when absent, otherwise check it is one we can append to.
//!
//! otlake always creates its own tables (the managed service's tables carry table features delta-rs cannot
//! write). An existing table must have exactly the schema of the configured version, the table property
//! `otel.schemaVersion` of that version and the same partitioning; otherwise opening fails with an error that
//! names the first differing column. Two writers creating the same table at once is safe: the loser of the
//! race finds the winner's table and checks it like any existing one.

use std::collections::HashMap;

use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use tracing::info;
use url::Url;

use crate::error::{DeltaError, Result};
use crate::schema::{SCHEMA_VERSION_PROPERTY, TableSchema, first_difference};

/// Loads the table at `url`, or `None` when there is no table there yet.
pub async fn load_table(
    name: &str,
    url: &Url,
    storage_options: &HashMap<String, String>,
) -> Result<Option<DeltaTable>> {
    let mut table = builder(name, url, storage_options)?
        .build()
        .map_err(|e| DeltaError::delta(name, "opening", e))?;
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(DeltaError::delta(name, "loading", e)),
    }
}

fn builder(
    name: &str,
    url: &Url,
    storage_options: &HashMap<String, String>,
) -> Result<DeltaTableBuilder> {
    Ok(DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| DeltaError::delta(name, "opening", e))?
        .with_storage_options(storage_options.clone()))
}

/// Opens the table `name` at `url`, creating it with `schema` if it does not exist, and checks its layout.
pub async fn open_or_create(
    name: &str,
    url: &Url,
    storage_options: &HashMap<String, String>,
    schema: &TableSchema,
) -> Result<DeltaTable> {
    // delta-rs refuses a local table directory that does not exist yet; object stores have no directories.
    if url.scheme() == "file"
        && let Ok(path) = url.to_file_path()
    {
        std::fs::create_dir_all(&path).map_err(|e| DeltaError::Location {
            location: path.display().to_string(),
            message: format!("cannot create the table directory: {e}"),
        })?;
    }
    if let Some(table) = load_table(name, url, storage_options).await? {
        check_layout(name, &table, schema)?;
        return Ok(table);
    }
    let empty = builder(name, url, storage_options)?
        .build()
        .map_err(|e| DeltaError::delta(name, "opening", e))?;
    let created = match empty
        .create()
        .with_table_name(name)
        .with_columns(schema.delta.fields().cloned())
        .with_partition_columns(schema.partition_columns.clone())
        .with_configuration([(
            SCHEMA_VERSION_PROPERTY.to_owned(),
            Some(schema.version.as_str().to_owned()),
        )])
        // `otel.schemaVersion` is ours, not a Delta property: let delta-rs store it as is.
        .with_raise_if_key_not_exists(false)
        // Another writer may create it at the same moment. delta-rs would then retry our create as version 1,
        // replacing the winner's metadata under its feet: no retries, we load the winner's table instead.
        .with_save_mode(SaveMode::Ignore)
        .with_commit_properties(CommitProperties::default().with_max_retries(0))
        .await
    {
        Ok(created) => created,
        // Lost a creation race: version 0 now exists. Use the winner's table if it is a compatible one.
        Err(e) => match load_table(name, url, storage_options).await {
            Ok(Some(table)) => table,
            _ => return Err(DeltaError::delta(name, "creating", e)),
        },
    };
    check_layout(name, &created, schema)?;
    info!(table = name, url = %redact(url), version = schema.version.as_str(), "Delta table ready.");
    Ok(created)
}

/// Fails unless `table` has exactly the layout of `schema`.
pub fn check_layout(name: &str, table: &DeltaTable, schema: &TableSchema) -> Result<()> {
    let snapshot = table
        .snapshot()
        .map_err(|e| DeltaError::delta(name, "reading the schema of", e))?;
    let existing = snapshot.schema();
    if let Some(difference) = first_difference(&existing, &schema.delta) {
        return Err(DeltaError::SchemaMismatch {
            table: name.to_owned(),
            difference: format!(
                "{difference} (otlake writes schema {}; schema evolution is not supported: \
                 write to another table name or location)",
                schema.version.as_str()
            ),
        });
    }
    let metadata = snapshot.metadata();
    let recorded = metadata.configuration().get(SCHEMA_VERSION_PROPERTY);
    if recorded.map(String::as_str) != Some(schema.version.as_str()) {
        return Err(DeltaError::Incompatible {
            table: name.to_owned(),
            message: format!(
                "table property {SCHEMA_VERSION_PROPERTY} is {}, expected {}",
                recorded.map_or("absent".to_owned(), |v| format!("`{v}`")),
                schema.version.as_str()
            ),
        });
    }
    if *metadata.partition_columns() != schema.partition_columns {
        return Err(DeltaError::Incompatible {
            table: name.to_owned(),
            message: format!(
                "partitioned by {:?}, expected {:?}",
                metadata.partition_columns(),
                schema.partition_columns
            ),
        });
    }
    Ok(())
}

/// A URL fit for logs: no user info, no query (which may hold a SAS token).
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}
