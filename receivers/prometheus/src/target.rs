//! One target's scrape loop: on its own schedule, scrape, parse, map, hand the result to the pipelines.
//!
//! Schedule: every `scrape_interval`, at a stable offset inside the interval derived from the job and the
//! target URL (as Prometheus spreads targets), so targets of one job do not all fire at once and a restart
//! keeps each target's phase. A scrape that runs late skips the ticks it missed instead of bursting.
//!
//! Each target runs in its own task: a slow or dead target delays only itself. The request and its body are
//! bounded by `scrape_timeout` (parsing, on the bytes in hand, is not: it is CPU, not waiting). The loop then waits for the pipelines' verdict on what it sent, so a
//! slow pipeline slows this target's scrapes instead of piling up requests; shutdown interrupts every wait
//! at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::metrics::v1::ResourceMetrics;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::ScrapeError;
use crate::mapping::{self, SampleCounts, ScrapeReport, SeriesStarts, TargetInfo};
use crate::parse;
use crate::relabel::Relabeler;
use crate::scrape::{Fetched, Scraper};
use crate::sink::Sink;

/// One target of one job, with its state across scrapes.
pub struct Target {
    /// The receiver's id, for the failure counter.
    receiver: String,
    pub info: Arc<TargetInfo>,
    pub scraper: Scraper,
    pub relabel: Arc<Relabeler>,
    pub interval: Duration,
    pub timeout: Duration,
    starts: SeriesStarts,
    /// The last failure logged, so that a target failing the same way is logged once, not every interval.
    last_failure: Option<String>,
}

impl Target {
    pub fn new(
        receiver: String,
        info: TargetInfo,
        scraper: Scraper,
        relabel: Arc<Relabeler>,
        interval: Duration,
        timeout: Duration,
    ) -> Self {
        Target {
            receiver,
            info: Arc::new(info),
            scraper,
            relabel,
            interval,
            timeout,
            starts: SeriesStarts::default(),
            last_failure: None,
        }
    }

    /// Where in each interval this target is scraped: a hash of the job and URL, so it is stable across
    /// restarts and differs between targets.
    pub fn offset(&self) -> Duration {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self
            .info
            .job
            .bytes()
            .chain([0])
            .chain(self.scraper.url().as_str().bytes())
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let interval = self.interval.as_nanos().max(1) as u64;
        Duration::from_nanos(hash % interval)
    }

