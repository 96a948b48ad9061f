//! [`Entry`]: one log entry on its way from a file to a batch, and [`Field`], the stanza field syntax
//! (`body`, `body.key`, `attributes.key`, `resource["k8s.pod.name"]`) that operators use to address its parts.
//!
//! Values are `serde_json::Value`s while operators work on them (JSON parsing, moving, copying are then plain
//! map operations); [`crate::batch`] writes them as OTLP protobuf once, when the entry joins a batch.

use serde_json::{Map, Value};

/// The attribute a truncated entry carries: its size in bytes before truncation (as `size_limit` marks).
pub const TRUNCATED_ATTRIBUTE: &str = "otlake.truncated";

/// One log entry and where it ends in its file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    pub body: Value,
    pub attributes: Map<String, Value>,
    pub resource: Map<String, Value>,
    /// When the entry was written (parsed from the line), in nanoseconds since the epoch.
    pub timestamp: Option<i64>,
    pub severity_number: i32,
    pub severity_text: String,
    /// The instrumentation scope name (a Python logger's name).
    pub scope_name: String,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    /// The file offset of the entry's first byte.
    pub start_offset: u64,
    /// The file offset just past the entry's last byte. A file's batch ends only where every entry ends and
    /// nothing held began earlier (see `tracker`).
    pub end_offset: u64,
}

impl Entry {
    /// An entry whose body is `line`, read from `start_offset` to `end_offset`.
    pub fn line(line: String, start_offset: u64, end_offset: u64) -> Self {
        Entry {
            body: Value::String(line),
            start_offset,
            end_offset,
            ..Entry::default()
        }
    }

    /// Marks the entry as cut from `original_size` bytes.
    pub fn mark_truncated(&mut self, original_size: usize) {
        self.attributes
            .insert(TRUNCATED_ATTRIBUTE.to_owned(), Value::from(original_size));
    }

    /// The body as text, if it is a string.
    pub fn body_str(&self) -> Option<&str> {
        self.body.as_str()
    }
}

/// Which part of an entry a field starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    Body,
    Attributes,
    Resource,
}

/// A parsed field reference: a root and a path of keys below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub root: Root,
    pub keys: Vec<String>,
}

impl Field {
    pub fn body() -> Self {
        Field {
            root: Root::Body,
            keys: Vec::new(),
        }
    }

    pub fn attributes() -> Self {
        Field {
            root: Root::Attributes,
            keys: Vec::new(),
        }
    }

    /// `attributes["key"]`: one attribute whose name may hold dots.
    pub fn attribute(key: &str) -> Self {
        Field {
            root: Root::Attributes,
            keys: vec![key.to_owned()],
        }
    }

