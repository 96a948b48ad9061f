//! The normaliser on one attribute list: renames, MLflow decoding, cost. `needs` reads only and allocates
//! nothing (so a request that is already normal passes untouched); `apply` changes.

use otlake_core::attributes::{Attributes, ValueRef};
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};

use crate::config::{GenaiConfig, Price};

const INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
const OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
const RESPONSE_MODEL: &str = "gen_ai.response.model";
const REQUEST_MODEL: &str = "gen_ai.request.model";

pub struct Normaliser {
    renames: Vec<(String, String)>,
    decode_mlflow: bool,
    /// Longest model name first, so a prefix match takes the most specific entry.
    prices: Vec<(String, Price)>,
    cost_key: String,
}

fn number(value: Option<ValueRef<'_>>) -> Option<f64> {
    match value? {
        ValueRef::Int(i) => Some(i as f64),
        ValueRef::Double(d) => Some(d),
        ValueRef::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The attribute MLflow's tracing sets on every span it makes. Its presence says that every attribute value
/// of the span went through MLflow's JSON encoding (`_SpanAttributesRegistry.set`), not only the `mlflow.*`
/// ones: a model name set with `span.set_attributes` arrives as `"\"gpt-4o\""`, a token count as `"1000"`.
const MLFLOW_SPAN_MARKER: &str = "mlflow.traceRequestId";

/// Whether `text` is a JSON-encoded scalar MLflow wrote: a quoted string, a number or a boolean. Reads only:
/// a number is checked by serde_json's own grammar (so `inf` or `007` are not numbers), without allocating.
fn is_json_scalar(text: &str) -> bool {
    (text.len() >= 2 && text.starts_with('"') && text.ends_with('"'))
        || text == "true"
        || text == "false"
        || serde_json::from_str::<serde_json::Number>(text).is_ok()
}

/// The value a JSON-encoded scalar stands for.
fn decode_json_scalar(text: &str) -> Option<any_value::Value> {
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        serde_json::Value::String(s) => Some(any_value::Value::StringValue(s)),
        serde_json::Value::Bool(b) => Some(any_value::Value::BoolValue(b)),
        serde_json::Value::Number(n) => Some(match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64()?),
        }),
        _ => None,
    }
}

impl Normaliser {
    pub fn new(config: &GenaiConfig) -> Self {
        let mut prices: Vec<(String, Price)> = config
            .prices
            .iter()
            .map(|(m, p)| (m.clone(), p.clone()))
            .collect();
        prices.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Normaliser {
            renames: config.rename_table(),
            decode_mlflow: config.decode_mlflow_json,
            prices,
            cost_key: config.cost_attribute.clone(),
        }
    }

    fn price(&self, model: &str) -> Option<&Price> {
        self.prices
            .iter()
            .find(|(m, _)| m == model)
            .or_else(|| {
                self.prices
                    .iter()
                    .find(|(m, _)| model.starts_with(m.as_str()))
            })
            .map(|(_, p)| p)
    }

