//! The exposition formats: the Prometheus text format 0.0.4 and OpenMetrics 1.0 text, parsed into metric
//! families.
//!
//! The parser borrows from the body (names and unescaped label values are slices of it) and either returns
//! every family of the exposition or the first problem with its 1-based line number: a malformed exposition is
//! a failed scrape, never half of one. It enforces the format's rules, not the data's: histogram bucket order,
//! duplicate series and counter resets are the mapping's business (`crate::mapping`).
//!
//! Strictness follows the formats. The Prometheus text format is read the way Prometheus reads it: blank
//! lines, free comments, runs of spaces or tabs, a trailing comma in a label set and unknown escapes in label
//! values (kept as written) are accepted. OpenMetrics is read by its ABNF: single spaces, no blank lines, no
//! other comments, metadata before the family's samples, families not interleaved, and a final `# EOF`.

use std::borrow::Cow;
use std::collections::HashMap;

/// Which exposition format a body is in (from the response's `Content-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`, and what a target sends without a content type.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0` (or 0.0.1).
    OpenMetrics,
}

impl Format {
    /// The format a `Content-Type` header announces; anything but OpenMetrics is read as the text format, as
    /// Prometheus does for targets that send no or a generic content type.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        match content_type {
            Some(ct)
                if ct.split(';').next().is_some_and(|media| {
                    media
                        .trim()
                        .eq_ignore_ascii_case("application/openmetrics-text")
                }) =>
            {
                Format::OpenMetrics
            }
            _ => Format::Prometheus,
        }
    }
}

/// A family's `# TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// `untyped` in the text format, `unknown` in OpenMetrics, or no `# TYPE` line at all.
    Unknown,
}

impl MetricType {
    fn parse(text: &str, format: Format) -> Option<MetricType> {
        Some(match (text, format) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Prometheus) | ("unknown", Format::OpenMetrics) => {
                MetricType::Unknown
            }
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// Whether a sample named `family` + `suffix` belongs to a family of this type.
    fn allows(self, suffix: Suffix, format: Format) -> bool {
        use Suffix::*;
        match self {
            // The text format names a counter's samples as the family (`x_total`); OpenMetrics requires the
            // `_total` sample and names the family without it.
            MetricType::Counter => match format {
                Format::Prometheus => matches!(suffix, None | Total | Created),
                Format::OpenMetrics => matches!(suffix, Total | Created),
            },
            MetricType::Gauge | MetricType::Unknown | MetricType::StateSet => suffix == None,
            MetricType::Histogram => matches!(suffix, Bucket | Count | Sum | Created),
            MetricType::GaugeHistogram => matches!(suffix, Bucket | GCount | GSum),
            MetricType::Summary => matches!(suffix, None | Count | Sum | Created),
            MetricType::Info => suffix == Info,
        }
    }
}

/// Which part of its family a sample is: the suffix of its name after the family name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suffix {
    /// The sample is named as the family (a gauge, an untyped sample, a summary quantile).
    None,
    Total,
    Created,
    Bucket,
    Count,
    Sum,
    GCount,
    GSum,
    Info,
}

impl Suffix {
    /// How the suffix is written after the family name.
    pub fn text(self) -> &'static str {
        match self {
            Suffix::None => "",
            _ => SUFFIXES
                .iter()
                .find(|(_, s)| *s == self)
                .map_or("", |(text, _)| text),
        }
    }
}

const SUFFIXES: [(&str, Suffix); 8] = [
    ("_total", Suffix::Total),
    ("_created", Suffix::Created),
    ("_bucket", Suffix::Bucket),
    ("_count", Suffix::Count),
    ("_sum", Suffix::Sum),
    ("_gcount", Suffix::GCount),
    ("_gsum", Suffix::GSum),
    ("_info", Suffix::Info),
];

/// One label of a sample or an exemplar.
#[derive(Clone, Debug, PartialEq)]
pub struct Label<'a> {
    pub name: &'a str,
    /// Unescaped; borrowed from the body unless it held an escape.
    pub value: Cow<'a, str>,
}

