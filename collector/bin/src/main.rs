//! `otlake`: the daemon's command line. Loads a config, validates it against the components linked here, and
//! runs it until SIGTERM or SIGINT, or, for `otlake run -- CMD`, until CMD exits (and exits with its code); SIGHUP
//! (and with `--watch` a change of the file) reloads it (`reload.rs`). The component list below is the registry:
//! adding a plugin is one line.

mod allocator;
mod command;
#[cfg(target_os = "linux")]
mod open_files;
mod reload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use otlake_service::{Config, LoadError, Registry, Stopped};
use tracing_subscriber::EnvFilter;

/// The default configuration, shipped in the binary: OTLP in, local Delta tables under ./data out.
const EMBEDDED_DEFAULT: &str = include_str!("../../../configs/sidecar.yaml");
const EMBEDDED_NAME: &str = "configs/sidecar.yaml (embedded)";
/// The default for `otlake run -- CMD`: CMD's output into the local Delta table ./data/otel_logs.
const EMBEDDED_COMMAND_DEFAULT: &str = include_str!("../../../configs/command.yaml");
const EMBEDDED_COMMAND_NAME: &str = "configs/command.yaml (embedded)";

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
    /// Runs the daemon until SIGTERM or SIGINT (SIGHUP applies an edited config); with `-- CMD ARGS...`, runs
    /// CMD and captures its output as logs until it exits, then exits with its exit code.
    Run {
        /// The pipeline YAML; without it, the embedded configs/sidecar.yaml (configs/command.yaml with a CMD).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Once ready (receivers bound, write-ahead logs open), write this JSON file:
        /// `{"pid": N, "addresses": {"receiver/otlp/grpc": "127.0.0.1:4317", "telemetry/health": ...}}`,
        /// with port 0 resolved. It appears whole (written aside, then renamed).
        #[arg(long)]
        ready_file: Option<PathBuf>,
        /// Reload the configuration when the file changes (as `service.watch_config: true`); SIGHUP reloads
        /// it in any case. Only what changed is restarted; an invalid file changes nothing.
        #[arg(long)]
        watch: bool,
        /// The command for the config's `process` receiver: its stdout/stderr become logs, SIGTERM and SIGINT
        /// are forwarded to it, and otlake exits with its exit code once its lines are delivered.
        #[arg(last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Checks a config file and prints every problem with its YAML path and line.
    Validate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Lists the components this build links: type, signals, description.
    Components,
    /// Sends GenAI-style OTLP load to an endpoint and reports what was acknowledged.
    Loadgen(otlake_loadgen::LoadgenArgs),
    /// Maintains a Delta table; safe while the daemon writes to it.
    #[cfg(feature = "delta")]
    Table {
        #[command(subcommand)]
        action: TableAction,
    },
}

#[cfg(feature = "delta")]
#[derive(clap::Args)]
struct TableArgs {
    /// The base location, as in the delta exporter's `location` (a path, s3://, az://, abfss://, gs://).
    #[arg(long, default_value = "./data")]
    location: String,
    /// The table's name under the location, e.g. `otel_spans`.
    #[arg(long)]
    table: String,
    /// Object store options, `KEY=VALUE`, repeatable (as the exporter's `storage_options`).
    #[arg(long = "storage-option", value_parser = key_value)]
    storage_options: Vec<(String, String)>,
    /// Only report what would be done.
    #[arg(long)]
    dry_run: bool,
}

#[cfg(feature = "delta")]
#[derive(Subcommand)]
enum TableAction {
    /// Rewrites small files into large ones (one commit that adds the new files and removes the old).
    Compact {
        #[command(flatten)]
        table: TableArgs,
        /// Files smaller than this many bytes are rewritten into files of about this size.
        #[arg(long)]
        target_file_size: Option<u64>,
        /// Do nothing unless at least this many small files exist.
        #[arg(long)]
        min_files: Option<usize>,
    },
    /// Deletes files no table version within the retention period references.
    Vacuum {
        #[command(flatten)]
        table: TableArgs,
        /// How long removed files are kept for readers of older versions (e.g. `168h`; Delta's default: 7 days).
        #[arg(long, value_parser = humantime::parse_duration)]
        retention: Option<std::time::Duration>,
    },
}

