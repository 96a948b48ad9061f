//! The `genai` processor's YAML: the rename table, MLflow decoding and the price table. Parsed by the factory;
//! pure, no I/O.

use std::collections::BTreeMap;

use otlake_core::ConfigError;
use serde::Deserialize;

/// Deprecated GenAI semantic-convention keys and their current names (OpenTelemetry semantic conventions,
/// GenAI registry).
pub const DEFAULT_RENAMES: &[(&str, &str)] = &[
    ("gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
    (
        "gen_ai.usage.completion_tokens",
        "gen_ai.usage.output_tokens",
    ),
    ("gen_ai.system", "gen_ai.provider.name"),
    ("gen_ai.openai.request.seed", "gen_ai.request.seed"),
    (
        "gen_ai.openai.request.response_format",
        "gen_ai.output.type",
    ),
    (
        "gen_ai.openai.request.service_tier",
        "openai.request.service_tier",
    ),
    (
        "gen_ai.openai.response.service_tier",
        "openai.response.service_tier",
    ),
    (
        "gen_ai.openai.response.system_fingerprint",
        "openai.response.system_fingerprint",
    ),
];

/// The attribute the cost is written to.
pub const DEFAULT_COST_ATTRIBUTE: &str = "gen_ai.usage.cost";

/// One model's prices.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Price {
    /// Price of one million input tokens.
    pub input_per_million: f64,
    /// Price of one million output tokens.
    pub output_per_million: f64,
}

/// `processors.genai` in the YAML.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GenaiConfig {
    /// Use the built-in rename table (`DEFAULT_RENAMES`).
    pub default_renames: bool,
    /// More renames, old key → new key; an entry here overrides the built-in one for the same old key.
    pub renames: BTreeMap<String, String>,
    /// Decode the JSON-encoded scalar values MLflow's tracing writes into `mlflow.*` attributes
    /// (`"\"RETRIEVER\""` → `RETRIEVER`), and into every attribute of a span MLflow made (one carrying
    /// `mlflow.traceRequestId`).
    pub decode_mlflow_json: bool,
    /// Per model (`gen_ai.response.model`, else `gen_ai.request.model`), its prices; a model matches its exact
    /// entry, else the longest entry it starts with (`gpt-4o` prices `gpt-4o-2024-08-06`).
    pub prices: BTreeMap<String, Price>,
    /// Where the cost goes.
    pub cost_attribute: String,
}

impl Default for GenaiConfig {
    fn default() -> Self {
        GenaiConfig {
            default_renames: true,
            renames: BTreeMap::new(),
            decode_mlflow_json: true,
            prices: BTreeMap::new(),
            cost_attribute: DEFAULT_COST_ATTRIBUTE.to_owned(),
        }
    }
}

impl GenaiConfig {
    /// Every problem with the configuration, each with its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        for (old, new) in &self.renames {
            if old.is_empty() || new.is_empty() || old == new {
                errors.push(ConfigError::new(
                    format!("renames.{old}"),
                    "needs two different, non-empty keys",
                ));
            }
        }
        for (model, price) in &self.prices {
            for (name, value) in [
                ("input_per_million", price.input_per_million),
                ("output_per_million", price.output_per_million),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    errors.push(ConfigError::new(
                        format!("prices.{model}.{name}"),
                        format!("must be a price of 0 or more, got {value}"),
                    ));
                }
            }
        }
        if self.cost_attribute.is_empty() {
            errors.push(ConfigError::new("cost_attribute", "must not be empty"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The effective rename table.
    pub fn rename_table(&self) -> Vec<(String, String)> {
        let mut table: BTreeMap<String, String> = if self.default_renames {
            DEFAULT_RENAMES
                .iter()
                .map(|(o, n)| ((*o).to_owned(), (*n).to_owned()))
                .collect()
        } else {
            BTreeMap::new()
        };
        table.extend(self.renames.clone());
        table.into_iter().collect()
    }
}
