//! The `sampling` processor: consistent probability sampling of traces (head or tail) and logs; metrics pass
//! through.
//!
//! Lifecycle: built per pipeline; in tail mode it holds spans, decided at `next_deadline` by `on_tick` and
//! all at once by `flush`; dropped with spans held (a crash path), their clients are told to retry.
//! Guarantees: sampled-out items are removed from the request and the rest goes on with the request's
//! acknowledgements, so a client hears success only once its kept data is durable; a request with nothing
//! left resolves `Delivered` (accepted and discarded on purpose). Dropped items are counted in
//! `otlake_processor_dropped_items_total{reason="sampled_out"}`.

use otlake_core::telemetry::PROCESSOR_DROPPED;
use otlake_core::{Batch, ComponentId, ExportRequest, Outcome, Processor, Signal};
use tokio::time::Instant;

use crate::config::{Mode, SamplingConfig};
use crate::decide::Settings;
use crate::head::sample_request;
use crate::logs::LogSampler;
use crate::rules::Rules;
use crate::tail::TailSampler;
use crate::threshold::Threshold;

pub struct SamplingProcessor {
    rules: Rules,
    settings: Settings,
    logs: LogSampler,
    tail: Option<TailSampler>,
    dropped: metrics::Counter,
}

impl SamplingProcessor {
    /// `config` must have passed `validate`.
    /// `default_mode` applies where the config names no `mode` (it differs between the two factories).
    pub fn new(
        id: &ComponentId,
        config: &SamplingConfig,
        default_mode: Mode,
        signal: Signal,
    ) -> Self {
        let precision = config.sampling_precision;
        let log_percentage = config
            .logs
            .sampling_percentage
            .unwrap_or(config.sampling_percentage);
        let tail = (config.tail.enabled && signal == Signal::Traces).then(|| {
            TailSampler::new(
                config.tail.decision_wait,
                config.tail.max_traces,
                usize::try_from(config.tail.max_bytes).unwrap_or(usize::MAX),
            )
        });
        SamplingProcessor {
            rules: Rules::new(&config.rules, config.sampling_percentage, precision),
            settings: Settings {
                mode: config.mode.unwrap_or(default_mode),
                fail_closed: config.fail_closed,
            },
            logs: LogSampler::new(
                config.logs.min_severity.number().unwrap_or(i32::MAX),
                Threshold::from_percentage(log_percentage, precision),
            ),
            tail,
            dropped: metrics::counter!(PROCESSOR_DROPPED, "processor" => id.to_string(),
                "signal" => signal.as_str(), "reason" => "sampled_out"),
        }
    }

    /// Passes the batch on unless sampling emptied it; then it resolves, delivered by being dropped on purpose.
    fn pass_on(batch: Batch, dropped: u64, out: &mut Vec<Batch>) {
        if dropped > 0 && batch.item_count() == 0 {
            batch.acks.resolve(Outcome::Delivered);
        } else {
            out.push(batch);
        }
    }

    fn sample_logs(&mut self, mut batch: Batch, out: &mut Vec<Batch>) {
        if self.logs.keeps_everything() {
            out.push(batch);
            return;
        }
        let needs_change = match batch.payload.request() {
            Ok(ExportRequest::Logs(request)) => self.logs.drops_any(request),
            Ok(_) => false,
            Err(e) => {
                batch.acks.resolve(Outcome::rejected(e.to_string()));
                return;
            }
        };
        if !needs_change {
            out.push(batch);
            return;
        }
        let dropped = match batch.payload_mut().request_mut() {
            Ok(ExportRequest::Logs(request)) => self.logs.sample(request),
            _ => 0,
        };
        self.dropped.increment(dropped);
        Self::pass_on(batch, dropped, out);
    }

    fn sample_traces(&mut self, mut batch: Batch, out: &mut Vec<Batch>) {
        if let Some(tail) = &mut self.tail {
            let dropped = tail.ingest(batch, Instant::now(), &self.rules, self.settings, out);
            self.dropped.increment(dropped);
            return;
        }
        if batch.item_count() == 0 {
            out.push(batch);
            return;
        }
        let dropped = match batch.payload_mut().request_mut() {
            Ok(ExportRequest::Traces(request)) => {
                sample_request(request, &self.rules, self.settings)
            }
            Ok(_) => 0,
            Err(e) => {
                batch.acks.resolve(Outcome::rejected(e.to_string()));
                return;
            }
        };
        self.dropped.increment(dropped);
        Self::pass_on(batch, dropped, out);
    }
}

impl Processor for SamplingProcessor {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) {
        match batch.signal() {
            Signal::Traces => self.sample_traces(batch, out),
            Signal::Logs => self.sample_logs(batch, out),
            Signal::Metrics => out.push(batch),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.tail.as_ref().and_then(TailSampler::next_deadline)
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Batch>) {
        if let Some(tail) = &mut self.tail {
            let dropped = tail.on_tick(now, &self.rules, self.settings, out);
            self.dropped.increment(dropped);
        }
    }

    fn flush(&mut self, out: &mut Vec<Batch>) {
        if let Some(tail) = &mut self.tail {
            let dropped = tail.flush(&self.rules, self.settings, out);
            self.dropped.increment(dropped);
        }
    }
}
