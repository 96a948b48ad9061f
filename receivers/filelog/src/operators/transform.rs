//! `move`, `copy`, `remove` and `add`: field plumbing with the Collector's keys.

use otlake_core::ConfigError;
use serde::Deserialize;
use serde_json::Value;

use super::{Operator, field};
use crate::entry::{Entry, Field};

/// `move` and `copy`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoveConfig {
    /// The operator's id (default: its type and position).
    pub id: Option<String>,
    /// The id of a later operator to send entries to (default: the next one).
    pub output: Option<String>,
    /// The field to take the value from. Required.
    pub from: String,
    /// The field to put it in. Required.
    pub to: String,
}

/// `remove`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoveConfig {
    /// The operator's id (default: its type and position).
    pub id: Option<String>,
    /// The id of a later operator to send entries to (default: the next one).
    pub output: Option<String>,
    /// The field to remove. Required.
    pub field: String,
}

/// `add`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AddConfig {
    /// The operator's id (default: its type and position).
    pub id: Option<String>,
    /// The id of a later operator to send entries to (default: the next one).
    pub output: Option<String>,
    /// The field to set. Required.
    pub field: String,
    /// The value (a string, number, boolean, list or map). The Collector's `EXPR(...)` is not supported.
    pub value: Value,
}

#[derive(Clone)]
struct Move {
    from: Field,
    to: Field,
    copy: bool,
}

impl Operator for Move {
    fn process(&mut self, mut entry: Entry, out: &mut Vec<Entry>) {
        let value = if self.copy {
            self.from.get(&entry).cloned()
        } else {
            self.from.remove(&mut entry)
        };
        // A missing field is not an error for the Collector either: the entry goes on unchanged.
        if let Some(value) = value {
            self.to.set(&mut entry, value);
        }
        out.push(entry);
    }

    fn fresh(&self) -> Box<dyn Operator> {
        Box::new(self.clone())
    }
}

#[derive(Clone)]
struct Remove {
    field: Field,
}

impl Operator for Remove {
    fn process(&mut self, mut entry: Entry, out: &mut Vec<Entry>) {
        self.field.remove(&mut entry);
        out.push(entry);
    }

    fn fresh(&self) -> Box<dyn Operator> {
        Box::new(self.clone())
    }
}

#[derive(Clone)]
struct Add {
    field: Field,
    value: Value,
}

impl Operator for Add {
    fn process(&mut self, mut entry: Entry, out: &mut Vec<Entry>) {
        self.field.set(&mut entry, self.value.clone());
        out.push(entry);
    }

    fn fresh(&self) -> Box<dyn Operator> {
        Box::new(self.clone())
    }
}

fn required(key: &str, value: &str, errors: &mut Vec<ConfigError>) -> Option<Field> {
    if value.is_empty() {
        errors.push(ConfigError::new(key, "is required"));
        return None;
    }
    field(key, value, errors)
}

pub(super) fn moving(c: &MoveConfig, copy: bool) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let from = required("from", &c.from, &mut errors);
    let to = required("to", &c.to, &mut errors);
    match (from, to) {
        (Some(from), Some(to)) if errors.is_empty() => Ok(Box::new(Move { from, to, copy })),
        _ => Err(errors),
    }
}

pub(super) fn remove(c: &RemoveConfig) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    match required("field", &c.field, &mut errors) {
        Some(field) => Ok(Box::new(Remove { field })),
        None => Err(errors),
    }
}

pub(super) fn add(c: &AddConfig) -> Result<Box<dyn Operator>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    if c.value.as_str().is_some_and(|v| v.starts_with("EXPR(")) {
        errors.push(ConfigError::new(
            "value",
            "expressions (`EXPR(...)`) are not supported: give a constant value",
        ));
    }
    match required("field", &c.field, &mut errors) {
        Some(field) if errors.is_empty() => Ok(Box::new(Add {
            field,
            value: c.value.clone(),
        })),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile_one, run};
    use serde_json::json;

    #[test]
    fn move_copy_remove_add() {
        let mut chain =
            compile_one(json!({"type": "move", "from": "body", "to": "attributes.message"}))
                .expect("valid");
        let out = run(&mut chain, &["hello"]);
        assert_eq!(out[0].attributes["message"], json!("hello"));
        assert_eq!(out[0].body, json!(null));

        let mut chain =
            compile_one(json!({"type": "copy", "from": "body", "to": "resource[\"copy.of\"]"}))
                .expect("valid");
        let out = run(&mut chain, &["hello"]);
        assert_eq!(out[0].resource["copy.of"], json!("hello"));
        assert_eq!(out[0].body, json!("hello"));

        let mut chain = compile_one(json!({"type": "add", "field": "attributes.n", "value": 3}))
            .expect("valid");
        assert_eq!(run(&mut chain, &["x"])[0].attributes["n"], json!(3));

        let mut chain =
            compile_one(json!({"type": "remove", "field": "attributes.absent"})).expect("valid");
        assert_eq!(run(&mut chain, &["x"])[0].body, json!("x"));
    }

    #[test]
    fn bad_fields_are_config_errors() {
        let errors = compile_one(json!({"type": "move", "from": "nowhere", "to": ""}))
            .err()
            .expect("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["operators.0.from", "operators.0.to"]);
        let errors = compile_one(json!({"type": "add", "field": "body", "value": "EXPR(1+1)"}))
            .err()
            .expect("invalid");
        assert_eq!(errors[0].path, "operators.0.value");
    }
}