/// An OpenMetrics exemplar: a traced observation attached to a counter or a bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar<'a> {
    pub labels: Vec<Label<'a>>,
    pub value: f64,
    pub timestamp_ns: Option<i64>,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The full sample name (`x_bucket`).
    pub name: &'a str,
    pub suffix: Suffix,
    /// In the order written, without duplicates.
    pub labels: Vec<Label<'a>>,
    pub value: f64,
    /// The sample's own timestamp, if it has one (milliseconds in the text format, seconds in OpenMetrics).
    pub timestamp_ns: Option<i64>,
    pub exemplar: Option<Exemplar<'a>>,
    /// Where it was written (1-based), for error messages further on.
    pub line: usize,
}

impl Sample<'_> {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_ref())
    }
}

/// A metric family: its metadata and its samples, in exposition order.
#[derive(Clone, Debug, PartialEq)]
pub struct Family<'a> {
    pub name: &'a str,
    pub kind: MetricType,
    pub help: Option<Cow<'a, str>>,
    pub unit: Option<&'a str>,
    pub samples: Vec<Sample<'a>>,
    typed: bool,
}

/// Why an exposition was refused: the first problem found, and its line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based; 0 when the problem is the body as a whole (not UTF-8, no `# EOF`).
    pub line: usize,
    pub message: String,
}

/// The longest exemplar label set OpenMetrics allows, in characters of names and values.
pub const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

/// Parses a whole exposition. Families come in the order they first appear.
pub fn parse(body: &str, format: Format) -> Result<Vec<Family<'_>>, ParseError> {
    let mut parser = Parser {
        format,
        families: Vec::new(),
        by_name: HashMap::new(),
        current: None,
    };
    let mut saw_eof = false;
    let mut lines = body.split('\n').enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let number = index + 1;
        let fail = |message: String| ParseError {
            line: number,
            message,
        };
        if saw_eof {
            // Only the newline that ends `# EOF` may follow it.
            if raw.is_empty() && lines.peek().is_none() {
                break;
            }
            return Err(fail("content after `# EOF`".into()));
        }
        match format {
            Format::Prometheus => {
                // Windows line ends are tolerated, as Prometheus does.
                let line = raw.strip_suffix('\r').unwrap_or(raw);
                let trimmed = line.trim_start_matches([' ', '\t']);
                if trimmed.trim_end_matches([' ', '\t']).is_empty() {
                    continue;
                }
                if let Some(comment) = trimmed.strip_prefix('#') {
                    parser.text_comment(comment).map_err(fail)?;
                } else {
                    parser.sample(trimmed, number).map_err(fail)?;
                }
            }
            Format::OpenMetrics => {
                if raw.is_empty() {
                    if lines.peek().is_none() {
                        break;
                    }
                    return Err(fail("empty line (OpenMetrics allows none)".into()));
                }
                if raw == "# EOF" {
                    saw_eof = true;
                } else if let Some(rest) = raw.strip_prefix("# ") {
                    parser.om_metadata(rest).map_err(fail)?;
                } else if raw.starts_with('#') {
                    return Err(fail(format!(
                        "`{}` is not a HELP, TYPE, UNIT or EOF line",
                        shorten(raw)
                    )));
                } else {
                    parser.sample(raw, number).map_err(fail)?;
                }
            }
        }
    }
    if format == Format::OpenMetrics && !saw_eof {
        return Err(ParseError {
            line: 0,
            message: "no `# EOF` line: the OpenMetrics exposition is incomplete".into(),
        });
    }
    Ok(parser.families)
}

/// Parses a body that must first be checked as UTF-8; the error names the line of the first bad byte.
pub fn parse_bytes(body: &[u8], format: Format) -> Result<Vec<Family<'_>>, ParseError> {
    match std::str::from_utf8(body) {
        Ok(text) => parse(text, format),
        Err(e) => Err(ParseError {
            line: 1 + body[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            message: "not UTF-8".into(),
        }),
    }
}

