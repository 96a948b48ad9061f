//! `otlake loadgen`: a load generator for any OTLP endpoint (otlake or another collector).
//!
//! It sends GenAI-style telemetry ([`genai`]: agent traces with model calls, tool calls and retrievals, serving
//! logs, GenAI client metrics) over OTLP/gRPC or OTLP/HTTP protobuf, at a fixed rate or as fast as the
//! endpoint answers, bounded by an item count or a duration, and reports what was acknowledged, refused,
//! retried and given up on, with latency percentiles. With `--ack-log` it records the id of every acknowledged
//! span and log record, one hex id per line, for durability tests.
//!
//! Design: requests are pre-encoded [`template`]s whose ids and timestamps are patched in place, so sending a
//! request costs a copy and a few hundred small writes, not an encode; the gRPC client sends those bytes
//! through a pass-through codec. Lifecycle: [`run_cli`] validates the arguments, starts its own Tokio runtime,
//! runs [`run`] and prints the [`Report`]; exit code 0 when every item was acknowledged, 2 when some were
//! refused or failed, 1 when the run could not start.

pub mod ack_log;
pub mod args;
mod client;
pub mod genai;
pub mod histogram;
pub mod ids;
pub mod report;
mod runner;
mod tally;
pub mod template;

use std::path::PathBuf;
use std::process::ExitCode;

pub use args::LoadgenArgs;
pub use report::Report;
pub use runner::run;

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("invalid arguments: {}", .0.join("; "))]
    InvalidArgs(Vec<String>),
    #[error("endpoint {url}: {reason}")]
    Endpoint { url: String, reason: String },
    #[error("header {0}: not a valid header name and value")]
    Header(String),
    #[error("cannot build a request template: {0}")]
    Template(#[from] template::TemplateError),
    #[error("ack log {}: {source}", path.display())]
    AckLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("a sender task failed: {0}")]
    Sender(String),
}

/// Runs `otlake loadgen` with parsed arguments: prints the report to stdout, problems to stderr.
pub fn run_cli(args: LoadgenArgs) -> ExitCode {
    match run_blocking(&args) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => eprintln!("otlake loadgen: cannot print the report as JSON: {e}"),
                }
            } else {
                print!("{report}");
            }
            if report.all_acknowledged() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("otlake loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Validates `args`, starts a runtime with `--threads` threads and runs the load to its end.
pub fn run_blocking(args: &LoadgenArgs) -> Result<Report, LoadgenError> {
    let problems = args.validate();
    if !problems.is_empty() {
        return Err(LoadgenError::InvalidArgs(problems));
    }
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .map_err(LoadgenError::Runtime)?;
    runtime.block_on(run(args))
}
