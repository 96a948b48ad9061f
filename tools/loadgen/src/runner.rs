//! The run: build the templates, then `--concurrency` senders take request numbers from one shared counter
//! until the count or the duration is reached, each rendering, sending (with retries) and recording.
//!
//! Pacing: with `--rate`, request n is due at `start + n * interval` (one schedule for all senders, so the
//! offered rate does not depend on the concurrency as long as answers keep up); without it, each sender sends
//! again as soon as its previous request is answered. Every sender keeps its own counters and latency
//! histogram; they are merged once at the end, so the hot path takes no lock (the ack log's is per request).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::LoadgenError;
use crate::ack_log::AckLog;
use crate::args::{LoadgenArgs, Signal};
use crate::client::{Answer, Client};
use crate::genai;
use crate::ids::IdSource;
use crate::report::Report;
use crate::tally::Tally;
use crate::template::{Template, TemplateBuilder};

/// First retry delay; doubles per attempt, capped at [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The templates of one signal.
struct SignalTemplates {
    signal: Signal,
    full: Vec<Template>,
}

/// Everything the senders share.
struct Shared {
    signals: Vec<SignalTemplates>,
    /// The smaller last request of a `--count` run whose count is not a multiple of the batch.
    tail: Option<Template>,
    total_requests: Option<u64>,
    interval: Option<Duration>,
    limit: Option<Duration>,
    retries: u32,
    client: Client,
    ids: IdSource,
    issued: AtomicU64,
    start: Instant,
    ack_log: Option<AckLog>,
}

