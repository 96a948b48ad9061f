//! The YAML of the `attributes` and `resource` processors: the Collector's keys (`actions` / `attributes`,
//! `include`, `exclude`). Parsed by the factories (`validate`, then `build`); pure, no I/O.

use otlake_core::ConfigError;
use serde::Deserialize;
use serde_json::Value;

/// What an action does to its key (the Collector's `action` values).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Sets the key only where it is absent.
    Insert,
    /// Sets the key only where it is present.
    Update,
    /// Sets the key whether present or not.
    Upsert,
    /// Removes the key, or every key `pattern` matches.
    Delete,
    /// Replaces the value (of the key, or of every key `pattern` matches) by its SHA-256, in hex.
    Hash,
    /// Matches `pattern` against the key's string value and upserts each named capture as a key.
    Extract,
    /// Converts the key's value to `converted_type`; a value that does not convert stays as it was.
    Convert,
}

/// The target of `convert`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConvertedType {
    Int,
    Double,
    String,
}

/// One entry of `actions` (or of the resource processor's `attributes`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ActionConfig {
    /// The attribute acted on. Required except for `delete` and `hash` with a `pattern`.
    pub key: Option<String>,
    /// `insert`, `update`, `upsert`, `delete`, `hash`, `extract` or `convert`.
    pub action: Option<ActionKind>,
    /// The value set by `insert`, `update` and `upsert`: a string, number or boolean.
    pub value: Option<Value>,
    /// For `insert`, `update` and `upsert`: take the value of this attribute of the same item instead.
    pub from_attribute: Option<String>,
    /// The Collector's request-context source: not supported (refused with an explanation).
    pub from_context: Option<String>,
    /// A regex: for `extract`, matched against the value, its named captures become keys; for `delete` and
    /// `hash`, matched against key names.
    pub pattern: Option<String>,
    /// For `convert`: `int`, `double` or `string`.
    pub converted_type: Option<ConvertedType>,
}

/// How `include` / `exclude` compare names and values.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    /// Equal text (attribute values: equal type and value).
    #[default]
    Strict,
    /// The regex matches somewhere in the text (anchor it with `^…$` for a whole match).
    Regexp,
}

/// An attribute (or resource attribute) condition of `include` / `exclude`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeCondition {
    /// The key that must be present.
    pub key: String,
    /// The value it must have (strict) or a regex its text must match (regexp); absent: any value.
    pub value: Option<Value>,
}

/// An instrumentation scope condition of `include` / `exclude`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LibraryCondition {
    /// The scope name (or regex).
    pub name: String,
    /// The scope version (or regex); absent: any version.
    pub version: Option<String>,
}

/// `include` or `exclude` of the `attributes` processor: every listed property must match (lists inside a
/// property match when any entry does; `attributes` and `resources` when all do).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MatchProperties {
    /// `strict` (default) or `regexp`.
    pub match_type: MatchType,
    /// The resource's `service.name`.
    pub services: Vec<String>,
    /// Span names (spans only).
    pub span_names: Vec<String>,
    /// Span kinds, as `SPAN_KIND_SERVER` or `server` (spans only; always compared strictly).
    pub span_kinds: Vec<String>,
    /// String log bodies (logs only).
    pub log_bodies: Vec<String>,
    /// Log severity texts (logs only).
    pub log_severity_texts: Vec<String>,
    /// Metric names (metrics only).
    pub metric_names: Vec<String>,
    /// Attributes of the item, all of which must match.
    pub attributes: Vec<AttributeCondition>,
    /// Attributes of the item's resource, all of which must match.
    pub resources: Vec<AttributeCondition>,
    /// Instrumentation scopes, any of which must match.
    pub libraries: Vec<LibraryCondition>,
}

/// `processors.attributes` in the YAML.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributesConfig {
    /// The actions, applied in order to the attributes of each span, log record and metric data point.
    pub actions: Vec<ActionConfig>,
    /// Only items matching this are changed.
    pub include: Option<MatchProperties>,
    /// Items matching this are not changed.
    pub exclude: Option<MatchProperties>,
}

/// `processors.resource` in the YAML.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceConfig {
    /// The actions, applied in order to every resource's attributes (the Collector's key name).
    pub attributes: Vec<ActionConfig>,
}

impl AttributesConfig {
    /// Every problem with the configuration, each with its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.actions.is_empty() {
            errors.push(ConfigError::new("actions", "at least one action is needed"));
        }
        for (i, action) in self.actions.iter().enumerate() {
            crate::actions::Action::compile(action, &format!("actions.{i}"), &mut errors);
        }
        for (name, props) in [("include", &self.include), ("exclude", &self.exclude)] {
            if let Some(props) = props {
                crate::matcher::Matcher::compile(props, name, &mut errors);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl ResourceConfig {
    /// Every problem with the configuration, each with its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.attributes.is_empty() {
            errors.push(ConfigError::new(
                "attributes",
                "at least one action is needed",
            ));
        }
        for (i, action) in self.attributes.iter().enumerate() {
            crate::actions::Action::compile(action, &format!("attributes.{i}"), &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}
