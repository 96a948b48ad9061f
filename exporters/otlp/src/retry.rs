//! Exponential backoff with jitter, as the Collector's `retry_on_failure` computes it.
//!
//! Each wait is drawn from `interval * (1 ± randomization_factor)`, then the interval grows by `multiplier` up
//! to `max_interval`. A server's requested delay (`Retry-After`, gRPC `RetryInfo`) raises the wait to at least
//! that, up to [`MAX_SERVER_DELAY`]. The request is given up when the next wait would end past
//! `max_elapsed_time` since its first attempt (`0`: never given up).

use std::time::Duration;

use crate::config::RetryConfig;

/// The longest delay a server's `Retry-After` or `RetryInfo` is taken at. Servers send what they like
/// (`Retry-After: 18446744073709551615` is a valid header); an hour is longer than any retry budget worth
/// having, and keeps every sum of durations and instants far from overflowing.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(3600);

/// The waits of one request's retries.
pub struct Backoff {
    interval: Duration,
    config: RetryConfig,
}

impl Backoff {
    pub fn new(config: &RetryConfig) -> Self {
        Backoff {
            interval: config.initial_interval,
            config: config.clone(),
        }
    }

    /// How long to wait before the next attempt, or `None` to give up. `elapsed` counts from the first attempt.
    pub fn next_wait(
        &mut self,
        server_delay: Option<Duration>,
        elapsed: Duration,
    ) -> Option<Duration> {
        if !self.config.enabled {
            return None;
        }
        let factor = self.config.randomization_factor;
        // Uniform in [1 - factor, 1 + factor].
        let jitter = 1.0 - factor + 2.0 * factor * fastrand::f64();
        let randomized = self.interval.mul_f64(jitter.max(0.0));
        self.interval = self
            .interval
            .mul_f64(self.config.multiplier)
            .min(self.config.max_interval);
        let server_delay = server_delay.unwrap_or_default().min(MAX_SERVER_DELAY);
        let wait = randomized.max(server_delay);
        let limit = self.config.max_elapsed_time;
        if !limit.is_zero() && elapsed.saturating_add(wait) > limit {
            return None;
        }
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RetryConfig {
        RetryConfig {
            enabled: true,
            initial_interval: Duration::from_millis(100),
            randomization_factor: 0.5,
            multiplier: 2.0,
            max_interval: Duration::from_millis(350),
            max_elapsed_time: Duration::from_secs(2),
        }
    }

    #[test]
    fn waits_grow_within_their_jitter_and_stop_at_the_cap() {
        let mut backoff = Backoff::new(&config());
        let bounds = [(50, 150), (100, 300), (175, 525), (175, 525)];
        for (low, high) in bounds {
            let wait = backoff
                .next_wait(None, Duration::ZERO)
                .expect("within time");
            assert!(
                wait >= Duration::from_millis(low) && wait <= Duration::from_millis(high),
                "{wait:?} not in [{low}, {high}] ms"
            );
        }
    }

    #[test]
    fn a_server_delay_raises_the_wait() {
        let mut backoff = Backoff::new(&config());
        assert_eq!(
            backoff.next_wait(Some(Duration::from_millis(1500)), Duration::ZERO),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn a_server_delay_is_capped_and_never_overflows() {
        let huge = Some(Duration::from_secs(u64::MAX));
        let mut unlimited = Backoff::new(&RetryConfig {
            max_elapsed_time: Duration::ZERO,
            ..config()
        });
        assert_eq!(
            unlimited.next_wait(huge, Duration::from_secs(5)),
            Some(MAX_SERVER_DELAY)
        );
        let mut limited = Backoff::new(&config());
        assert_eq!(limited.next_wait(huge, Duration::MAX), None);
    }

    #[test]
    fn gives_up_past_max_elapsed_time_unless_unlimited() {
        let mut backoff = Backoff::new(&config());
        assert_eq!(backoff.next_wait(None, Duration::from_millis(1990)), None);
        let mut unlimited = Backoff::new(&RetryConfig {
            max_elapsed_time: Duration::ZERO,
            ..config()
        });
        assert!(
            unlimited
                .next_wait(None, Duration::from_secs(86_400))
                .is_some()
        );
        let mut disabled = Backoff::new(&RetryConfig {
            enabled: false,
            ..config()
        });
        assert_eq!(disabled.next_wait(None, Duration::ZERO), None);
    }
}
