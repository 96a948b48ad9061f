//! otlake-exporter-delta: OTLP spans, logs and metrics into Delta Lake tables laid out like the managed Unity
//! Catalog OTel tables (docs/otel-tables.md), so SQL written for those runs on ours.
//!
//! The key design decision: a client's data is acknowledged only after the Delta commit that adds it has
//! succeeded, and every commit carries application transactions (`txn`: app id + sequence, one per numbered
//! source such as a write-ahead log, and the writer id's own) plus an `otlake.commit_id`, so a commit is never
//! applied twice, never mistaken for another writer's, and a source can replay into a table exactly once
//! ([`sink::TableSink`]).
//!
//! - [`DeltaExporterFactory`]: the `delta` exporter for the collector (config in [`config`]);
//! - [`sink::TableSink`]: one table's append/commit API; a source's position (app id, sequence) becomes one of
//!   its commit's transactions;
//! - [`maintenance::compact`] / [`maintenance::vacuum`]: table maintenance for the CLI;
//! - [`convert`], [`encode`], [`schema`]: OTLP → Arrow by the tables' encoding rules.

pub mod config;
pub mod convert;
pub mod encode;
pub mod error;
pub mod exporter;
pub mod location;
pub mod maintenance;
pub mod parquet_layout;
pub mod schema;
pub mod sink;
pub mod table;

use otlake_core::{ComponentId, ConfigError, Exporter, ExporterFactory, Factory, Signal};

pub use config::DeltaExporterConfig;
pub use error::DeltaError;
pub use exporter::DeltaExporter;
pub use maintenance::{
    BUDGET_SHARE, CompactOptions, CompactReport, PreparedCompaction, TableInfo, VacuumOptions,
    VacuumReport, compact, inspect, prepare_compaction, vacuum,
};
pub use sink::{CommitOutcome, SinkOptions, TableSink, TableSpec};

/// Builds `delta` exporters.
pub struct DeltaExporterFactory;

impl Factory for DeltaExporterFactory {
    type Config = DeltaExporterConfig;

    fn type_name(&self) -> &'static str {
        "delta"
    }

    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn description(&self) -> &'static str {
        "Writes spans, logs and metrics to Delta Lake tables shaped like the Unity Catalog OTel tables"
    }

    fn validate(&self, config: &DeltaExporterConfig) -> Result<(), Vec<ConfigError>> {
        config.validate()
    }
}

impl ExporterFactory for DeltaExporterFactory {
    fn build(
        &self,
        _id: &ComponentId,
        config: DeltaExporterConfig,
        signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError> {
        Ok(Box::new(DeltaExporter::new(config, signals)))
    }
}