struct Parser<'a> {
    format: Format,
    families: Vec<Family<'a>>,
    by_name: HashMap<&'a str, usize>,
    /// The family of the previous line: OpenMetrics families must not be interleaved, so a line for any other
    /// family that was already seen is an error.
    current: Option<usize>,
}

type LineResult<T> = Result<T, String>;

impl<'a> Parser<'a> {
    fn family(&mut self, name: &'a str) -> LineResult<usize> {
        if let Some(&index) = self.by_name.get(name) {
            if self.format == Format::OpenMetrics && self.current != Some(index) {
                return Err(format!(
                    "metric family `{name}` is interleaved with another family"
                ));
            }
            self.current = Some(index);
            return Ok(index);
        }
        self.families.push(Family {
            name,
            kind: MetricType::Unknown,
            help: None,
            unit: None,
            samples: Vec::new(),
            typed: false,
        });
        let index = self.families.len() - 1;
        self.by_name.insert(name, index);
        self.current = Some(index);
        Ok(index)
    }

    /// A text-format `#` line: HELP and TYPE are metadata, anything else is a comment.
    fn text_comment(&mut self, comment: &'a str) -> LineResult<()> {
        let comment = comment.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_token(comment);
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(());
        }
        if rest.is_empty() || !rest.starts_with([' ', '\t']) {
            // `# HELP` alone or `# HELPER ...`: a comment.
            return Ok(());
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        let (name, text) = split_token(rest);
        check_metric_name(name)?;
        let text = text.strip_prefix([' ', '\t']).unwrap_or(text);
        let index = self.family(name)?;
        let family = &mut self.families[index];
        if keyword == "HELP" {
            if family.help.is_some() {
                return Err(format!("second HELP line for `{name}`"));
            }
            family.help = Some(unescape_help(text, Format::Prometheus)?);
        } else {
            if family.typed {
                return Err(format!("second TYPE line for `{name}`"));
            }
            if !family.samples.is_empty() {
                return Err(format!("TYPE line for `{name}` after its samples"));
            }
            let kind_text = text.trim_end_matches([' ', '\t']);
            family.kind = MetricType::parse(kind_text, Format::Prometheus).ok_or_else(|| {
                format!("unknown metric type `{}` for `{name}`", shorten(kind_text))
            })?;
            family.typed = true;
        }
        Ok(())
    }

