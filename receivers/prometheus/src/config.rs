//! The receiver's YAML section: the OpenTelemetry Collector's `prometheus` receiver, whose `config:` is a
//! Prometheus configuration. otlake reads the part of it that a sidecar scraping its neighbours needs:
//! `global.scrape_interval` / `scrape_timeout` and, per `scrape_configs[]` entry, `job_name`, `scrape_interval`,
//! `scrape_timeout`, `metrics_path`, `scheme`, `params`, `static_configs`, `honor_labels`, `honor_timestamps`,
//! `tls_config`, `authorization`, `basic_auth`, `metric_relabel_configs` (`keep`, `drop`, `labeldrop`,
//! `labelkeep`), `body_size_limit`, `sample_limit` and `enable_compression`.
//!
//! Any other key (service discovery, `relabel_configs`, `remote_write`, ...) is refused by name
//! (`deny_unknown_fields`), never ignored: a scrape that silently did something else than its Prometheus
//! configuration says would be worse than none. [`PrometheusReceiverConfig::validate`] is pure and reports
//! every problem at once.
//!
//! Secrets (`basic_auth.password`, `authorization.credentials`) are the core's [`Secret`]s: `Debug` prints `***`, a bad
//! value is refused without being quoted, and no validation message names a value.

use otlake_core::config::Secret;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use otlake_core::ConfigError;
use serde::Deserialize;
use serde::de::Deserializer;

/// Prometheus' default scrape interval.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus' default scrape timeout.
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Prometheus' default path.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";
/// Prometheus' default scheme.
pub const DEFAULT_SCHEME: &str = "http";
/// otlake's default cap on one scrape body, before and after decompression. Prometheus has none by default; a
/// sidecar must bound its memory, and a model server's `/metrics` is a few hundred KB.
pub const DEFAULT_BODY_SIZE_LIMIT: u64 = 16 << 20;
/// Prometheus' default `separator` of `source_labels`.
pub const DEFAULT_RELABEL_SEPARATOR: &str = ";";
/// Prometheus' default relabel `regex`.
pub const DEFAULT_RELABEL_REGEX: &str = "(.*)";
/// The `type` of `authorization` when none is given.
pub const DEFAULT_AUTHORIZATION_TYPE: &str = "Bearer";

/// The `prometheus` receiver's configuration.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusReceiverConfig {
    /// The Prometheus configuration: `global` and `scrape_configs`, as in a `prometheus.yml`.
    pub config: PrometheusConfig,
}

/// `config:`, a Prometheus configuration file's content.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Defaults for every scrape config.
    pub global: GlobalConfig,
    /// The jobs to scrape; at least one.
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// `config.global`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Scrape interval of jobs that set none. Default `1m`.
    #[serde(with = "humantime_serde")]
    pub scrape_interval: Duration,
    /// Scrape timeout of jobs that set none. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub scrape_timeout: Duration,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
        }
    }
}

