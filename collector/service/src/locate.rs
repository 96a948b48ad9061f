//! Finds the line of a YAML path (`exporters.file/out.path`) in the config text, for error messages.
//!
//! It follows block-style indentation: each segment is looked for as a `key:` line indented deeper than the
//! previous one. Flow style (`{a: 1}`) and list indices fall back to the nearest enclosing key's line, which is
//! still the right place to look.

pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let mut best = None;
    let mut from = 0usize;
    let mut min_indent: i64 = -1;
    let lines: Vec<&str> = text.lines().collect();
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        if segment.parse::<usize>().is_ok() {
            continue;
        }
        let mut found = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = (line.len() - trimmed.len()) as i64;
            if best.is_some() && indent <= min_indent {
                break; // left the enclosing block
            }
            let key = trimmed.trim_start_matches("- ");
            let unquoted = key.trim_start_matches(['"', '\'']);
            if let Some(after) = unquoted.strip_prefix(segment) {
                let after = after.trim_start_matches(['"', '\'']);
                if after.starts_with(':') {
                    found = Some((i, indent));
                    break;
                }
            }
        }
        match found {
            Some((i, indent)) => {
                best = Some(i + 1);
                from = i + 1;
                min_indent = indent;
            }
            None => break,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::line_of;

    #[test]
    fn finds_nested_keys() {
        let text = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: x\nexporters:\n  file/out:\n    path: y\n";
        assert_eq!(
            line_of(text, "receivers.otlp.protocols.grpc.endpoint"),
            Some(5)
        );
        assert_eq!(line_of(text, "exporters.file/out.path"), Some(8));
        // missing leaf: the deepest key that exists
        assert_eq!(line_of(text, "exporters.file/out.nope"), Some(7));
        assert_eq!(line_of(text, "service"), None);
    }
}
