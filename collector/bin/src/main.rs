//! `otlake`: the daemon's command line. Loads a config, validates it against the components linked here, and
//! runs it until SIGTERM or SIGINT. The component list below is the registry: adding a plugin is one line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use otlake_service::{Config, LoadError, Registry};
use tracing_subscriber::EnvFilter;

/// The default configuration, shipped in the binary: OTLP in, local Delta tables under ./data out.
const EMBEDDED_DEFAULT: &str = include_str!("../../../configs/sidecar.yaml");
const EMBEDDED_NAME: &str = "configs/sidecar.yaml (embedded)";

#[derive(Parser)]
#[command(
    name = "otlake",
    version,
    about = "Receives OpenTelemetry over OTLP and lands it in Delta Lake tables."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the daemon until SIGTERM or SIGINT.
    Run {
        /// The pipeline YAML; without it, the embedded configs/sidecar.yaml.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Checks a config file and prints every problem with its YAML path and line.
    Validate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Lists the components this build links: type, signals, description.
    Components,
}

fn registry() -> Registry {
    Registry::new()
        .with_receiver(otlake_receiver_otlp::OtlpReceiverFactory)
        .with_processor(otlake_processor_batch::BatchProcessorFactory)
        .with_processor(otlake_processor_size_limit::SizeLimitProcessorFactory)
        .with_exporter(otlake_exporter_debug::DebugExporterFactory)
        .with_exporter(otlake_exporter_file::FileExporterFactory)
        .with_exporter(otlake_exporter_otlp::OtlpFactory)
        .with_exporter(otlake_exporter_otlp::OtlpHttpFactory)
}

fn load(path: Option<&Path>) -> Result<Config, LoadError> {
    match path {
        Some(path) => Config::load(path),
        None => Config::parse(EMBEDDED_DEFAULT),
    }
}

fn config_name(path: Option<&Path>) -> String {
    path.map_or_else(|| EMBEDDED_NAME.to_owned(), |p| p.display().to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Components => {
            for c in registry().components() {
                let signals: Vec<&str> = c.signals.iter().map(|s| s.as_str()).collect();
                println!(
                    "{:<10} {:<22} {:<24} {}",
                    c.kind,
                    c.type_name,
                    signals.join(","),
                    c.description
                );
            }
            ExitCode::SUCCESS
        }
        Command::Validate { config } => {
            let name = config_name(config.as_deref());
            let errors = match load(config.as_deref()) {
                Ok(loaded) => otlake_service::validate(&loaded, &registry())
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                Err(e) => vec![e.to_string()],
            };
            if errors.is_empty() {
                println!("{name}: valid");
                ExitCode::SUCCESS
            } else {
                eprintln!("{name}: {} problem(s)", errors.len());
                for e in errors {
                    eprintln!("  {e}");
                }
                ExitCode::FAILURE
            }
        }
        Command::Run { config } => match run(config.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("otlake: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let name = config_name(path);
    let config = load(path).with_context(|| format!("cannot load {name}"))?;
    init_logging(
        &config.service.telemetry.logs.level,
        &config.service.telemetry.logs.encoding,
    );
    tracing::info!(config = %name, version = env!("CARGO_PKG_VERSION"), "Starting otlake.");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("otlake")
        .build()
        .context("cannot start the async runtime")?;
    runtime
        .block_on(otlake_service::run(config, &registry(), shutdown_signal()))
        .map_err(|e| anyhow::anyhow!(e))
        .with_context(|| name.clone())
}

fn init_logging(level: &str, encoding: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if encoding == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(e) => {
                tracing::error!(error = %e, "Cannot watch SIGTERM; only SIGINT will stop otlake.");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