/// Builds `n` templates of `items` items for `signal`; a seed whose sentinels collide is skipped.
fn build_templates(
    signal: Signal,
    items: usize,
    n: usize,
    seed: u64,
    error_rate: f64,
) -> Result<Vec<Template>, LoadgenError> {
    let mut out = Vec::with_capacity(n);
    let mut attempt = 0u64;
    while out.len() < n {
        let s = crate::ids::mix(seed ^ ((signal as u64) << 56) ^ attempt);
        attempt += 1;
        let b = TemplateBuilder::new(s);
        let built = match signal {
            Signal::Traces => genai::traces(b, items, error_rate),
            Signal::Logs => genai::logs(b, items, error_rate),
            Signal::Metrics => genai::metrics(b, items),
        };
        match built {
            Ok(t) => out.push(t),
            Err(e) if attempt > 4 * n as u64 + 4 => return Err(LoadgenError::Template(e)),
            Err(_) => {}
        }
    }
    Ok(out)
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Runs the load described by `args` (already validated) and reports what happened.
pub async fn run(args: &LoadgenArgs) -> Result<Report, LoadgenError> {
    let mut signals: Vec<Signal> = Vec::new();
    for s in &args.signal {
        if !signals.contains(s) {
            signals.push(*s);
        }
    }
    // Request n carries args.signal[n % len] (duplicates in --signal weight a signal).
    let order: Vec<usize> = args
        .signal
        .iter()
        .map(|s| signals.iter().position(|x| x == s).unwrap_or(0))
        .collect();
    let mut templates = Vec::new();
    for (k, signal) in signals.iter().enumerate() {
        let seed = args.seed.wrapping_add(k as u64);
        templates.push(SignalTemplates {
            signal: *signal,
            full: build_templates(*signal, args.batch, args.templates, seed, args.error_rate)?,
        });
    }
    let batch = args.batch as u64;
    let (total_requests, tail) = match args.count {
        None => (None, None),
        Some(count) => {
            let total = count.div_ceil(batch);
            let rest = count - (total - 1) * batch;
            let tail = if rest < batch {
                let signal = signals[order[((total - 1) % order.len() as u64) as usize]];
                let mut t = build_templates(
                    signal,
                    rest as usize,
                    1,
                    args.seed ^ 0x7a11,
                    args.error_rate,
                )?;
                t.pop()
            } else {
                None
            };
            (Some(total), tail)
        }
    };
    let ack_log = match &args.ack_log {
        Some(path) => Some(AckLog::create(path).map_err(|source| LoadgenError::AckLog {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    let interval =
        (args.rate > 0).then(|| Duration::from_secs_f64(batch as f64 / args.rate as f64));
    let template_bytes: Vec<(Signal, usize)> = templates
        .iter()
        .map(|t| (t.signal, t.full.first().map_or(0, Template::encoded_len)))
        .collect();
    let shared = Arc::new(Shared {
        signals: templates,
        tail,
        total_requests,
        interval,
        limit: args.run_limit(),
        retries: args.retries,
        client: Client::new(args)?,
        ids: IdSource::new(fastrand::u64(..)),
        issued: AtomicU64::new(0),
        start: Instant::now(),
        ack_log,
    });
    let order = Arc::new(order);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (shared, order) = (Arc::clone(&shared), Arc::clone(&order));
        tasks.spawn(async move { sender(&shared, &order).await });
    }
    let mut total = Tally::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(tally) => total.merge(tally),
            Err(e) => return Err(LoadgenError::Sender(e.to_string())),
        }
    }
    let elapsed = shared.start.elapsed();
    if let Some(log) = &shared.ack_log {
        log.finish().map_err(|source| LoadgenError::AckLog {
            path: log.path().to_owned(),
            source,
        })?;
    }
    Ok(Report::new(args, elapsed, total, &template_bytes))
}

async fn sender(shared: &Shared, order: &[usize]) -> Tally {
    let mut tally = Tally::default();
    let mut own_ids: Vec<u64> = Vec::with_capacity(1024);
    let mut scratch: Vec<u8> = Vec::new();
    loop {
        let n = shared.issued.fetch_add(1, Ordering::Relaxed);
        if shared.total_requests.is_some_and(|total| n >= total) {
            break;
        }
        if let Some(interval) = shared.interval {
            let due = shared.start + interval.mul_f64(n as f64);
            if shared
                .limit
                .is_some_and(|limit| due >= shared.start + limit)
            {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
        }
        if shared
            .limit
            .is_some_and(|limit| shared.start.elapsed() >= limit)
        {
            break;
        }
        let which = &shared.signals[order[(n % order.len() as u64) as usize]];
        let last = shared.total_requests.is_some_and(|total| n + 1 == total);
        let template = match (&shared.tail, last) {
            (Some(tail), true) => tail,
            _ => &which.full[((n / order.len() as u64) % which.full.len() as u64) as usize],
        };
        own_ids.clear();
        let ids = shared.ids.reserve(template.id_count());
        let body = template.render(&ids, now_unix_nano(), &mut own_ids);
        tally.requests += 1;
        tally.items += template.items;
        tally.bytes += body.len() as u64;
        send_with_retries(
            shared,
            which.signal,
            template.items,
            body,
            &own_ids,
            &mut tally,
            &mut scratch,
        )
        .await;
    }
    tally
}

async fn send_with_retries(
    shared: &Shared,
    signal: Signal,
    items: u64,
    body: bytes::Bytes,
    own_ids: &[u64],
    tally: &mut Tally,
    scratch: &mut Vec<u8>,
) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 0..=shared.retries {
        tally.attempts += 1;
        let t0 = Instant::now();
        let answer = shared.client.send(signal, body.clone()).await;
        let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
        match answer {
            Answer::Accepted { rejected: 0, .. } => {
                tally.latency.record(micros);
                tally.acked_requests += 1;
                tally.acked_items += items;
                if let Some(log) = &shared.ack_log
                    && let Err(e) = log.append(own_ids, scratch)
                {
                    tally.ack_log_error.get_or_insert_with(|| e.to_string());
                }
                return;
            }
            Answer::Accepted { rejected, message } => {
                tally.latency.record(micros);
                let rejected = rejected.min(items);
                tally.partial_requests += 1;
                tally.acked_items += items - rejected;
                tally.refused_items += rejected;
                tally.error(format!("partial success: {message}"));
                return;
            }
            Answer::Refused { reason } => {
                tally.refused_requests += 1;
                tally.refused_items += items;
                tally.error(reason);
                return;
            }
            Answer::Retryable {
                reason,
                retry_after,
            } => {
                tally.error(reason);
                if attempt == shared.retries {
                    break;
                }
                tally.retries += 1;
                tokio::time::sleep(retry_after.unwrap_or(backoff).min(MAX_BACKOFF)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tally.failed_requests += 1;
    tally.failed_items += items;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Protocol;
    use axum::Router;
    use axum::body::Bytes as Body;
    use axum::routing::post;
    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    use std::sync::Mutex;

    /// A real OTLP/HTTP server on 127.0.0.1 that takes traces and refuses 10 records of every logs request
    /// (partial success), remembering the span ids it accepted.
    async fn server(seen: Arc<Mutex<Vec<String>>>) -> String {
        let traces = post(move |body: Body| {
            let seen = Arc::clone(&seen);
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("decodes");
                let mut seen = seen.lock().expect("lock");
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            seen.push(s.span_id.iter().map(|b| format!("{b:02x}")).collect());
                        }
                    }
                }
                Vec::new()
            }
        });
        let logs = post(|body: Body| async move {
            ExportLogsServiceRequest::decode(body).expect("decodes");
            ExportLogsServiceResponse {
                partial_success: Some(ExportLogsPartialSuccess {
                    rejected_log_records: 10,
                    error_message: "10 records too large".into(),
                }),
            }
            .encode_to_vec()
        });
        let app = Router::new()
            .route("/v1/traces", traces)
            .route("/v1/logs", logs);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn partially_refused_requests_are_counted_and_kept_out_of_the_ack_log() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let endpoint = server(Arc::clone(&seen)).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let acks = dir.path().join("acks.txt");
        let args = LoadgenArgs {
            endpoint: Some(endpoint),
            protocol: Protocol::Http,
            signal: vec![Signal::Traces, Signal::Logs],
            count: Some(450),
            batch: 100,
            ack_log: Some(acks.clone()),
            ..Default::default()
        };
        let report = run(&args).await.expect("runs");
        // 5 requests: traces 100, logs 100, traces 100, logs 100, traces 50 (the remainder).
        assert_eq!((report.requests, report.items), (5, 450));
        assert_eq!(report.partial_requests, 2);
        assert_eq!(report.refused_items, 20);
        assert_eq!(report.acked_items, 430);
        assert!(!report.all_acknowledged());
        assert!(
            report
                .errors
                .iter()
                .any(|(e, n)| e.contains("too large") && *n == 2)
        );

        let logged: Vec<String> = std::fs::read_to_string(&acks)
            .expect("ack log")
            .lines()
            .map(str::to_owned)
            .collect();
        let mut received = seen.lock().expect("lock").clone();
        let mut logged_sorted = logged.clone();
        received.sort();
        logged_sorted.sort();
        assert_eq!(logged.len(), 250, "only the fully accepted traces requests");
        assert_eq!(
            logged_sorted, received,
            "the ack log holds exactly the spans the server took"
        );
    }
}
