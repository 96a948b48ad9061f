//! otlake-service: turns a Collector-style YAML file into running pipelines.
//!
//! - [`config`] reads the file (with `${env:VAR}` substitution) into a [`Config`];
//! - [`validate`] checks it against a [`Registry`] of component factories and reports every error at once, each
//!   with its YAML path and line;
//! - [`runtime`] builds the graph (exporters, then pipelines, then receivers), starts it downstream-first and
//!   shuts it down upstream-first: receivers stop accepting, pipelines drain and flush, exporters make what they
//!   hold durable. A stage still busy at the grace deadline is named in the log;
//! - [`runtime::run_reloading`] also applies a new config while running: `reload` diffs it against the running
//!   one by component id and effective configuration, and only what changed is drained and replaced.
//!
//! The registry is explicit: the binary lists the factories it links, so swapping a component is a YAML edit
//! and adding one is a line in the binary, never link-time magic.

pub mod config;
mod env;
mod error;
mod locate;
mod pipeline_task;
pub mod registry;
mod reload;
pub mod runtime;
mod telemetry_endpoints;
pub mod validate;

pub use config::{Config, LoadError, PipelineId};
pub use error::{RunError, ValidationError};
pub use registry::Registry;
pub use runtime::{Ready, Reloads, Stopped, run, run_reloading, run_reporting_ready};
pub use validate::{Validated, validate};