    fn model<'a>(&self, attrs: impl Attributes<'a>) -> Option<&'a str> {
        [RESPONSE_MODEL, REQUEST_MODEL]
            .iter()
            .find_map(|k| match attrs.get(k) {
                Some(ValueRef::Str(s)) if !s.is_empty() => Some(s),
                _ => None,
            })
    }

    /// The token count under the current key or any key renamed to it.
    fn tokens<'a>(&self, attrs: impl Attributes<'a>, key: &str) -> Option<f64> {
        number(attrs.get(key)).or_else(|| {
            self.renames
                .iter()
                .filter(|(_, new)| new == key)
                .find_map(|(old, _)| number(attrs.get(old)))
        })
    }

    fn cost<'a>(&self, attrs: impl Attributes<'a>) -> Option<f64> {
        if self.prices.is_empty() || attrs.has(&self.cost_key) {
            return None;
        }
        let price = self.price(self.model(attrs)?)?;
        let input = self.tokens(attrs, INPUT_TOKENS);
        let output = self.tokens(attrs, OUTPUT_TOKENS);
        if input.is_none() && output.is_none() {
            return None;
        }
        Some(
            (input.unwrap_or(0.0) * price.input_per_million
                + output.unwrap_or(0.0) * price.output_per_million)
                / 1_000_000.0,
        )
    }

    /// Whether the attribute `key` = `value` holds a JSON-encoded scalar to decode: an `mlflow.*` attribute, or
    /// any attribute of a span MLflow made (`mlflow_span`, see [`MLFLOW_SPAN_MARKER`]).
    fn decodable(&self, key: &str, value: ValueRef<'_>, mlflow_span: bool) -> bool {
        self.decode_mlflow
            && (mlflow_span || key.starts_with("mlflow."))
            && value.as_str().is_some_and(is_json_scalar)
    }

    /// Whether every value of `attrs` was JSON-encoded by MLflow's tracing.
    fn made_by_mlflow<'a>(&self, attrs: impl Attributes<'a>) -> bool {
        self.decode_mlflow && attrs.has(MLFLOW_SPAN_MARKER)
    }

    /// Whether `apply` would change `attrs` (decoded, or read on the wire). `with_cost`: spans get a cost, log
    /// records do not.
    pub fn needs<'a>(&self, attrs: impl Attributes<'a>, with_cost: bool) -> bool {
        let mlflow_span = self.made_by_mlflow(attrs);
        attrs.any(|key, value| {
            self.renames.iter().any(|(old, _)| old == key)
                || self.decodable(key, value, mlflow_span)
        }) || (with_cost && self.cost(attrs).is_some())
    }

    pub fn apply(&self, attrs: &mut Vec<KeyValue>, with_cost: bool) {
        for (old, new) in &self.renames {
            if let Some(i) = attrs.iter().position(|kv| kv.key == *old) {
                if attrs[..].has(new) {
                    attrs.remove(i);
                } else {
                    attrs[i].key.clone_from(new);
                }
            }
        }
        let mlflow_span = self.made_by_mlflow(&attrs[..]);
        for kv in attrs.iter_mut() {
            if !self.decodable(&kv.key, ValueRef::of(kv.value.as_ref()), mlflow_span) {
                continue;
            }
            let decoded = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => decode_json_scalar(s),
                _ => None,
            };
            if let Some(value) = decoded {
                kv.value = Some(AnyValue { value: Some(value) });
            }
        }
        // After the renames, so a model or token count under an old key is found under the new one.
        if let Some(cost) = with_cost.then(|| self.cost(&attrs[..])).flatten() {
            attrs.push(KeyValue {
                key: self.cost_key.clone(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::DoubleValue(cost)),
                }),
                ..Default::default()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::parse_config;
    use otlake_core::test_util::kv;
    use serde_json::json;

    fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        attrs
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    fn int(key: &str, i: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(i)),
            }),
            ..Default::default()
        }
    }

    fn normaliser(config: serde_json::Value) -> Normaliser {
        let config: GenaiConfig = parse_config(&config).expect("parses");
        config.validate().expect("valid");
        Normaliser::new(&config)
    }

    #[test]
    fn renames_decodes_and_prices() {
        let n = normaliser(json!({
            "prices": {"gpt-4o": {"input_per_million": 2.5, "output_per_million": 10.0},
                       "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}},
            "renames": {"llm.model": "gen_ai.request.model"},
        }));
        let mut attrs = vec![
            int("gen_ai.usage.prompt_tokens", 1000),
            int("gen_ai.usage.completion_tokens", 200),
            kv("gen_ai.system", "openai"),
            kv("gen_ai.provider.name", "openai"),
            kv("llm.model", "gpt-4o-mini-2024-07-18"),
            kv("mlflow.spanType", "\"RETRIEVER\""),
            kv("mlflow.traceRequestId", "\"tr-1\""),
            kv("mlflow.spanInputs", "{\"query\": \"hi\"}"),
            kv("mlflow.chunk", "3"),
        ];
        assert!(n.needs(&attrs, true));
        n.apply(&mut attrs, true);
        let keys: Vec<&str> = attrs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "gen_ai.usage.input_tokens",
                "gen_ai.usage.output_tokens",
                "gen_ai.provider.name",
                "gen_ai.request.model",
                "mlflow.spanType",
                "mlflow.traceRequestId",
                "mlflow.spanInputs",
                "mlflow.chunk",
                "gen_ai.usage.cost",
            ]
        );
        assert_eq!(
            get(&attrs, "mlflow.spanType"),
            Some(&any_value::Value::StringValue("RETRIEVER".into()))
        );
        assert_eq!(
            get(&attrs, "mlflow.chunk"),
            Some(&any_value::Value::IntValue(3))
        );
        assert_eq!(
            get(&attrs, "mlflow.spanInputs"),
            Some(&any_value::Value::StringValue("{\"query\": \"hi\"}".into())),
            "objects stay JSON text"
        );
        // gpt-4o-mini (the longest matching entry): 1000 × 0.15 / 1e6 + 200 × 0.6 / 1e6.
        let cost = number(Attributes::get(&attrs, "gen_ai.usage.cost")).expect("cost");
        assert!((cost - 0.00027).abs() < 1e-12, "{cost}");
        assert!(
            !n.needs(&attrs, true),
            "normal now: applying again changes nothing"
        );
    }

    /// What MLflow's `span.set_attributes` sends (seen on the wire from mlflow 3.17): every value JSON-encoded,
    /// so the model only matches its price once decoded.
    #[test]
    fn every_value_of_a_span_mlflow_made_is_decoded_before_pricing() {
        let n = normaliser(
            json!({"prices": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}}),
        );
        let mut attrs = vec![
            kv("mlflow.traceRequestId", "\"tr-1\""),
            kv("gen_ai.request.model", "\"gpt-4o-mini\""),
            kv("gen_ai.system", "\"openai\""),
            kv("gen_ai.usage.prompt_tokens", "1000"),
            kv("gen_ai.usage.completion_tokens", "200"),
            kv("note", "inf"),
        ];
        assert!(n.needs(&attrs, true));
        n.apply(&mut attrs, true);
        assert_eq!(
            get(&attrs, "gen_ai.request.model"),
            Some(&any_value::Value::StringValue("gpt-4o-mini".into()))
        );
        assert_eq!(
            get(&attrs, "gen_ai.provider.name"),
            Some(&any_value::Value::StringValue("openai".into()))
        );
        assert_eq!(
            get(&attrs, INPUT_TOKENS),
            Some(&any_value::Value::IntValue(1000))
        );
        assert_eq!(
            get(&attrs, "note"),
            Some(&any_value::Value::StringValue("inf".into())),
            "not JSON: kept"
        );
        let cost = number(Attributes::get(&attrs, "gen_ai.usage.cost")).expect("cost");
        assert!((cost - 0.00027).abs() < 1e-12, "{cost}");
        assert!(!n.needs(&attrs, true), "normal now");

        // Without MLflow's marker only `mlflow.*` values are MLflow's: a quoted value elsewhere is the value.
        let other = vec![kv("gen_ai.request.model", "\"quoted\"")];
        assert!(!n.needs(&other, true));
    }

    #[test]
    fn nothing_to_do_on_current_keys_and_unknown_models() {
        let n = normaliser(
            json!({"prices": {"gpt-4o": {"input_per_million": 1, "output_per_million": 1}}}),
        );
        let attrs = vec![
            kv("gen_ai.request.model", "llama-3-70b"),
            int(INPUT_TOKENS, 5),
            kv("mlflow.note", "plain"),
        ];
        assert!(!n.needs(&attrs, true));
    }
}