    /// An OpenMetrics `# HELP|TYPE|UNIT name ...` line (after `# `).
    fn om_metadata(&mut self, rest: &'a str) -> LineResult<()> {
        let (keyword, rest) = split_once_space(rest).ok_or_else(|| {
            format!(
                "`# {}` is not a HELP, TYPE, UNIT or EOF line",
                shorten(rest)
            )
        })?;
        if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
            return Err(format!(
                "`# {keyword}` is not a HELP, TYPE, UNIT or EOF line"
            ));
        }
        let (name, text) = match split_once_space(rest) {
            Some(parts) => parts,
            None if keyword == "HELP" => (rest, ""),
            None => return Err(format!("`# {keyword} {}` has no value", shorten(rest))),
        };
        check_metric_name(name)?;
        let index = self.family(name)?;
        let family = &mut self.families[index];
        if !family.samples.is_empty() {
            return Err(format!("{keyword} line for `{name}` after its samples"));
        }
        match keyword {
            "HELP" => {
                if family.help.is_some() {
                    return Err(format!("second HELP line for `{name}`"));
                }
                family.help = Some(unescape_help(text, Format::OpenMetrics)?);
            }
            "TYPE" => {
                if family.typed {
                    return Err(format!("second TYPE line for `{name}`"));
                }
                family.kind = MetricType::parse(text, Format::OpenMetrics).ok_or_else(|| {
                    format!("unknown metric type `{}` for `{name}`", shorten(text))
                })?;
                family.typed = true;
            }
            _ => {
                if family.unit.is_some() {
                    return Err(format!("second UNIT line for `{name}`"));
                }
                if !text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
                {
                    return Err(format!("invalid unit `{}` for `{name}`", shorten(text)));
                }
                if !text.is_empty()
                    && !name
                        .strip_suffix(text)
                        .is_some_and(|stem| stem.ends_with('_'))
                {
                    return Err(format!(
                        "the unit `{text}` is not a suffix of the family name `{name}`"
                    ));
                }
                family.unit = Some(text);
            }
        }
        Ok(())
    }

    fn sample(&mut self, line_text: &'a str, line: usize) -> LineResult<()> {
        let raw = SampleLine::parse(line_text, self.format)?;
        let (index, suffix) = self.resolve(raw.name)?;
        let family = &self.families[index];
        let kind = family.kind;
        if suffix == Suffix::Bucket || (kind == MetricType::Summary && suffix == Suffix::None) {
            let label = if suffix == Suffix::Bucket {
                "le"
            } else {
                "quantile"
            };
            let value = raw
                .labels
                .iter()
                .find(|l| l.name == label)
                .ok_or_else(|| format!("`{}` has no `{label}` label", raw.name))?;
            parse_float(&value.value).ok_or_else(|| {
                format!(
                    "`{}` has `{label}=\"{}\"`, not a number",
                    raw.name,
                    shorten(&value.value)
                )
            })?;
        }
        if let Some(exemplar) = &raw.exemplar {
            let allowed = match kind {
                MetricType::Counter => suffix == Suffix::Total,
                MetricType::Histogram | MetricType::GaugeHistogram => suffix == Suffix::Bucket,
                _ => false,
            };
            if !allowed {
                return Err(format!("`{}` may not carry an exemplar", raw.name));
            }
            let chars: usize = exemplar
                .labels
                .iter()
                .map(|l| l.name.chars().count() + l.value.chars().count())
                .sum();
            if chars > MAX_EXEMPLAR_LABEL_CHARS {
                return Err(format!(
                    "the exemplar of `{}` has {chars} characters of labels (at most {MAX_EXEMPLAR_LABEL_CHARS})",
                    raw.name
                ));
            }
        }
        self.families[index].samples.push(Sample {
            name: raw.name,
            suffix,
            labels: raw.labels,
            value: raw.value,
            timestamp_ns: raw.timestamp_ns,
            exemplar: raw.exemplar,
            line,
        });
        Ok(())
    }

    /// The family a sample name belongs to: the current family if the name fits it, else a declared family
    /// named as the sample, else a declared family the name extends by a suffix of its type, else a new
    /// untyped family of its own.
    fn resolve(&mut self, name: &'a str) -> LineResult<(usize, Suffix)> {
        let format = self.format;
        let fits_tail = |family: &Family<'_>, tail: &str| -> Option<Suffix> {
            if tail.is_empty() {
                return family
                    .kind
                    .allows(Suffix::None, format)
                    .then_some(Suffix::None);
            }
            let (_, suffix) = SUFFIXES.iter().find(|(text, _)| *text == tail)?;
            family.kind.allows(*suffix, format).then_some(*suffix)
        };
        let fits = |family: &Family<'_>| fits_tail(family, name.strip_prefix(family.name)?);
        if let Some(index) = self.current {
            let family = &self.families[index];
            if let Some(suffix) = fits(family) {
                return Ok((index, suffix));
            }
            // Python's prometheus_client (0.22 and later) writes OpenMetrics sample names with `:` escaped to
            // `_` under an unescaped `# TYPE vllm:x`: such samples belong to the family they follow.
            if format == Format::OpenMetrics
                && let Some(tail) = strip_escaped_prefix(name, family.name)
                && let Some(suffix) = fits_tail(family, tail)
            {
                return Ok((index, suffix));
            }
        }
        if let Some(&index) = self.by_name.get(name)
            && let Some(suffix) = fits(&self.families[index])
        {
            return Ok((self.family(name).map(|_| index)?, suffix));
        }
        for (text, _) in SUFFIXES {
            if let Some(stem) = name.strip_suffix(text)
                && let Some(&index) = self.by_name.get(stem)
                && let Some(suffix) = fits(&self.families[index])
            {
                self.family(stem)?;
                return Ok((index, suffix));
            }
        }
        if self.by_name.contains_key(name) {
            let kind = self.families[self.by_name[name]].kind;
            return Err(format!(
                "sample `{name}` does not fit its family's type {kind:?}"
            ));
        }
        Ok((self.family(name)?, Suffix::None))
    }
}

