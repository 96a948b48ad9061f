//! A recursive-descent parser for the subset: `or` binds loosest, then `and`, then `not`; a primary is a
//! parenthesised condition, `IsMatch(…)`, `true` / `false`, or a comparison of two operands.

use regex::Regex;

use super::lexer::{Token, tokens};
use super::{Condition, Context, Literal, Operand, ParseError, Path};

const SUPPORTED_FUNCTIONS: &str = "IsMatch";

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    context: Context,
}

fn err<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(message.into()))
}

pub fn parse(text: &str, context: Context) -> Result<Condition, ParseError> {
    let mut parser = Parser {
        tokens: tokens(text)?,
        at: 0,
        context,
    };
    if parser.tokens.is_empty() {
        return err("empty condition");
    }
    let condition = parser.or()?;
    match parser.peek() {
        None => Ok(condition),
        Some(t) => err(format!("unexpected `{t}` after a complete condition")),
    }
}

fn is_keyword(token: Option<&Token>, word: &str) -> bool {
    matches!(token, Some(Token::Ident(w)) if w == word)
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek2(&self) -> Option<&Token> {
        self.tokens.get(self.at + 1)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, want: &Token, what: &str) -> Result<(), ParseError> {
        match self.next() {
            Some(t) if &t == want => Ok(()),
            Some(t) => err(format!("expected {what}, found `{t}`")),
            None => err(format!("expected {what} at the end")),
        }
    }

    fn or(&mut self) -> Result<Condition, ParseError> {
        let mut list = vec![self.and()?];
        while is_keyword(self.peek(), "or") {
            self.next();
            list.push(self.and()?);
        }
        Ok(if list.len() == 1 {
            list.remove(0)
        } else {
            Condition::Or(list)
        })
    }

    fn and(&mut self) -> Result<Condition, ParseError> {
        let mut list = vec![self.not()?];
        while is_keyword(self.peek(), "and") {
            self.next();
            list.push(self.not()?);
        }
        Ok(if list.len() == 1 {
            list.remove(0)
        } else {
            Condition::And(list)
        })
    }

    fn not(&mut self) -> Result<Condition, ParseError> {
        if is_keyword(self.peek(), "not") {
            self.next();
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, ParseError> {
        if self.peek() == Some(&Token::LParen) {
            self.next();
            let inner = self.or()?;
            self.expect(&Token::RParen, "`)`")?;
            return Ok(inner);
        }
        if let (Some(Token::Ident(name)), Some(Token::LParen)) = (self.peek(), self.peek2()) {
            let name = name.clone();
            if name == "IsMatch" {
                return self.is_match();
            }
            return err(format!(
                "function `{name}` is not supported (the supported subset has {SUPPORTED_FUNCTIONS})"
            ));
        }
        let left = self.operand()?;
        if let Some(Token::Cmp(op)) = self.peek() {
            let op = *op;
            self.next();
            let right = self.operand()?;
            return Ok(Condition::Compare(left, op, right));
        }
        match left {
            Operand::Literal(Literal::Bool(b)) => Ok(Condition::Const(b)),
            other => err(format!(
                "{} is not a condition: compare it (==, !=, <, <=, >, >=) or use IsMatch",
                describe(&other)
            )),
        }
    }

    fn is_match(&mut self) -> Result<Condition, ParseError> {
        self.next(); // IsMatch
        self.next(); // (
        let target = self.operand()?;
        self.expect(&Token::Comma, "`,` between IsMatch's arguments")?;
        let pattern = match self.next() {
            Some(Token::Str(p)) => p,
            Some(t) => {
                return err(format!(
                    "IsMatch's pattern must be a string literal, found `{t}`"
                ));
            }
            None => return err("IsMatch needs a pattern"),
        };
        self.expect(&Token::RParen, "`)` closing IsMatch")?;
        let regex = Regex::new(&pattern).map_err(|e| {
            ParseError(format!(
                "IsMatch pattern `{pattern}` is not a valid regex: {e}"
            ))
        })?;
        Ok(Condition::IsMatch(target, regex))
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let token = match self.next() {
            Some(t) => t,
            None => return err("a condition ends too early"),
        };
        Ok(match token {
            Token::Str(s) => Operand::Literal(Literal::Str(s)),
            Token::Int(i) => Operand::Literal(Literal::Int(i)),
            Token::Float(x) => Operand::Literal(Literal::Float(x)),
            Token::Ident(word) => {
                if self.peek() == Some(&Token::LParen) {
                    return err(format!(
                        "function `{word}` is not supported (the supported subset has {SUPPORTED_FUNCTIONS})"
                    ));
                }
                match word.as_str() {
                    "nil" => Operand::Literal(Literal::Nil),
                    "true" => Operand::Literal(Literal::Bool(true)),
                    "false" => Operand::Literal(Literal::Bool(false)),
                    "and" | "or" | "not" => {
                        return err(format!("`{word}` where a value was expected"));
                    }
                    _ if word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                        && word
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
                    {
                        Operand::Literal(Literal::Int(enum_value(&word)?))
                    }
                    _ => Operand::Path(self.path(&word)?),
                }
            }
            other => return err(format!("unexpected `{other}` where a value was expected")),
        })
    }

    fn path(&mut self, name: &str) -> Result<Path, ParseError> {
        let c = self.context;
        let keyed = |p: &mut Parser, make: fn(String) -> Path| -> Result<Path, ParseError> {
            p.expect(&Token::LBracket, &format!("`[\"key\"]` after `{name}`"))?;
            let key = match p.next() {
                Some(Token::Str(k)) => k,
                Some(t) => {
                    return err(format!(
                        "the key of `{name}[…]` must be a string, found `{t}`"
                    ));
                }
                None => return err(format!("`{name}[` is not closed")),
            };
            p.expect(&Token::RBracket, "`]`")?;
            if p.peek() == Some(&Token::LBracket) {
                return err(format!(
                    "nested indexing `{name}[\"{key}\"][…]` is not supported"
                ));
            }
            Ok(make(key))
        };
        use Context as C;
        let path = match (name, c) {
            ("name", C::Span | C::SpanEvent | C::Metric) => Path::Name,
            ("kind", C::Span) => Path::Kind,
            ("status.code", C::Span) => Path::StatusCode,
            ("attributes", C::Span | C::SpanEvent | C::LogRecord | C::DataPoint) => {
                keyed(self, Path::Attribute)?
            }
            ("resource.attributes", _) => keyed(self, Path::ResourceAttribute)?,
            ("instrumentation_scope.name", _) => Path::ScopeName,
            ("severity_number", C::LogRecord) => Path::SeverityNumber,
            ("severity_text", C::LogRecord) => Path::SeverityText,
            ("body", C::LogRecord) => Path::Body,
            ("metric.name", C::Metric | C::DataPoint) => Path::MetricName,
            ("type" | "metric.type", C::Metric) | ("metric.type", C::DataPoint) => Path::MetricType,
            _ => {
                return err(format!(
                    "path `{name}` is not supported in the `{}` context (supported: {})",
                    c.name(),
                    supported_paths(c)
                ));
            }
        };
        if self.peek() == Some(&Token::LBracket) {
            return err(format!("`{name}` cannot be indexed"));
        }
        Ok(path)
    }
}

fn supported_paths(c: Context) -> &'static str {
    match c {
        Context::Span => {
            "name, kind, status.code, attributes[\"k\"], resource.attributes[\"k\"], instrumentation_scope.name"
        }
        Context::SpanEvent => {
            "name, attributes[\"k\"], resource.attributes[\"k\"], instrumentation_scope.name"
        }
        Context::LogRecord => {
            "body, severity_number, severity_text, attributes[\"k\"], resource.attributes[\"k\"], instrumentation_scope.name"
        }
        Context::Metric => {
            "name, type, metric.name, metric.type, resource.attributes[\"k\"], instrumentation_scope.name"
        }
        Context::DataPoint => {
            "metric.name, metric.type, attributes[\"k\"], resource.attributes[\"k\"], instrumentation_scope.name"
        }
    }
}

fn describe(operand: &Operand) -> String {
    match operand {
        Operand::Literal(l) => format!("the literal {l:?}"),
        Operand::Path(p) => format!("the path {p:?}"),
    }
}

/// The OTLP enum names OTTL knows, as their numbers.
fn enum_value(name: &str) -> Result<i64, ParseError> {
    let severity = |rest: &str| -> Option<i64> {
        let (base, step) = match rest.as_bytes().last() {
            Some(d @ b'2'..=b'4') => (&rest[..rest.len() - 1], i64::from(d - b'1')),
            _ => (rest, 0),
        };
        let first = match base {
            "UNSPECIFIED" if step == 0 => 0,
            "TRACE" => 1,
            "DEBUG" => 5,
            "INFO" => 9,
            "WARN" => 13,
            "ERROR" => 17,
            "FATAL" => 21,
            _ => return None,
        };
        Some(first + step)
    };
    let value = if let Some(rest) = name.strip_prefix("SPAN_KIND_") {
        [
            "UNSPECIFIED",
            "INTERNAL",
            "SERVER",
            "CLIENT",
            "PRODUCER",
            "CONSUMER",
        ]
        .iter()
        .position(|k| *k == rest)
        .map(|i| i as i64)
    } else if let Some(rest) = name.strip_prefix("STATUS_CODE_") {
        ["UNSET", "OK", "ERROR"]
            .iter()
            .position(|k| *k == rest)
            .map(|i| i as i64)
    } else if let Some(rest) = name.strip_prefix("SEVERITY_NUMBER_") {
        severity(rest)
    } else if let Some(rest) = name.strip_prefix("METRIC_DATA_TYPE_") {
        [
            "NONE",
            "GAUGE",
            "SUM",
            "HISTOGRAM",
            "EXPONENTIAL_HISTOGRAM",
            "SUMMARY",
        ]
        .iter()
        .position(|k| *k == rest)
        .map(|i| i as i64)
    } else {
        None
    };
    value.ok_or_else(|| {
        ParseError(format!(
            "unknown enum `{name}` (supported: SPAN_KIND_*, STATUS_CODE_*, SEVERITY_NUMBER_*, METRIC_DATA_TYPE_*)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::super::Item;
    use super::*;
    use otlake_core::test_util::kv;

    fn span_item<'a>(
        name: &'a str,
        attrs: &'a [otlake_core::proto::common::v1::KeyValue],
    ) -> Item<'a> {
        Item {
            name,
            kind: 2,
            status_code: 2,
            attributes: attrs,
            ..Default::default()
        }
    }

    fn check(text: &str, item: &Item<'_>) -> bool {
        parse(text, Context::Span).expect(text).matches(item)
    }

    #[test]
    fn the_subset_evaluates_as_ottl_does() {
        let attrs = [kv("http.route", "/health"), kv("user", "ana")];
        let item = span_item("GET /health", &attrs);
        for (text, want) in [
            (r#"attributes["http.route"] == "/health""#, true),
            (r#"attributes["http.route"] != "/health""#, false),
            (r#"attributes["missing"] == nil"#, true),
            (r#"attributes["missing"] != nil"#, false),
            (r#"attributes["missing"] == "x""#, false),
            (
                r#"kind == SPAN_KIND_SERVER and status.code == STATUS_CODE_ERROR"#,
                true,
            ),
            (
                r#"kind == SPAN_KIND_CLIENT or (name == "GET /health" and not (attributes["user"] == "bob"))"#,
                true,
            ),
            (r#"IsMatch(name, "^GET /(health|ready)$")"#, true),
            (r#"IsMatch(attributes["missing"], ".*")"#, false),
            (r#"IsMatch(kind, "^2$")"#, true),
            (r#"IsMatch(status.code, "^1")"#, false),
            (
                r#"kind > 1 and kind <= 2 and kind >= 2.0 and kind < 3"#,
                true,
            ),
            (r#"name < "H" and name > "F""#, true),
            (r#"name == 1"#, false),
            (r#"name != 1"#, true),
            ("true", true),
            ("not true or false", false),
        ] {
            assert_eq!(check(text, &item), want, "{text}");
        }
    }

    #[test]
    fn constructs_outside_the_subset_are_named() {
        for (text, context, named) in [
            (r#"Len(name) > 3"#, Context::Span, "function `Len`"),
            (
                r#"IsString(body)"#,
                Context::LogRecord,
                "function `IsString`",
            ),
            (
                r#"span.trace_id == nil"#,
                Context::Span,
                "path `span.trace_id`",
            ),
            (
                r#"severity_number > 3"#,
                Context::Span,
                "path `severity_number` is not supported in the `span` context",
            ),
            (
                r#"attributes["a"]["b"] == 1"#,
                Context::Span,
                "nested indexing",
            ),
            (
                r#"kind == SPAN_KIND_WEIRD"#,
                Context::Span,
                "unknown enum `SPAN_KIND_WEIRD`",
            ),
            (
                r#"name == "a" + "b""#,
                Context::Span,
                "unexpected character `+`",
            ),
            (r#"name"#, Context::Span, "is not a condition"),
            (r#"IsMatch(name, "(")"#, Context::Span, "not a valid regex"),
            (r#"(name == "a""#, Context::Span, "expected `)`"),
            (r#"name =~ "a""#, Context::Span, "operator `=`"),
        ] {
            let e = parse(text, context).expect_err(text);
            assert!(e.0.contains(named), "{text}: {e}");
        }
        assert!(parse(r#"metric.type == METRIC_DATA_TYPE_SUM"#, Context::DataPoint).is_ok());
        assert!(
            parse(
                r#"severity_number < SEVERITY_NUMBER_WARN2"#,
                Context::LogRecord
            )
            .is_ok()
        );
    }
}
