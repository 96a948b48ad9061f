//! The Parquet writer settings of the OTel tables: per column, whether to build a dictionary, which encoding
//! to fall back on and which statistics to keep. Pure: derived from the table's Arrow schema once, when a sink
//! opens.
//!
//! Why per column (figures in the crate README, "Performance"):
//! - ids (`span_id`, `parent_span_id`, `record_id`, nested link/exemplar ids) are unique per row: a dictionary
//!   only costs hashing and comparing every value before Parquet gives up on it, so they are written plain;
//! - times are unique too, but sorted-ish integers: `DELTA_BINARY_PACKED` shrinks them to a few bits each
//!   (start times of one request are microseconds apart) for less work than a dictionary;
//! - attribute map keys are written plain too: every row repeats the same few keys in the same order, which
//!   zstd compresses as well as a dictionary would (same file size) for 5 % less CPU than interning each key;
//! - names, kinds, status codes, service names and attribute values repeat: dictionaries stay on (Parquet's
//!   default; for values it is a trade: without, 6 % less CPU but 4 % bigger files);
//! - statistics are what readers prune with: kept page-level for `trace_id` and the top-level times
//!   (`WHERE trace_id = ...`, time ranges), row-group level for the other flat columns, and not computed for
//!   attribute maps, Variant payloads, log bodies and nested lists, where min/max of strings help no query and
//!   cost a comparison per value.

use deltalake::arrow::datatypes::Schema as ArrowSchema;
use deltalake::parquet::arrow::ArrowSchemaConverter;
use deltalake::parquet::basic::{Compression, Encoding, Type as PhysicalType, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};

/// Which of the per-column choices to apply (all on by default; the benchmark turns them off one by one to
/// measure each).
#[derive(Clone, Copy, Debug)]
pub struct ColumnRules {
    /// No dictionary for unique ids and times; times delta-encoded.
    pub plain_unique_columns: bool,
    /// No dictionary for attribute map values (which mix repeated and unique values).
    pub plain_attribute_values: bool,
    /// No dictionary for attribute map keys either (zstd then finds each row's repeated key sequence).
    pub plain_attribute_keys: bool,
    /// Statistics only where readers prune (see the module docs).
    pub pruning_statistics_only: bool,
}

impl Default for ColumnRules {
    fn default() -> Self {
        ColumnRules {
            plain_unique_columns: true,
            plain_attribute_values: false,
            plain_attribute_keys: true,
            pruning_statistics_only: true,
        }
    }
}

/// What a leaf column is, for the rules above.
#[derive(Debug, PartialEq, Eq)]
enum Role {
    /// `trace_id` and top-level times: page statistics for pruning.
    PruningKey,
    /// Unique per row (ids, times).
    Unique,
    /// An attribute map's value or a Variant's value bytes.
    AttributeValue,
    /// Anything else inside a map, list or Variant, and log bodies.
    Nested,
    /// A flat, usually low-cardinality column.
    Plain,
}

fn role(parts: &[String], physical: PhysicalType) -> Role {
    let leaf = parts.last().map_or("", String::as_str);
    let top_level = parts.len() == 1;
    let inside = |name: &str| parts.iter().any(|p| p == name);
    let is_time = physical == PhysicalType::INT64
        && (leaf.ends_with("time_unix_nano") || (top_level && leaf == "time"));
    if top_level && (leaf == "trace_id" || is_time) {
        return Role::PruningKey;
    }
    if inside("key_value")
        || parts.len() > 1 && leaf == "value" && physical == PhysicalType::BYTE_ARRAY
    {
        return if leaf == "value" {
            Role::AttributeValue
        } else {
            Role::Nested
        };
    }
    if matches!(
        leaf,
        "span_id" | "parent_span_id" | "trace_id" | "record_id"
    ) || is_time
    {
        return Role::Unique;
    }
    if !top_level || leaf == "body" {
        return Role::Nested;
    }
    Role::Plain
}

