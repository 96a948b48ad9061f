//! GenAI-style telemetry as a model-serving sidecar sees it: agent invocations whose traces hold model calls
//! (`gen_ai.*` token counts), tool calls, embeddings and vector retrievals, with a configurable share of failed
//! model calls; the serving logs beside them; and the GenAI client metrics (token usage, operation duration,
//! time to first token).
//!
//! Each function builds one request [`Template`] holding exactly `items` spans, log records or data points.
//! Content (models, token counts, tools, attribute values) is drawn from the builder's seeded RNG, so a run
//! builds a handful of different templates up front and varies only ids and times per request.
//!
//! One file per signal (`traces`, `logs`, `metrics`); `vocab` holds what they share: the models, services and
//! errors content is drawn from, the attribute constructors, and the resource and scope every request carries.

mod logs;
mod metrics;
mod traces;
mod vocab;

pub use logs::logs;
pub use metrics::metrics;
pub use traces::traces;
