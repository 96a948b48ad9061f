//! Splits an OTTL condition into tokens. Identifiers keep their dots (`resource.attributes`), so a path is
//! one token; `-` directly before a digit starts a negative number.

use super::ParseError;

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Cmp(CmpOp),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Ident(s) => write!(f, "{s}"),
            Token::Str(s) => write!(f, "{s:?}"),
            Token::Int(i) => write!(f, "{i}"),
            Token::Float(x) => write!(f, "{x}"),
            Token::LParen => write!(f, "("),
            Token::RParen => write!(f, ")"),
            Token::LBracket => write!(f, "["),
            Token::RBracket => write!(f, "]"),
            Token::Comma => write!(f, ","),
            Token::Cmp(op) => write!(
                f,
                "{}",
                match op {
                    CmpOp::Eq => "==",
                    CmpOp::Ne => "!=",
                    CmpOp::Lt => "<",
                    CmpOp::Le => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                }
            ),
        }
    }
}

pub fn tokens(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        let next_is = |want: char, chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
            let mut ahead = chars.clone();
            ahead.next();
            ahead.peek().map(|&(_, c)| c) == Some(want)
        };
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' | ',' => {
                chars.next();
                out.push(match c {
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    '[' => Token::LBracket,
                    ']' => Token::RBracket,
                    _ => Token::Comma,
                });
            }
            '=' | '!' | '<' | '>' => {
                let two = next_is('=', &mut chars);
                chars.next();
                if two {
                    chars.next();
                }
                out.push(Token::Cmp(match (c, two) {
                    ('=', true) => CmpOp::Eq,
                    ('!', true) => CmpOp::Ne,
                    ('<', false) => CmpOp::Lt,
                    ('<', true) => CmpOp::Le,
                    ('>', false) => CmpOp::Gt,
                    ('>', true) => CmpOp::Ge,
                    _ => {
                        return Err(ParseError(format!(
                            "operator `{c}` is not supported (use ==, !=, <, <=, >, >=, and, or, not)"
                        )));
                    }
                }));
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(ParseError("unterminated string".into())),
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => s.push('\n'),
                            Some((_, 't')) => s.push('\t'),
                            Some((_, 'r')) => s.push('\r'),
                            Some((_, c @ ('"' | '\\'))) => s.push(c),
                            // Kept as written: regexes use backslashes (`"\\d"` and `"\d"` both work).
                            Some((_, c)) => {
                                s.push('\\');
                                s.push(c);
                            }
                            None => return Err(ParseError("unterminated string".into())),
                        },
                        Some((_, c)) => s.push(c),
                    }
                }
                out.push(Token::Str(s));
            }
            c if c.is_ascii_digit()
                || (c == '-' && {
                    let mut ahead = chars.clone();
                    ahead.next();
                    ahead.peek().is_some_and(|&(_, d)| d.is_ascii_digit())
                }) =>
            {
                let mut end = start;
                chars.next();
                end += c.len_utf8();
                while let Some(&(i, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '.' || d == '_' {
                        chars.next();
                        end = i + d.len_utf8();
                    } else {
                        break;
                    }
                }
                let number = &text[start..end];
                out.push(if let Ok(i) = number.parse::<i64>() {
                    Token::Int(i)
                } else if let Ok(x) = number.parse::<f64>() {
                    Token::Float(x)
                } else {
                    return Err(ParseError(format!("`{number}` is not a number")));
                });
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut end = start;
                while let Some(&(i, d)) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' || d == '.' {
                        chars.next();
                        end = i + d.len_utf8();
                    } else {
                        break;
                    }
                }
                out.push(Token::Ident(text[start..end].to_owned()));
            }
            other => {
                return Err(ParseError(format!(
                    "unexpected character `{other}` (not in the supported OTTL subset)"
                )));
            }
        }
    }
    Ok(out)
}
