//! `${env:VAR}` and `${env:VAR:-default}` substitution, applied to the string values of the parsed YAML tree
//! (not to the raw text), so a value can never inject YAML structure. `$${...}` escapes a literal `${...}`.
//! A value that is exactly one reference is re-read as a YAML scalar, so `${env:PORT}` can fill a number.

use serde_json::Value;

/// Substitutes every reference in the string values of `tree`; collects one message per unset variable.
pub fn substitute(tree: &mut Value, path: &mut Vec<String>, errors: &mut Vec<(String, String)>) {
    match tree {
        Value::String(text) if text.contains('$') => match expand(text) {
            Ok(Expanded::Whole(raw)) => *tree = scalar(&raw),
            Ok(Expanded::Text(expanded)) => *text = expanded,
            Err(message) => errors.push((path.join("."), message)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                substitute(item, path, errors);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                path.push(key.clone());
                substitute(value, path, errors);
                path.pop();
            }
        }
        _ => {}
    }
}

enum Expanded {
    /// The whole value was one reference: its text, to be read as a scalar.
    Whole(String),
    Text(String),
}

fn expand(text: &str) -> Result<Expanded, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut references = 0;
    let mut literal = false;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
            literal = true;
            continue;
        }
        let Some(body) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = body.find('}') else {
            return Err(format!("unterminated `${{` in `{text}`"));
        };
        let reference = &body[..end];
        let spec = reference.strip_prefix("env:").ok_or_else(|| {
            format!(
                "unsupported reference `${{{reference}}}`: only `${{env:VAR}}` and `${{env:VAR:-default}}` are supported"
            )
        })?;
        let (name, default) = match spec.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (spec, None),
        };
        match (std::env::var(name), default) {
            (Ok(value), _) => out.push_str(&value),
            (Err(_), Some(default)) => out.push_str(default),
            (Err(_), None) => {
                return Err(format!(
                    "environment variable `{name}` is not set (give a default with `${{env:{name}:-value}}`)"
                ));
            }
        }
        references += 1;
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    if references == 1 && !literal && text.trim().starts_with("${") && text.trim().ends_with('}') {
        Ok(Expanded::Whole(out))
    } else {
        Ok(Expanded::Text(out))
    }
}

/// Reads a substituted value the way YAML reads a plain scalar (numbers and booleans keep their type), but
/// only where the typed value prints back as the same text: `007`, `1e3` or a 20-digit token stay text, so a
/// secret or any string field receives exactly what the variable holds.
fn scalar(raw: &str) -> Value {
    let text = raw.trim();
    let typed = match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        t => t
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| t.parse::<f64>().map(Value::from))
            .unwrap_or(Value::Null),
    };
    let same_text = match &typed {
        Value::Bool(_) => true,
        Value::Number(n) => n.to_string() == text,
        _ => false,
    };
    if same_text {
        typed
    } else {
        Value::String(raw.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(mut tree: Value) -> (Value, Vec<(String, String)>) {
        let mut errors = Vec::new();
        substitute(&mut tree, &mut Vec::new(), &mut errors);
        (tree, errors)
    }

    #[test]
    fn substitutes_defaults_and_keeps_scalar_types() {
        // PATH is set in every test environment; OTLAKE_TEST_UNSET_VAR is set in none.
        let path = std::env::var("PATH").expect("PATH is set");
        let (tree, errors) = run(json!({
            "a": "${env:PATH}",
            "b": "prefix-${env:OTLAKE_TEST_UNSET_VAR:-dflt}-suffix",
            "port": "${env:OTLAKE_TEST_UNSET_VAR:-4317}",
            "flag": "${env:OTLAKE_TEST_UNSET_VAR:-true}",
            "literal": "$${env:PATH} costs $5",
        }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(tree["a"], json!(path));
        assert_eq!(tree["b"], json!("prefix-dflt-suffix"));
        assert_eq!(tree["port"], json!(4317));
        assert_eq!(tree["flag"], json!(true));
        assert_eq!(tree["literal"], json!("${env:PATH} costs $5"));
    }

    #[test]
    fn a_value_that_does_not_read_back_as_the_same_number_stays_text() {
        // Reliability review, finding 13: `007`, a 20-digit token and `1e3` were turned into numbers, and a
        // secret built from them then held `7`, `12345678901234567000` and `1000`.
        let (tree, errors) = run(json!({
            "zeros": "${env:OTLAKE_TEST_UNSET_VAR:-007}",
            "long": "${env:OTLAKE_TEST_UNSET_VAR:-12345678901234567890}",
            "exp": "${env:OTLAKE_TEST_UNSET_VAR:-1e3}",
            "float": "${env:OTLAKE_TEST_UNSET_VAR:-1.5}",
        }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(tree["zeros"], json!("007"));
        assert_eq!(tree["long"], json!("12345678901234567890"));
        assert_eq!(tree["exp"], json!("1e3"));
        assert_eq!(tree["float"], json!(1.5));
        let secret: otlake_core::config::Secret =
            serde_json::from_value(tree["zeros"].clone()).expect("a secret");
        assert_eq!(secret.expose(), "007");
    }

    #[test]
    fn an_unset_variable_is_an_error_with_its_path() {
        let (_, errors) = run(
            json!({"exporters": {"otlp": {"headers": {"auth": "${env:OTLAKE_TEST_UNSET_VAR}"}}}}),
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "exporters.otlp.headers.auth");
        assert!(
            errors[0].1.contains("OTLAKE_TEST_UNSET_VAR"),
            "{}",
            errors[0].1
        );
    }

    #[test]
    fn other_providers_are_refused() {
        let (_, errors) = run(json!({"x": "${file:/etc/passwd}"}));
        assert!(errors[0].1.contains("only `${env:VAR}`"), "{:?}", errors);
    }
}