    /// Parses `body`, `body.a.b`, `attributes.x`, `attributes["log.file.name"]`, `resource["k8s.pod.name"]`.
    pub fn parse(text: &str) -> Result<Field, String> {
        let text = text.trim();
        let (root, mut rest) = [
            ("body", Root::Body),
            ("attributes", Root::Attributes),
            ("resource", Root::Resource),
        ]
        .into_iter()
        .find_map(|(name, root)| text.strip_prefix(name).map(|rest| (root, rest)))
        .ok_or_else(|| {
            format!("`{text}` is not a field: it must start with body, attributes or resource")
        })?;
        let mut keys = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("[\"").or_else(|| rest.strip_prefix("['")) {
                let quote = if rest.starts_with("[\"") { "\"]" } else { "']" };
                let end = after
                    .find(quote)
                    .ok_or_else(|| format!("`{text}`: unclosed bracket"))?;
                keys.push(after[..end].to_owned());
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                if end == 0 {
                    return Err(format!("`{text}`: empty key"));
                }
                keys.push(after[..end].to_owned());
                rest = &after[end..];
            } else {
                return Err(format!(
                    "`{text}` is not a field: expected `.key` or `[\"key\"]` after the root"
                ));
            }
        }
        Ok(Field { root, keys })
    }

    /// The value at this field, if any.
    pub fn get<'a>(&self, entry: &'a Entry) -> Option<&'a Value> {
        let (first, rest) = match self.root {
            Root::Body => {
                let mut value = &entry.body;
                for key in &self.keys {
                    value = value.as_object()?.get(key)?;
                }
                return Some(value);
            }
            Root::Attributes => (&entry.attributes, &self.keys[..]),
            Root::Resource => (&entry.resource, &self.keys[..]),
        };
        let (head, tail) = rest.split_first()?;
        let mut value = first.get(head)?;
        for key in tail {
            value = value.as_object()?.get(key)?;
        }
        Some(value)
    }

    /// Sets the field, creating maps on the way (a non-map in the way is replaced by a map).
    pub fn set(&self, entry: &mut Entry, value: Value) {
        let (map, keys) = match self.root {
            Root::Body => {
                if self.keys.is_empty() {
                    entry.body = value;
                    return;
                }
                if !entry.body.is_object() {
                    entry.body = Value::Object(Map::new());
                }
                match &mut entry.body {
                    Value::Object(map) => (map, &self.keys[..]),
                    _ => return,
                }
            }
            Root::Attributes => (&mut entry.attributes, &self.keys[..]),
            Root::Resource => (&mut entry.resource, &self.keys[..]),
        };
        if keys.is_empty() {
            // `attributes` / `resource` as a whole: a map merges into it (its keys win), anything else is
            // ignored. The parsed map is usually the larger one (a JSON line's keys against `log.file.name`), so
            // the existing keys go into it rather than the other way round.
            if let Value::Object(mut parsed) = value {
                if parsed.len() < map.len() {
                    map.extend(parsed);
                } else {
                    for (key, value) in std::mem::take(map) {
                        parsed.entry(key).or_insert(value);
                    }
                    *map = parsed;
                }
            }
            return;
        }
        set_in(map, keys, value);
    }

    /// Removes the field and returns its value.
    pub fn remove(&self, entry: &mut Entry) -> Option<Value> {
        let (map, keys) = match self.root {
            Root::Body if self.keys.is_empty() => {
                return Some(std::mem::replace(&mut entry.body, Value::Null));
            }
            Root::Body => (entry.body.as_object_mut()?, &self.keys[..]),
            Root::Attributes if self.keys.is_empty() => {
                return Some(Value::Object(std::mem::take(&mut entry.attributes)));
            }
            Root::Attributes => (&mut entry.attributes, &self.keys[..]),
            Root::Resource if self.keys.is_empty() => {
                return Some(Value::Object(std::mem::take(&mut entry.resource)));
            }
            Root::Resource => (&mut entry.resource, &self.keys[..]),
        };
        let (last, path) = keys.split_last()?;
        let mut map = map;
        for key in path {
            map = map.get_mut(key)?.as_object_mut()?;
        }
        map.remove(last)
    }
}

fn set_in(map: &mut Map<String, Value>, keys: &[String], value: Value) {
    let Some((last, path)) = keys.split_last() else {
        return;
    };
    let mut map = map;
    for key in path {
        let slot = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else { return };
        map = next;
    }
    map.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_parse_in_both_notations() {
        assert_eq!(Field::parse("body").expect("ok"), Field::body());
        assert_eq!(
            Field::parse("attributes[\"log.file.name\"]").expect("ok"),
            Field::attribute("log.file.name")
        );
        let nested = Field::parse("body.a['b.c'].d").expect("ok");
        assert_eq!(nested.keys, ["a", "b.c", "d"]);
        assert!(Field::parse("message").is_err());
        assert!(Field::parse("body.").is_err());
        assert!(Field::parse("body[\"x").is_err());
    }

    #[test]
    fn get_set_remove() {
        let mut entry = Entry::line("x".into(), 0, 1);
        let field = Field::parse("body.a.b").expect("ok");
        field.set(&mut entry, json!(1));
        assert_eq!(entry.body, json!({"a": {"b": 1}}));
        assert_eq!(field.get(&entry), Some(&json!(1)));
        let attr = Field::parse("attributes.k").expect("ok");
        attr.set(&mut entry, json!("v"));
        assert_eq!(attr.remove(&mut entry), Some(json!("v")));
        assert_eq!(attr.get(&entry), None);
        assert_eq!(field.remove(&mut entry), Some(json!(1)));
        Field::attributes().set(&mut entry, json!({"p": 1, "q": 2}));
        assert_eq!(entry.attributes.len(), 2);
    }

    #[test]
    fn a_map_set_on_a_root_merges_and_its_keys_win_whichever_is_larger() {
        for (existing, parsed) in [
            (
                json!({"log.file.name": "a.log", "k": "old"}),
                json!({"k": "new", "x": 1, "y": 2}),
            ),
            (
                json!({"log.file.name": "a.log", "k": "old", "z": 0, "w": 0}),
                json!({"k": "new"}),
            ),
        ] {
            let mut entry = Entry::line("x".into(), 0, 1);
            Field::attributes().set(&mut entry, existing.clone());
            Field::attributes().set(&mut entry, parsed.clone());
            let mut want = existing.as_object().cloned().expect("map");
            want.extend(parsed.as_object().cloned().expect("map"));
            assert_eq!(entry.attributes, want);
        }
    }
}
