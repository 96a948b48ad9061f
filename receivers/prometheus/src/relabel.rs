//! `metric_relabel_configs`: the `keep`, `drop`, `labeldrop` and `labelkeep` rules, applied to each scraped
//! sample's labels (with `__name__` set to the sample name) after the target's labels were attached, in the
//! order written, as Prometheus applies them.

use regex::Regex;

use crate::config::{RelabelAction, RelabelConfig};

/// One compiled rule.
#[derive(Clone, Debug)]
struct Rule {
    action: RelabelAction,
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
}

/// The compiled rules of one scrape config.
#[derive(Clone, Debug, Default)]
pub struct Relabeler {
    rules: Vec<Rule>,
}

impl Relabeler {
    /// Compiles validated rules (`validate` already checked the actions and the regexes).
    pub fn new(configs: &[RelabelConfig]) -> Result<Self, String> {
        let rules = configs
            .iter()
            .map(|config| {
                Ok(Rule {
                    action: config.parsed_action()?,
                    source_labels: config.source_labels.clone(),
                    separator: config.separator.clone(),
                    regex: config.compiled_regex()?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Relabeler { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies every rule to `labels` (name → value, `__name__` included); `false` means the sample is
    /// dropped. A label absent from the set reads as the empty string, as in Prometheus.
    pub fn apply(&self, labels: &mut Vec<(String, String)>) -> bool {
        for rule in &self.rules {
            match rule.action {
                RelabelAction::Keep | RelabelAction::Drop => {
                    let mut joined = String::new();
                    for (i, name) in rule.source_labels.iter().enumerate() {
                        if i > 0 {
                            joined.push_str(&rule.separator);
                        }
                        if let Some((_, value)) = labels.iter().find(|(n, _)| n == name) {
                            joined.push_str(value);
                        }
                    }
                    let matched = rule.regex.is_match(&joined);
                    if matched != (rule.action == RelabelAction::Keep) {
                        return false;
                    }
                }
                RelabelAction::LabelDrop => {
                    labels.retain(|(name, _)| name == "__name__" || !rule.regex.is_match(name))
                }
                RelabelAction::LabelKeep => {
                    labels.retain(|(name, _)| name == "__name__" || rule.regex.is_match(name))
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: &str, source: &[&str], regex: &str) -> RelabelConfig {
        RelabelConfig {
            source_labels: source.iter().map(|s| s.to_string()).collect(),
            regex: regex.into(),
            action: Some(action.into()),
            ..RelabelConfig::default()
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keep_and_drop_match_the_joined_source_labels_anchored() {
        let keep = Relabeler::new(&[rule("keep", &["__name__"], "vllm:.*")]).expect("valid");
        assert!(keep.apply(&mut labels(&[("__name__", "vllm:num_requests_running")])));
        assert!(!keep.apply(&mut labels(&[("__name__", "process_cpu_seconds_total")])));
        // Anchored: `vllm:` in the middle does not match.
        assert!(!keep.apply(&mut labels(&[("__name__", "x_vllm:y")])));

        let drop = Relabeler::new(&[rule("drop", &["model", "engine"], "llama;0")]).expect("valid");
        assert!(!drop.apply(&mut labels(&[("model", "llama"), ("engine", "0")])));
        assert!(drop.apply(&mut labels(&[("model", "llama"), ("engine", "1")])));
        // A missing label reads as empty: `;` alone.
        let missing = Relabeler::new(&[rule("drop", &["a", "b"], ";")]).expect("valid");
        assert!(!missing.apply(&mut labels(&[("c", "x")])));
    }

    #[test]
    fn labeldrop_and_labelkeep_filter_label_names_but_never_the_name() {
        let rules = Relabeler::new(&[rule("labeldrop", &[], "pod|node")]).expect("valid");
        let mut set = labels(&[
            ("__name__", "x"),
            ("pod", "p"),
            ("node", "n"),
            ("podname", "q"),
        ]);
        assert!(rules.apply(&mut set));
        assert_eq!(set, labels(&[("__name__", "x"), ("podname", "q")]));

        let rules = Relabeler::new(&[rule("labelkeep", &[], "model_name")]).expect("valid");
        let mut set = labels(&[("__name__", "x"), ("model_name", "m"), ("engine", "0")]);
        assert!(rules.apply(&mut set));
        assert_eq!(set, labels(&[("__name__", "x"), ("model_name", "m")]));
    }
}