#[cfg(feature = "delta")]
fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}`: expected KEY=VALUE"))
}

/// The components this build links (`otlake components`); the heavy exporters are cargo features.
fn registry() -> Registry {
    let registry = Registry::new()
        .with_receiver(otlake_receiver_otlp::OtlpReceiverFactory)
        .with_receiver(otlake_receiver_prometheus::PrometheusReceiverFactory)
        .with_receiver(otlake_receiver_filelog::FilelogReceiverFactory)
        .with_receiver(otlake_receiver_filelog::ProcessReceiverFactory)
        .with_processor(otlake_processor_batch::BatchProcessorFactory)
        .with_processor(otlake_processor_size_limit::SizeLimitProcessorFactory)
        .with_processor(otlake_processor_sampling::SamplingProcessorFactory)
        .with_processor(otlake_processor_sampling::ProbabilisticSamplerFactory)
        .with_processor(otlake_processor_attributes::AttributesProcessorFactory)
        .with_processor(otlake_processor_attributes::ResourceProcessorFactory)
        .with_processor(otlake_processor_filter::FilterProcessorFactory)
        .with_processor(otlake_processor_redaction::RedactionProcessorFactory)
        .with_processor(otlake_processor_genai::GenaiProcessorFactory)
        .with_processor(otlake_processor_resourcedetection::ResourceDetectionProcessorFactory)
        .with_exporter(otlake_exporter_debug::DebugExporterFactory)
        .with_exporter(otlake_exporter_file::FileExporterFactory);
    #[cfg(feature = "delta")]
    let registry = registry.with_exporter(otlake_exporter_delta::DeltaExporterFactory);
    #[cfg(feature = "otlp")]
    let registry = registry
        .with_exporter(otlake_exporter_otlp::OtlpFactory)
        .with_exporter(otlake_exporter_otlp::OtlpHttpFactory);
    registry
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
                    .err()
                    .unwrap_or_default()
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
        #[cfg(feature = "delta")]
        Command::Table { action } => match table(action) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("otlake table: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Loadgen(args) => otlake_loadgen::run_cli(args),
        Command::Run {
            config,
            ready_file,
            watch,
            command,
        } => match run(config.as_deref(), ready_file, watch, &command) {
            Ok(Stopped::Requested) => ExitCode::SUCCESS,
            Ok(Stopped::ByReceiver { exit_code }) => ExitCode::from(exit_code),
            Err(e) => {
                eprintln!("otlake: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(
    path: Option<&Path>,
    ready_file: Option<PathBuf>,
    watch: bool,
    command: &[String],
) -> anyhow::Result<Stopped> {
    let (name, config) = match (path, command.is_empty()) {
        (None, false) => (
            EMBEDDED_COMMAND_NAME.to_owned(),
            Config::parse(EMBEDDED_COMMAND_DEFAULT),
        ),
        _ => (config_name(path), load(path)),
    };
    let mut config = config.with_context(|| format!("cannot load {name}"))?;
    if !command.is_empty() {
        command::fill(&mut config, &name, command)?;
    }
    // A daemon that runs a command ends when the command does: the `process` receiver forwards SIGTERM and
    // SIGINT to it, so they must not also stop the daemon under it.
    let runs_a_process = command::runs_a_process(&config);
    let watched = path
        .filter(|_| watch || config.service.watch_config)
        .map(Path::to_path_buf);
    init_logging(
        &config.service.telemetry.logs.level,
        &config.service.telemetry.logs.encoding,
    );
    tracing::info!(config = %name, version = env!("CARGO_PKG_VERSION"), "Starting otlake.");
    allocator::disable_transparent_huge_pages();
    #[cfg(target_os = "linux")]
    match open_files::raise() {
        Ok(raised) if raised.from != raised.to => {
            tracing::info!(from = ?raised.from, to = ?raised.to, "Raised the open-file limit.")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "Cannot raise the open-file limit; connections may run out of descriptors.")
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("otlake")
        .build()
        .context("cannot start the async runtime")?;
    runtime.spawn(allocator::give_back_freed_memory());
    let shutdown = async move {
        if runs_a_process {
            std::future::pending::<()>().await;
        }
        shutdown_signal().await;
    };
    let load = reload_loader(path.map(Path::to_path_buf), name.clone(), command.to_vec());
    runtime
        .block_on(async move {
            let reloads = otlake_service::Reloads {
                load,
                requests: reload::requests(watched),
            };
            otlake_service::run_reloading(
                config,
                &registry(),
                shutdown,
                |ready| {
                    if let Some(path) = &ready_file
                        && let Err(e) = write_ready_file(path, ready)
                    {
                        tracing::error!(path = %path.display(), error = %e, "Cannot write the ready file.");
                    }
                },
                Some(reloads),
            )
            .await
        })
        .map_err(|e| anyhow::anyhow!(e))
        .with_context(|| name.clone())
}

/// Reads the configuration again for a reload, as `run` read it at start (the command of `otlake run -- CMD`
/// filled in again).
fn reload_loader(
    path: Option<PathBuf>,
    name: String,
    command: Vec<String>,
) -> Box<dyn FnMut() -> Result<Config, LoadError> + Send> {
    Box::new(move || {
        let mut config = match (&path, command.is_empty()) {
            (None, false) => Config::parse(EMBEDDED_COMMAND_DEFAULT)?,
            _ => load(path.as_deref())?,
        };
        if !command.is_empty() {
            command::fill(&mut config, &name, &command).map_err(|e| {
                LoadError::Invalid(vec![otlake_service::ValidationError {
                    path: String::new(),
                    line: None,
                    message: e.to_string(),
                }])
            })?;
        }
        Ok(config)
    })
}

/// Writes `--ready-file` beside itself first and renames it, so that a reader never sees half of it.
fn write_ready_file(path: &Path, ready: &otlake_service::Ready) -> std::io::Result<()> {
    let addresses: serde_json::Map<String, serde_json::Value> = ready
        .addresses
        .iter()
        .map(|(name, address)| (name.clone(), address.to_string().into()))
        .collect();
    let text = serde_json::json!({ "pid": std::process::id(), "addresses": addresses });
    let mut aside = path.as_os_str().to_owned();
    aside.push(".partial");
    std::fs::write(&aside, text.to_string())?;
    std::fs::rename(&aside, path)
}

#[cfg(feature = "delta")]
fn table(action: TableAction) -> anyhow::Result<String> {
    use otlake_exporter_delta::{CompactOptions, VacuumOptions, compact, vacuum};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match action {
            TableAction::Compact { table, target_file_size, min_files } => {
                let mut options = CompactOptions { dry_run: table.dry_run, ..Default::default() };
                if let Some(size) = target_file_size {
                    options.target_file_size = size;
                }
                if let Some(n) = min_files {
                    options.min_files = n;
                }
                let storage = table.storage_options.into_iter().collect();
                let r = compact(&table.location, &table.table, &storage, &options)
                    .await
                    .with_context(|| format!("compacting {}", table.table))?;
                Ok(format!(
                    "{}: {}{} files ({} bytes) rewritten into {} files ({} bytes), {} rows, read version {}, committed version {}",
                    r.table,
                    if r.dry_run { "dry run: " } else { "" },
                    r.files_removed,
                    r.bytes_removed,
                    r.files_added,
                    r.bytes_added,
                    r.rows_rewritten,
                    r.read_version,
                    r.committed_version.map_or_else(|| "none".to_owned(), |v| v.to_string()),
                ))
            }
            TableAction::Vacuum { table, retention } => {
                let options = VacuumOptions { retention, dry_run: table.dry_run, ..Default::default() };
                let storage = table.storage_options.into_iter().collect();
                let r = vacuum(&table.location, &table.table, &storage, &options)
                    .await
                    .with_context(|| format!("vacuuming {}", table.table))?;
                Ok(format!(
                    "{}: {}{} files deleted",
                    r.table,
                    if r.dry_run { "dry run: " } else { "" },
                    r.files_deleted.len()
                ))
            }
        }
    })
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