/// One `scrape_configs[]` entry: a job and its targets.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// The job's name: the `job` label, and the OTLP resource's `service.name`. Required, unique.
    pub job_name: String,
    /// How often each target is scraped. Default: `global.scrape_interval`.
    #[serde(with = "humantime_serde")]
    pub scrape_interval: Option<Duration>,
    /// How long one scrape may take; at most the interval. Default: `global.scrape_timeout`, or the interval
    /// when that is shorter.
    #[serde(with = "humantime_serde")]
    pub scrape_timeout: Option<Duration>,
    /// The HTTP path scraped. Default `/metrics`.
    pub metrics_path: String,
    /// `http` or `https`. Default `http`.
    pub scheme: String,
    /// Query parameters added to every scrape URL (`name: [value, ...]`).
    pub params: BTreeMap<String, Vec<String>>,
    /// The targets, each `host:port` (the port defaults to 80 for `http`, 443 for `https`), with labels.
    pub static_configs: Vec<StaticConfig>,
    /// When a scraped label clashes with a target label (`job`, `instance`, `static_configs[].labels`): `false`
    /// (default) keeps the target's and renames the scraped one `exported_<name>`; `true` keeps the scraped one.
    pub honor_labels: bool,
    /// Use the timestamps the target writes on its samples (default `true`); `false` stamps every sample
    /// with the scrape's time.
    pub honor_timestamps: bool,
    /// TLS for `https` targets.
    pub tls_config: TlsConfig,
    /// An `Authorization: <type> <credentials>` header on every scrape.
    pub authorization: Option<Authorization>,
    /// HTTP basic authentication on every scrape.
    pub basic_auth: Option<BasicAuth>,
    /// Rules applied to every scraped sample, in order, before it is kept.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// The largest body accepted, as sent and after decompression; a larger one fails the scrape
    /// (`up` = 0). A byte size (`16MiB`, `500KB`). Default 16 MiB; `0` (Prometheus' "no limit") is refused.
    #[serde(deserialize_with = "otlake_core::config::byte_size::deserialize")]
    pub body_size_limit: u64,
    /// More samples than this fails the scrape, as in Prometheus. `0` (default): no limit.
    pub sample_limit: u64,
    /// Ask for a gzip-compressed body (`Accept-Encoding: gzip`). Default `true`.
    pub enable_compression: bool,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            job_name: String::new(),
            scrape_interval: None,
            scrape_timeout: None,
            metrics_path: DEFAULT_METRICS_PATH.to_owned(),
            scheme: DEFAULT_SCHEME.to_owned(),
            params: BTreeMap::new(),
            static_configs: Vec::new(),
            honor_labels: false,
            honor_timestamps: true,
            tls_config: TlsConfig::default(),
            authorization: None,
            basic_auth: None,
            metric_relabel_configs: Vec::new(),
            body_size_limit: DEFAULT_BODY_SIZE_LIMIT,
            sample_limit: 0,
            enable_compression: true,
        }
    }
}

/// `static_configs[]`: targets and the labels they share.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` of each target.
    pub targets: Vec<String>,
    /// Labels added to every series of these targets (as OTLP data point attributes). Numbers and booleans
    /// (`port: 8000`, or an `${env:}` value re-read as one) are taken as their text.
    #[serde(deserialize_with = "text_values")]
    pub labels: BTreeMap<String, String>,
}

/// `tls_config`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA certificates (PEM) that sign the targets' certificates; absent: the system's.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub key_file: Option<PathBuf>,
    /// The name the target's certificate is checked against, instead of the target's host.
    pub server_name: Option<String>,
    /// Accept any certificate (encrypts, but authenticates no one). Default `false`.
    pub insecure_skip_verify: bool,
    /// Oldest TLS version allowed: `TLS12` (default) or `TLS13`.
    pub min_version: Option<String>,
}

/// `authorization`: `Authorization: <type> <credentials>`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// The scheme. Default `Bearer`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The credentials (a secret, usually `${env:TOKEN}`).
    pub credentials: Option<Secret>,
    /// A file holding the credentials, read at start-up (surrounding whitespace ignored).
    pub credentials_file: Option<PathBuf>,
}

/// `basic_auth`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password (a secret).
    pub password: Option<Secret>,
    /// A file holding the password, read at start-up (surrounding whitespace ignored).
    pub password_file: Option<PathBuf>,
}

/// `metric_relabel_configs[]`: a rule that keeps or drops samples, or drops labels.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    /// Labels whose values, joined by `separator`, the regex must match (`keep`, `drop`); `__name__` is the
    /// sample's name.
    pub source_labels: Vec<String>,
    /// Joins the `source_labels` values. Default `;`.
    pub separator: String,
    /// An RE2-style regex, anchored at both ends as in Prometheus. Default `(.*)`.
    pub regex: String,
    /// `keep`, `drop`, `labeldrop` or `labelkeep`. Required: Prometheus' default `replace` is not supported.
    pub action: Option<String>,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_RELABEL_SEPARATOR.to_owned(),
            regex: DEFAULT_RELABEL_REGEX.to_owned(),
            action: None,
        }
    }
}

/// What a relabel rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelabelAction {
    /// Keep the sample only if the joined `source_labels` match.
    Keep,
    /// Drop the sample if they match.
    Drop,
    /// Remove every label whose name matches.
    LabelDrop,
    /// Remove every label whose name does not match.
    LabelKeep,
}