/// The writer properties of a table whose record batches have `schema`.
pub fn writer_properties(
    schema: &ArrowSchema,
    compression_level: i32,
    row_group_size: usize,
    rules: ColumnRules,
) -> WriterProperties {
    let level = ZstdLevel::try_new(compression_level).unwrap_or_default();
    let mut builder = WriterProperties::builder()
        .set_created_by(format!("otlake {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(row_group_size.max(1)));
    if rules.pruning_statistics_only {
        builder = builder.set_statistics_enabled(EnabledStatistics::Chunk);
    }
    // A schema that Parquet cannot represent fails later, at the first write, with Parquet's own message.
    let Ok(descriptor) = ArrowSchemaConverter::new().convert(schema) else {
        return builder.build();
    };
    for column in descriptor.columns() {
        let path = column.path().clone();
        let physical = column.physical_type();
        let role = role(path.parts(), physical);
        let unique = matches!(role, Role::Unique)
            || matches!(role, Role::PruningKey) && physical == PhysicalType::INT64;
        if rules.plain_unique_columns && unique {
            builder = builder.set_column_dictionary_enabled(path.clone(), false);
            if physical == PhysicalType::INT64 {
                builder = builder.set_column_encoding(path.clone(), Encoding::DELTA_BINARY_PACKED);
            }
        }
        if rules.plain_attribute_values && role == Role::AttributeValue {
            builder = builder.set_column_dictionary_enabled(path.clone(), false);
        }
        if rules.plain_attribute_keys && path.parts().last().is_some_and(|p| p == "key") {
            builder = builder.set_column_dictionary_enabled(path.clone(), false);
        }
        if rules.pruning_statistics_only {
            let statistics = match role {
                Role::PruningKey => EnabledStatistics::Page,
                Role::Plain | Role::Unique => EnabledStatistics::Chunk,
                Role::AttributeValue | Role::Nested => EnabledStatistics::None,
            };
            builder = builder.set_column_statistics_enabled(path, statistics);
        }
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchemaVersion;
    use crate::schema::TableSchema;
    use deltalake::parquet::schema::types::ColumnPath;
    use otlake_core::Signal;

    fn path(p: &str) -> ColumnPath {
        ColumnPath::new(p.split('.').map(str::to_owned).collect())
    }

    #[test]
    fn ids_times_and_keys_skip_the_dictionary_and_values_keep_it() {
        let schema = TableSchema::new(Signal::Traces, SchemaVersion::V1).expect("schema");
        let props = writer_properties(&schema.arrow, 3, 1000, ColumnRules::default());
        for unique in [
            "span_id",
            "parent_span_id",
            "start_time_unix_nano",
            "links.list.element.span_id",
            "attributes.key_value.key",
            "resource.attributes.key_value.key",
        ] {
            assert!(!props.dictionary_enabled(&path(unique)), "{unique}");
        }
        for repeated in [
            "name",
            "kind",
            "status.code",
            "attributes.key_value.value",
            "trace_id",
        ] {
            assert!(props.dictionary_enabled(&path(repeated)), "{repeated}");
        }
        assert_eq!(
            props.encoding(&path("end_time_unix_nano")),
            Some(Encoding::DELTA_BINARY_PACKED)
        );
    }

    #[test]
    fn statistics_where_readers_prune() {
        let schema = TableSchema::new(Signal::Traces, SchemaVersion::V1).expect("schema");
        let props = writer_properties(&schema.arrow, 3, 1000, ColumnRules::default());
        let stats = |p: &str| props.statistics_enabled(&path(p));
        assert_eq!(stats("trace_id"), EnabledStatistics::Page);
        assert_eq!(stats("start_time_unix_nano"), EnabledStatistics::Page);
        assert_eq!(stats("name"), EnabledStatistics::Chunk);
        assert_eq!(stats("attributes.key_value.value"), EnabledStatistics::None);
        assert_eq!(
            stats("resource.attributes.key_value.key"),
            EnabledStatistics::None
        );
        assert_eq!(stats("events.list.element.name"), EnabledStatistics::None);
    }

    #[test]
    fn v2_and_log_columns_get_their_roles() {
        let logs = TableSchema::new(Signal::Logs, SchemaVersion::V2).expect("schema");
        let props = writer_properties(&logs.arrow, 3, 1000, ColumnRules::default());
        assert!(!props.dictionary_enabled(&path("record_id")));
        assert_eq!(
            props.statistics_enabled(&path("time")),
            EnabledStatistics::Page
        );
        assert!(props.dictionary_enabled(&path("service_name")));
        assert_eq!(
            props.statistics_enabled(&path("body.value")),
            EnabledStatistics::None
        );
    }
}