    /// Scrapes until `shutdown` fires.
    pub async fn run(mut self, sink: Arc<Sink>, shutdown: CancellationToken) {
        let mut next = Instant::now() + first_delay(self.offset(), self.interval, unix_nanos());
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(next) => {}
            }
            let request = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                request = self.scrape() => request,
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = sink.deliver(request, &self.info.job) => {}
            }
            next = next_tick(next, self.interval, Instant::now());
        }
    }

    /// One scrape: its samples (or none, if it failed) and the synthetic series, as one request.
    pub async fn scrape(&mut self) -> ExportMetricsServiceRequest {
        let scrape_ns = unix_nanos();
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.scraper.fetch()).await {
            Ok(Ok(fetched)) => self.parse_and_map(fetched, scrape_ns).await,
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ScrapeError::Timeout(self.timeout)),
        };
        let duration_seconds = started.elapsed().as_secs_f64();
        let (resources, report) = match result {
            Ok((resources, counts)) => {
                if self.last_failure.take().is_some() {
                    info!(job = %self.info.job, target = %self.info.instance, "Target scraped again.");
                }
                (
                    resources,
                    ScrapeReport {
                        up: true,
                        duration_seconds,
                        counts,
                    },
                )
            }
            Err(error) => {
                self.failed(&error);
                (
                    Vec::new(),
                    ScrapeReport {
                        up: false,
                        duration_seconds,
                        counts: Default::default(),
                    },
                )
            }
        };
        let synthetic = mapping::synthetic_metrics(&self.info, &report, scrape_ns);
        mapping::request(&self.info, resources, synthetic)
    }

    /// Parsing and mapping are CPU work on up to `body_size_limit` bytes: they run on the blocking pool, so
    /// that a large exposition never stalls the runtime the other receivers share. The body (and its memory
    /// reservation) is dropped there, once mapped.
    async fn parse_and_map(
        &mut self,
        fetched: Fetched,
        scrape_ns: u64,
    ) -> Result<(Vec<ResourceMetrics>, SampleCounts), ScrapeError> {
        let info = Arc::clone(&self.info);
        let relabel = Arc::clone(&self.relabel);
        let mut starts = std::mem::take(&mut self.starts);
        let work = tokio::task::spawn_blocking(move || {
            let result = parse::parse_bytes(&fetched.body, fetched.format)
                .map_err(ScrapeError::from)
                .and_then(|families| {
                    Ok(mapping::map_scrape(
                        &families,
                        &info,
                        &relabel,
                        &mut starts,
                        scrape_ns,
                    )?)
                });
            (result, starts)
        });
        match work.await {
            Ok((result, starts)) => {
                self.starts = starts;
                result
            }
            // A bug in the parser or the mapping: this scrape fails, start times begin afresh.
            Err(error) => Err(ScrapeError::Internal(error.to_string())),
        }
    }

    fn failed(&mut self, error: &ScrapeError) {
        crate::telemetry::scrape_failed(&self.receiver, &self.info.job, error.reason());
        let text = error.to_string();
        if self.last_failure.as_deref() == Some(text.as_str()) {
            debug!(job = %self.info.job, target = %self.info.instance, error = %text, "Scrape failed again.");
        } else {
            warn!(job = %self.info.job, target = %self.info.instance, url = %self.scraper.url().path(), error = %text, "Scrape failed; up = 0 until it succeeds.");
            self.last_failure = Some(text);
        }
    }
}

/// The tick after `previous`: one interval on, or, when that has passed already, the first tick after `now`
/// on the same phase (missed ticks are skipped, never caught up in a burst).
fn next_tick(previous: Instant, interval: Duration, now: Instant) -> Instant {
    let next = previous + interval;
    if next >= now {
        return next;
    }
    let interval_ns = interval.as_nanos().max(1);
    let missed = now.duration_since(next).as_nanos() / interval_ns + 1;
    let skip = Duration::from_nanos(u64::try_from(missed * interval_ns).unwrap_or(u64::MAX));
    next.checked_add(skip).unwrap_or(now + interval)
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The wait until the first scrape: to the next instant whose wall-clock phase within the interval is
/// `offset`.
fn first_delay(offset: Duration, interval: Duration, now_unix_ns: u64) -> Duration {
    let interval_ns = interval.as_nanos().max(1) as u64;
    let phase = now_unix_ns % interval_ns;
    let offset_ns = offset.as_nanos() as u64 % interval_ns;
    Duration::from_nanos((offset_ns + interval_ns - phase) % interval_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_scrape_skips_the_ticks_it_missed_and_keeps_the_phase() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(next_tick(start, second, start), start + second, "on time");
        // Finished 3.5 s after `start`: the ticks at 1, 2 and 3 s are skipped, the next is at 4 s.
        let late = start + Duration::from_millis(3_500);
        assert_eq!(next_tick(start, second, late), start + 4 * second);
        // Exactly on the next tick: that tick, at once.
        assert_eq!(next_tick(start, second, start + second), start + second);
    }

    #[test]
    fn the_first_scrape_lands_on_the_targets_phase() {
        let interval = Duration::from_secs(15);
        let offset = Duration::from_secs(4);
        // At phase 1 s the scrape is 3 s away; at phase 6 s it is 13 s away (next interval).
        assert_eq!(
            first_delay(offset, interval, 1_000_000_000 + 15_000_000_000 * 7),
            Duration::from_secs(3)
        );
        assert_eq!(
            first_delay(offset, interval, 6_000_000_000),
            Duration::from_secs(13)
        );
        assert_eq!(first_delay(offset, interval, 4_000_000_000), Duration::ZERO);
    }
}
