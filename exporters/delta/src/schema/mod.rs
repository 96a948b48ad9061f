//! The Delta schemas of the OTel tables, and the check that an existing table has the one we write.
//!
//! The Delta (kernel) schema is the source of truth; the Arrow schema that conversion builds against is derived
//! from it by delta-rs, so map and list fields carry exactly the names Delta expects (`key_value`, `key`,
//! `value`, `element`). Schema evolution is not supported: [`first_difference`] names the first column that
//! differs, and start-up fails with it.

pub(crate) mod v1;
pub(crate) mod v2;

use std::sync::Arc;

use deltalake::arrow::datatypes::{Schema as ArrowSchema, SchemaRef};
use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
use deltalake::kernel::{DataType, StructField, StructType};

use crate::config::{SchemaVersion, SignalTable};
use crate::error::{DeltaError, Result};
use otlake_core::Signal;

/// The table property that records the schema version.
pub const SCHEMA_VERSION_PROPERTY: &str = "otel.schemaVersion";

/// Everything about the layout of one table.
#[derive(Clone, Debug)]
pub struct TableSchema {
    pub signal: Signal,
    pub version: SchemaVersion,
    /// The Delta schema the table is created with.
    pub delta: StructType,
    /// The Arrow schema of the record batches written to it.
    pub arrow: SchemaRef,
    /// Partition columns (v2: `date`).
    pub partition_columns: Vec<String>,
}

impl TableSchema {
    pub fn new(signal: Signal, version: SchemaVersion) -> Result<Self> {
        let built = match (version, signal) {
            (SchemaVersion::V1, Signal::Traces) => v1::spans(),
            (SchemaVersion::V1, Signal::Logs) => v1::logs(),
            (SchemaVersion::V1, Signal::Metrics) => v1::metrics(),
            (SchemaVersion::V2, Signal::Traces) => v2::spans(),
            (SchemaVersion::V2, Signal::Logs) => v2::logs(),
            (SchemaVersion::V2, Signal::Metrics) => v2::metrics(),
        };
        let delta = built.map_err(|message| DeltaError::Incompatible {
            table: signal.base_name().to_owned(),
            message: format!("building the {} schema: {message}", version.as_str()),
        })?;
        let arrow: ArrowSchema =
            (&delta)
                .try_into_arrow()
                .map_err(
                    |e: deltalake::arrow::error::ArrowError| DeltaError::Incompatible {
                        table: signal.base_name().to_owned(),
                        message: format!("converting the schema to Arrow: {e}"),
                    },
                )?;
        let partition_columns = match version {
            SchemaVersion::V1 => Vec::new(),
            SchemaVersion::V2 => vec!["date".to_owned()],
        };
        Ok(TableSchema {
            signal,
            version,
            delta,
            arrow: Arc::new(arrow),
            partition_columns,
        })
    }
}

/// The first difference between the schema a table has and the one we write, as a sentence naming the column;
/// `None` when they are equal.
pub fn first_difference(existing: &StructType, expected: &StructType) -> Option<String> {
    struct_difference("", existing, expected)
}

fn struct_difference(prefix: &str, existing: &StructType, expected: &StructType) -> Option<String> {
    let path = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let existing_fields: Vec<&StructField> = existing.fields().collect();
    for (i, want) in expected.fields().enumerate() {
        let Some(have) = existing.field(want.name()) else {
            return Some(format!("column `{}` is missing", path(want.name())));
        };
        if let Some(diff) = type_difference(&path(want.name()), have.data_type(), want.data_type())
        {
            return Some(diff);
        }
        if have.is_nullable() != want.is_nullable() {
            return Some(format!(
                "column `{}` is {}nullable, expected {}nullable",
                path(want.name()),
                if have.is_nullable() { "" } else { "not " },
                if want.is_nullable() { "" } else { "not " },
            ));
        }
        if existing_fields.get(i).map(|f| f.name()) != Some(want.name()) {
            return Some(format!(
                "column `{}` is at another position (expected position {})",
                path(want.name()),
                i + 1
            ));
        }
    }
    existing
        .fields()
        .find(|f| expected.field(f.name()).is_none())
        .map(|extra| format!("unexpected column `{}`", path(extra.name())))
}

fn type_difference(path: &str, have: &DataType, want: &DataType) -> Option<String> {
    match (have, want) {
        (DataType::Struct(h), DataType::Struct(w)) => struct_difference(path, h, w),
        (DataType::Array(h), DataType::Array(w)) => type_difference(
            &format!("{path}.element"),
            h.element_type(),
            w.element_type(),
        ),
        (DataType::Map(h), DataType::Map(w)) => {
            type_difference(&format!("{path}.key"), h.key_type(), w.key_type()).or_else(|| {
                type_difference(&format!("{path}.value"), h.value_type(), w.value_type())
            })
        }
        _ if have == want => None,
        _ => Some(format!(
            "column `{path}` has type {}, expected {}",
            type_name(have),
            type_name(want)
        )),
    }
}

fn type_name(t: &DataType) -> String {
    match t {
        DataType::Primitive(p) => p.to_string(),
        DataType::Array(_) => "array".to_owned(),
        DataType::Struct(_) => "struct".to_owned(),
        DataType::Map(_) => "map".to_owned(),
        DataType::Variant(_) => "variant".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::datatypes::DataType as ArrowType;

    #[test]
    fn v1_schemas_have_the_documented_columns() {
        let spans = TableSchema::new(Signal::Traces, SchemaVersion::V1).expect("spans");
        let names: Vec<&str> = spans
            .arrow
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(
            names,
            [
                "trace_id",
                "span_id",
                "trace_state",
                "parent_span_id",
                "flags",
                "name",
                "kind",
                "start_time_unix_nano",
                "end_time_unix_nano",
                "attributes",
                "dropped_attributes_count",
                "events",
                "dropped_events_count",
                "links",
                "dropped_links_count",
                "status",
                "resource",
                "resource_schema_url",
                "instrumentation_scope",
                "span_schema_url"
            ]
        );
        // Map and list fields carry Delta's names.
        let ArrowType::Map(entries, false) = spans.arrow.field(9).data_type() else {
            panic!("attributes is not a map");
        };
        assert_eq!(entries.name(), "key_value");
        let ArrowType::List(element) = spans.arrow.field(11).data_type() else {
            panic!("events is not a list");
        };
        assert_eq!(element.name(), "element");
        assert_eq!(
            TableSchema::new(Signal::Logs, SchemaVersion::V1)
                .expect("logs")
                .arrow
                .fields()
                .len(),
            15
        );
        assert_eq!(
            TableSchema::new(Signal::Metrics, SchemaVersion::V1)
                .expect("metrics")
                .arrow
                .fields()
                .len(),
            14
        );
    }

    #[test]
    fn differences_name_the_column() {
        let spans = TableSchema::new(Signal::Traces, SchemaVersion::V1)
            .expect("spans")
            .delta;
        let logs = TableSchema::new(Signal::Logs, SchemaVersion::V1)
            .expect("logs")
            .delta;
        assert_eq!(first_difference(&spans, &spans), None);
        let diff = first_difference(&logs, &spans).expect("differs");
        assert!(
            diff.contains("`span_id`") || diff.contains("`trace_id`"),
            "{diff}"
        );

        let mut fields: Vec<StructField> = spans.fields().cloned().collect();
        fields[6] = StructField::new("kind", DataType::INTEGER, true);
        let changed = StructType::try_new(fields).expect("valid");
        assert_eq!(
            first_difference(&changed, &spans).as_deref(),
            Some("column `kind` has type integer, expected string")
        );
    }
}
