//! The `retry_on_failure:` section: the Collector's `configretry` keys and defaults (exponential backoff with
//! jitter, given up after `max_elapsed_time`).

use std::time::Duration;

use serde::Deserialize;

use otlake_core::ConfigError;

pub const DEFAULT_INITIAL_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RANDOMIZATION_FACTOR: f64 = 0.5;
pub const DEFAULT_MULTIPLIER: f64 = 1.5;
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_ELAPSED_TIME: Duration = Duration::from_secs(300);

/// How failed requests are retried.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retry retryable failures (default true). When false, one attempt and the client is told to retry.
    pub enabled: bool,
    /// Wait after the first failure (default 5s).
    #[serde(with = "humantime_serde")]
    pub initial_interval: Duration,
    /// Each wait is drawn from `interval * (1 ± randomization_factor)` (default 0.5, within [0, 1]).
    pub randomization_factor: f64,
    /// The interval grows by this factor after each retry (default 1.5).
    pub multiplier: f64,
    /// Upper bound of the interval (default 30s).
    #[serde(with = "humantime_serde")]
    pub max_interval: Duration,
    /// Give up on a request after this long, counted from its first attempt (default 300s); `0` never gives up.
    #[serde(with = "humantime_serde")]
    pub max_elapsed_time: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: DEFAULT_INITIAL_INTERVAL,
            randomization_factor: DEFAULT_RANDOMIZATION_FACTOR,
            multiplier: DEFAULT_MULTIPLIER,
            max_interval: DEFAULT_MAX_INTERVAL,
            max_elapsed_time: DEFAULT_MAX_ELAPSED_TIME,
        }
    }
}

impl RetryConfig {
    pub fn validate(&self, errors: &mut Vec<ConfigError>) {
        if !self.enabled {
            return;
        }
        let mut report = |key: &str, message: &str| {
            errors.push(ConfigError::new(format!("retry_on_failure.{key}"), message))
        };
        if !(0.0..=1.0).contains(&self.randomization_factor) {
            report("randomization_factor", "must be within [0, 1]");
        }
        if !self.multiplier.is_finite() || self.multiplier < 0.0 {
            report("multiplier", "must be a non-negative number");
        }
        if !self.max_elapsed_time.is_zero() {
            if self.max_elapsed_time < self.initial_interval {
                report(
                    "max_elapsed_time",
                    "must not be less than `initial_interval` (or 0 for no limit)",
                );
            }
            if self.max_elapsed_time < self.max_interval {
                report(
                    "max_elapsed_time",
                    "must not be less than `max_interval` (or 0 for no limit)",
                );
            }
        }
    }
}