/// A sample line split into its parts.
struct SampleLine<'a> {
    name: &'a str,
    labels: Vec<Label<'a>>,
    value: f64,
    timestamp_ns: Option<i64>,
    exemplar: Option<Exemplar<'a>>,
}

impl<'a> SampleLine<'a> {
    fn parse(line: &'a str, format: Format) -> LineResult<Self> {
        let mut cursor = Cursor {
            text: line,
            pos: 0,
            format,
        };
        let name = cursor.metric_name()?;
        let labels = if cursor.peek() == Some(b'{') {
            cursor.labels()?
        } else {
            Vec::new()
        };
        cursor.separator("before the value")?;
        let value_text = cursor.token();
        let value = parse_float(value_text)
            .ok_or_else(|| format!("`{}` is not a sample value", shorten(value_text)))?;
        let mut timestamp_ns = None;
        let mut exemplar = None;
        if !cursor.at_end_of_sample() {
            cursor.separator("before the timestamp")?;
            if cursor.peek() != Some(b'#') {
                let text = cursor.token();
                timestamp_ns = Some(parse_timestamp(text, format)?);
            }
        }
        if format == Format::OpenMetrics && cursor.rest().starts_with(" #") {
            cursor.pos += 1;
        }
        if format == Format::OpenMetrics && cursor.rest().starts_with("# ") {
            cursor.pos += 2;
            exemplar = Some(cursor.exemplar()?);
        }
        if format == Format::Prometheus {
            cursor.skip_blanks();
        }
        if !cursor.rest().is_empty() {
            return Err(format!(
                "unexpected `{}` after the sample",
                shorten(cursor.rest())
            ));
        }
        Ok(SampleLine {
            name,
            labels,
            value,
            timestamp_ns,
            exemplar,
        })
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    format: Format,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Blanks inside a label set: any in the text format, none in OpenMetrics.
    fn skip_inner_blanks(&mut self) {
        if self.format == Format::Prometheus {
            self.skip_blanks();
        }
    }

    /// The blank between two parts of a line: spaces or tabs in the text format, exactly one space in
    /// OpenMetrics.
    fn separator(&mut self, what: &str) -> LineResult<()> {
        match self.format {
            Format::Prometheus => {
                if !matches!(self.peek(), Some(b' ' | b'\t')) {
                    return Err(self.expected(&format!("a space {what}")));
                }
                self.skip_blanks();
                if self.peek().is_none() {
                    return Err(format!("missing value {what}"));
                }
            }
            Format::OpenMetrics => {
                if self.peek() != Some(b' ') {
                    return Err(self.expected(&format!("a space {what}")));
                }
                self.pos += 1;
                if matches!(self.peek(), None | Some(b' ')) {
                    return Err(format!("expected exactly one space {what}"));
                }
            }
        }
        Ok(())
    }

    fn at_end_of_sample(&self) -> bool {
        match self.format {
            Format::Prometheus => self.rest().trim_start_matches([' ', '\t']).is_empty(),
            Format::OpenMetrics => self.rest().is_empty() || self.rest().starts_with(" # "),
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while !matches!(self.peek(), None | Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn expected(&self, what: &str) -> String {
        match self.rest().chars().next() {
            Some(c) => format!("expected {what} at column {}, found `{c}`", self.pos + 1),
            None => format!(
                "expected {what} at column {}, found the end of the line",
                self.pos + 1
            ),
        }
    }

    fn metric_name(&mut self) -> LineResult<&'a str> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            let ok = b.is_ascii_alphabetic()
                || b == b'_'
                || b == b':'
                || (self.pos > start && b.is_ascii_digit());
            if !ok {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.expected("a metric name"));
        }
        Ok(&self.text[start..self.pos])
    }

    fn label_name(&mut self) -> LineResult<&'a str> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            let ok =
                b.is_ascii_alphabetic() || b == b'_' || (self.pos > start && b.is_ascii_digit());
            if !ok {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.expected("a label name"));
        }
        Ok(&self.text[start..self.pos])
    }