impl RelabelConfig {
    /// The action, or why it is not one otlake supports.
    pub fn parsed_action(&self) -> Result<RelabelAction, String> {
        match self.action.as_deref() {
            Some("keep") => Ok(RelabelAction::Keep),
            Some("drop") => Ok(RelabelAction::Drop),
            Some("labeldrop") => Ok(RelabelAction::LabelDrop),
            Some("labelkeep") => Ok(RelabelAction::LabelKeep),
            None => Err("is required: Prometheus' default `replace` is not supported (keep, drop, labeldrop, labelkeep are)".into()),
            Some(other) => Err(format!(
                "`{other}` is not supported (keep, drop, labeldrop, labelkeep are)"
            )),
        }
    }

    /// The regex, anchored at both ends as Prometheus anchors it.
    pub fn compiled_regex(&self) -> Result<regex::Regex, String> {
        regex::Regex::new(&format!("^(?:{})$", self.regex))
            .map_err(|e| format!("invalid regex: {e}"))
    }
}

/// A map of label values, each a string or a scalar taken as its text (as Prometheus' YAML reads them).
fn text_values<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Integer(i64),
        Float(f64),
        Boolean(bool),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                Scalar::Text(t) => t,
                Scalar::Integer(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Boolean(b) => b.to_string(),
            };
            (name, text)
        })
        .collect())
}

/// One target's address, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetAddress {
    pub host: String,
    pub port: u16,
}