    /// `{name="value",...}`, at `{`.
    fn labels(&mut self) -> LineResult<Vec<Label<'a>>> {
        self.pos += 1;
        let mut labels: Vec<Label<'a>> = Vec::new();
        self.skip_inner_blanks();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(labels);
        }
        loop {
            self.skip_inner_blanks();
            let name = self.label_name()?;
            self.skip_inner_blanks();
            if self.peek() != Some(b'=') {
                return Err(self.expected("`=`"));
            }
            self.pos += 1;
            self.skip_inner_blanks();
            let value = self.label_value()?;
            if labels.iter().any(|l| l.name == name) {
                return Err(format!("label `{name}` appears twice"));
            }
            labels.push(Label { name, value });
            self.skip_inner_blanks();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_inner_blanks();
                    // The text format allows a trailing comma; OpenMetrics does not.
                    if self.format == Format::Prometheus && self.peek() == Some(b'}') {
                        self.pos += 1;
                        return Ok(labels);
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(labels);
                }
                _ => return Err(self.expected("`,` or `}`")),
            }
        }
    }

    /// `"..."` with `\\`, `\"` and `\n` escapes.
    fn label_value(&mut self) -> LineResult<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.expected("`\"`"));
        }
        self.pos += 1;
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        loop {
            match bytes.get(self.pos) {
                None => return Err("unterminated label value".into()),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(_) => self.pos += 1,
            }
        }
        if self.pos > bytes.len() {
            return Err("unterminated label value".into());
        }
        let raw = &self.text[start..self.pos];
        self.pos += 1;
        if !escaped {
            return Ok(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(other) if self.format == Format::Prometheus => {
                    // Prometheus keeps an unknown escape as written.
                    out.push('\\');
                    out.push(other);
                }
                Some(other) => return Err(format!("invalid escape `\\{other}` in a label value")),
                None => return Err("unterminated label value".into()),
            }
        }
        Ok(Cow::Owned(out))
    }

    /// `{labels} value [timestamp]`, after `# `.
    fn exemplar(&mut self) -> LineResult<Exemplar<'a>> {
        if self.peek() != Some(b'{') {
            return Err(self.expected("an exemplar label set"));
        }
        let labels = self.labels()?;
        self.separator("before the exemplar value")?;
        let value_text = self.token();
        let value = parse_float(value_text)
            .ok_or_else(|| format!("`{}` is not an exemplar value", shorten(value_text)))?;
        let mut timestamp_ns = None;
        if !self.rest().is_empty() {
            self.separator("before the exemplar timestamp")?;
            timestamp_ns = Some(parse_timestamp(self.token(), Format::OpenMetrics)?);
        }
        Ok(Exemplar {
            labels,
            value,
            timestamp_ns,
        })
    }
}

/// `name` without a leading `family`, where the family's `:`s may be written as `_`.
fn strip_escaped_prefix<'n>(name: &'n str, family: &str) -> Option<&'n str> {
    if !family.contains(':') || name.len() < family.len() {
        return None;
    }
    let same = name
        .bytes()
        .zip(family.bytes())
        .all(|(n, f)| n == f || (f == b':' && n == b'_'));
    same.then(|| &name[family.len()..])
}

/// The first token of `text` (up to a blank) and what follows it.
fn split_token(text: &str) -> (&str, &str) {
    let end = text.find([' ', '\t']).unwrap_or(text.len());
    text.split_at(end)
}

fn split_once_space(text: &str) -> Option<(&str, &str)> {
    text.split_once(' ')
}

fn check_metric_name(name: &str) -> LineResult<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':');
    if first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
        Ok(())
    } else {
        Err(format!("`{}` is not a metric name", shorten(name)))
    }
}

/// A sample value or a bucket bound: a decimal or exponent number, or `NaN`, `Inf`, `+Inf`, `-Inf` (any case,
/// `Infinity` too), as Go's `strconv.ParseFloat` reads them; hexadecimal floats are not accepted.
pub fn parse_float(text: &str) -> Option<f64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let first = digits.bytes().next()?;
    if !(first.is_ascii_digit()
        || first == b'.'
        || first.eq_ignore_ascii_case(&b'i')
        || first.eq_ignore_ascii_case(&b'n'))
    {
        return None;
    }
    // Rust also reads `inf`/`infinity`/`nan` case-insensitively, and nothing Go rejects but hex.
    text.parse::<f64>().ok()
}

/// A sample timestamp in nanoseconds: integer milliseconds in the text format, seconds (possibly fractional)
/// in OpenMetrics.
fn parse_timestamp(text: &str, format: Format) -> LineResult<i64> {
    let bad = || format!("`{}` is not a timestamp", shorten(text));
    match format {
        Format::Prometheus => {
            let ms: i64 = text.parse().map_err(|_| bad())?;
            ms.checked_mul(1_000_000).ok_or_else(bad)
        }
        Format::OpenMetrics => {
            let (sign, unsigned) = match text.strip_prefix('-') {
                Some(rest) => (-1i64, rest),
                None => (1, text.strip_prefix('+').unwrap_or(text)),
            };
            let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
            let plain = !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && fraction.bytes().all(|b| b.is_ascii_digit());
            if plain {
                // Exact: nanoseconds from the decimal digits, without a trip through f64.
                let seconds: i64 = whole.parse().map_err(|_| bad())?;
                let mut nanos_text: String = fraction.chars().take(9).collect();
                while nanos_text.len() < 9 {
                    nanos_text.push('0');
                }
                let nanos: i64 = nanos_text.parse().map_err(|_| bad())?;
                let total = seconds
                    .checked_mul(1_000_000_000)
                    .and_then(|s| s.checked_add(nanos))
                    .ok_or_else(bad)?;
                return Ok(sign * total);
            }
            let seconds = parse_float(text)
                .filter(|s| s.is_finite())
                .ok_or_else(bad)?;
            let nanos = seconds * 1e9;
            if nanos.abs() >= i64::MAX as f64 {
                return Err(bad());
            }
            Ok(nanos as i64)
        }
    }
}

/// HELP text: `\\` and `\n` escapes, and `\"` in OpenMetrics. The text format keeps other escapes as written.
fn unescape_help(text: &str, format: Format) -> LineResult<Cow<'_, str>> {
    if !text.contains('\\') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match (chars.next(), format) {
            (Some('\\'), _) => out.push('\\'),
            (Some('n'), _) => out.push('\n'),
            (Some('"'), Format::OpenMetrics) => out.push('"'),
            (Some(other), Format::Prometheus) => {
                out.push('\\');
                out.push(other);
            }
            (None, Format::Prometheus) => out.push('\\'),
            (Some(other), Format::OpenMetrics) => {
                return Err(format!("invalid escape `\\{other}` in HELP"));
            }
            (None, Format::OpenMetrics) => return Err("HELP text ends in a lone `\\`".into()),
        }
    }
    Ok(Cow::Owned(out))
}

/// At most 60 characters of `text`, for error messages (which may be logged: no unbounded echo of a body).
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests;