/// Splits `host:port` (or `[v6]:port`, or a bare host with the scheme's default port).
pub fn parse_target(target: &str, scheme: &str) -> Result<TargetAddress, String> {
    let default_port = if scheme == "https" { 443 } else { 80 };
    if target.is_empty() {
        return Err("is empty".into());
    }
    if target.contains('/') || target.contains('@') || target.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{target}` is not `host:port` (no scheme, path or user)"
        ));
    }
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{target}`: unclosed `[`"))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("`{target}` is not `host:port`")),
        }
    } else {
        match target.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (target, None),
        }
    };
    if host.is_empty() || host.contains(':') && !target.starts_with('[') {
        return Err(format!("`{target}` is not `host:port`"));
    }
    let port = match port {
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{target}` has no valid port"))?,
        None => default_port,
    };
    Ok(TargetAddress {
        host: host.to_owned(),
        port,
    })
}

fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl ScrapeConfig {
    /// The interval in force (the job's, else the global one).
    pub fn interval(&self, global: &GlobalConfig) -> Duration {
        self.scrape_interval.unwrap_or(global.scrape_interval)
    }

    /// The timeout in force: the job's; else the global one, cut to the interval as Prometheus does.
    pub fn timeout(&self, global: &GlobalConfig) -> Duration {
        self.scrape_timeout
            .unwrap_or_else(|| global.scrape_timeout.min(self.interval(global)))
    }

    fn validate(&self, global: &GlobalConfig, errors: &mut Vec<ConfigError>) {
        let mut error = |path: &str, message: String| errors.push(ConfigError::new(path, message));
        if self.job_name.trim().is_empty() {
            error("job_name", "is required".into());
        }
        let interval = self.interval(global);
        let timeout = self.timeout(global);
        if interval.is_zero() {
            error("scrape_interval", "must be more than 0s".into());
        }
        if timeout.is_zero() {
            error("scrape_timeout", "must be more than 0s".into());
        } else if timeout > interval {
            error(
                "scrape_timeout",
                format!(
                    "{} is longer than the scrape interval ({})",
                    humantime_serde::re::humantime::format_duration(timeout),
                    humantime_serde::re::humantime::format_duration(interval)
                ),
            );
        }
        if !self.metrics_path.starts_with('/') {
            error(
                "metrics_path",
                format!("`{}` must start with `/`", self.metrics_path),
            );
        }
        if self.scheme != "http" && self.scheme != "https" {
            error(
                "scheme",
                format!("`{}` is not `http` or `https`", self.scheme),
            );
        }
        for name in self.params.keys() {
            if name.is_empty() {
                error("params", "a parameter name is empty".into());
            }
        }
        for (i, group) in self.static_configs.iter().enumerate() {
            for (j, target) in group.targets.iter().enumerate() {
                if let Err(message) = parse_target(target, &self.scheme) {
                    error(&format!("static_configs[{i}].targets[{j}]"), message);
                }
            }
            for name in group.labels.keys() {
                if !valid_label_name(name) || name.starts_with("__") {
                    error(
                        &format!("static_configs[{i}].labels.{name}"),
                        "is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not `__`-prefixed)".into(),
                    );
                }
            }
        }
        if self.authorization.is_some() && self.basic_auth.is_some() {
            error(
                "authorization",
                "and `basic_auth` are both set: choose one".into(),
            );
        }
        if let Some(auth) = &self.authorization {
            match (&auth.credentials, &auth.credentials_file) {
                (Some(_), Some(_)) => error(
                    "authorization.credentials",
                    "and `credentials_file` are both set: choose one".into(),
                ),
                (None, None) => error(
                    "authorization",
                    "needs `credentials` or `credentials_file`".into(),
                ),
                (Some(secret), None) if !header_safe(secret.expose()) => error(
                    "authorization.credentials",
                    "must be visible ASCII (it travels in an HTTP header); the value is not shown"
                        .into(),
                ),
                _ => {}
            }
            if let Some(kind) = &auth.kind
                && (kind.is_empty()
                    || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            {
                error(
                    "authorization.type",
                    format!("`{kind}` is not an authorization scheme"),
                );
            }
        }
        if let Some(basic) = &self.basic_auth
            && basic.password.is_some()
            && basic.password_file.is_some()
        {
            error(
                "basic_auth.password",
                "and `password_file` are both set: choose one".into(),
            );
        }
        let tls = &self.tls_config;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            error(
                "tls_config",
                "`cert_file` and `key_file` go together".into(),
            );
        }
        if let Some(version) = &tls.min_version
            && version != "TLS12"
            && version != "TLS13"
        {
            error(
                "tls_config.min_version",
                format!("`{version}` is not `TLS12` or `TLS13` (older versions are not supported)"),
            );
        }
        for (i, rule) in self.metric_relabel_configs.iter().enumerate() {
            let path = format!("metric_relabel_configs[{i}]");
            match rule.parsed_action() {
                Ok(RelabelAction::LabelDrop | RelabelAction::LabelKeep)
                    if !rule.source_labels.is_empty() =>
                {
                    error(
                        &format!("{path}.source_labels"),
                        "is not used by labeldrop / labelkeep (only `regex` is)".into(),
                    );
                }
                Ok(_) => {}
                Err(message) => error(&format!("{path}.action"), message),
            }
            if let Err(message) = rule.compiled_regex() {
                error(&format!("{path}.regex"), message);
            }
        }
        if self.body_size_limit == 0 {
            error(
                "body_size_limit",
                "must be more than 0 (otlake always bounds a scrape body)".into(),
            );
        }
    }
}

fn header_safe(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

impl PrometheusReceiverConfig {
    /// Every problem, each with its path inside the receiver's section.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let global = &self.config.global;
        if global.scrape_interval.is_zero() {
            errors.push(ConfigError::new(
                "config.global.scrape_interval",
                "must be more than 0s",
            ));
        }
        if self.config.scrape_configs.is_empty() {
            errors.push(ConfigError::new(
                "config.scrape_configs",
                "at least one scrape config is required",
            ));
        }
        let mut jobs = HashSet::new();
        for (i, job) in self.config.scrape_configs.iter().enumerate() {
            let prefix = format!("config.scrape_configs[{i}]");
            let mut own = Vec::new();
            job.validate(global, &mut own);
            errors.extend(own.into_iter().map(|e| e.under(&prefix)));
            if !job.job_name.is_empty() && !jobs.insert(job.job_name.as_str()) {
                errors.push(ConfigError::new(
                    format!("{prefix}.job_name"),
                    format!("`{}` is used by another scrape config", job.job_name),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests;
