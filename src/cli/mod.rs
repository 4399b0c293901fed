//! The command line.
//!
//! `serve` runs the daemon. `token`, `projects` and `repos` are admin commands that work on the data dir
//! directly, daemon running or not, as do `backup`, `restore` and `check` (`ops`, with
//! `completions` and `man`). Everything else is a client of the daemon's HTTP API and
//! mirrors sentry-cli's verbs where they overlap, with human tables by default and `--json`
//! for scripts.

mod admin;
mod artifacts;
mod blobs;
mod client;
mod commits;
mod deploys;
mod github;
mod health;
mod hooks;
mod import;
mod issues;
pub mod logs;
mod migrate;
mod notifications;
mod ops;
mod output;
mod releases;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
pub use client::{Client, ClientOptions};

/// Everything that can make a command fail; printed as one line by `main`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config file is missing or invalid.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The daemon answered with an error.
    #[error("{detail} (HTTP {status})")]
    Api { status: u16, detail: String },
    /// The daemon could not be reached.
    #[error(
        "cannot reach shiplog at {url}: {reason}. Is the daemon running (`shiplog serve`)? Set SHIPLOG_URL if it listens elsewhere"
    )]
    Connect { url: String, reason: String },
    /// Something the user has to supply or fix.
    #[error("{0}")]
    Usage(String),
    /// A domain rule refused the operation.
    #[error(transparent)]
    Core(#[from] crate::core::CoreError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A backup or restore was refused or failed.
    #[error(transparent)]
    Backup(#[from] crate::store::backup::BackupError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The daemon itself failed.
    #[error("{0:#}")]
    Daemon(anyhow::Error),
}

impl CliError {
    /// `true` for a write to a closed pipe, which `main` treats as success.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "shiplog",
    version,
    about = "Self-hosted release tracking: Sentry's Releases, fed by git hooks, GitHub and CI"
)]
pub struct Cli {
    /// Config file (YAML). Without one, shiplog runs on its embedded defaults.
    #[arg(long, global = true, env = "SHIPLOG_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides the config's `data_dir`).
    #[arg(long, global = true, env = "SHIPLOG_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// How `serve` writes its logs to stderr: `human` lines, or one JSON object a line for log
    /// shippers. Either way, lines written while a request is handled carry its request id.
    #[arg(
        long,
        global = true,
        env = "SHIPLOG_LOG_FORMAT",
        value_enum,
        ignore_case = true,
        default_value_t = LogFormat::Human
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground (stop with Ctrl-C or SIGTERM).
    Serve(ServeArgs),
    /// Create, list and revoke API tokens (works on the data dir directly).
    #[command(subcommand)]
    Token(admin::TokenCommand),
    /// Add and list projects (works on the data dir directly).
    #[command(subcommand)]
    Projects(admin::ProjectCommand),
    /// Manage releases.
    Releases(releases::ReleasesArgs),
    /// Record and list deploys of a release.
    Deploys(deploys::DeploysArgs),
    /// GitHub webhook deliveries and hooks.
    Github(github::GithubArgs),
    /// Install, remove and inspect shiplog's git hooks.
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    /// List, show, resolve and reopen issues.
    Issues(issues::IssuesArgs),
    /// List, add, remove and import repositories (works on the data dir directly).
    #[command(subcommand)]
    Repos(commits::ReposCommand),
    /// Upload, list, download and delete a release's artifacts (source maps).
    Artifacts(artifacts::ArtifactsArgs),
    /// Where artifact bytes live: move them to another backend (works on the data dir directly).
    #[command(subcommand)]
    Blobs(blobs::BlobsCommand),
    /// Recent notification deliveries and failures; send a test message to each target.
    #[command(subcommand)]
    Notifications(notifications::NotificationsCommand),
    /// Copy the store to FILE while the daemon runs (a consistent snapshot).
    Backup(ops::BackupArgs),
    /// Put a backup into an empty data dir.
    Restore(ops::RestoreArgs),
    /// Verify the store: SQLite's integrity, blob references, orphaned chunks.
    Check(ops::CheckArgs),
    /// Copy the store into an empty PostgreSQL database and verify the row counts.
    Migrate(migrate::MigrateArgs),
    /// Print shell completions (bash, zsh or fish).
    Completions(ops::CompletionsArgs),
    /// Print the man page (or write one per command with --out-dir).
    Man(ops::ManArgs),
    /// Print a one-time sign-in link to the web pages and open it in a browser.
    Open(web::OpenArgs),
}

/// The log formats of `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8740 (port 0 picks a free one).
    #[arg(long, env = "SHIPLOG_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
}

/// Loads the config and applies the command-line overrides.
fn load_config(cli: &Cli, listen: Option<String>) -> Result<Config, CliError> {
    let mut config = Config::load(cli.config.as_deref())?;
    config.apply_overrides(listen, cli.data_dir.clone());
    config.validate()?;
    Ok(config)
}

/// Parses the arguments and runs the command.
pub fn main() -> Result<ExitCode, CliError> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve(args) => {
            let config = load_config(&cli, args.listen.clone())?;
            init_logging(cli.log_format);
            let runtime = tokio::runtime::Runtime::new()?;
            runtime
                .block_on(crate::daemon::run(config))
                .map_err(CliError::Daemon)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(cmd) => admin::token(&load_config(&cli, None)?, cmd),
        Command::Projects(cmd) => admin::projects(&load_config(&cli, None)?, cmd),
        Command::Releases(args) => {
            let config = load_config(&cli, None)?;
            run_async(releases::run(&config, args))
        }
        Command::Deploys(args) => {
            let config = load_config(&cli, None)?;
            run_async(deploys::run(&config, args))
        }
        Command::Github(args) => {
            let config = load_config(&cli, None)?;
            run_async(github::run(&config, args))
        }
        Command::Hooks(cmd) => hooks::run(&load_config(&cli, None)?, cmd),
        Command::Issues(args) => {
            let config = load_config(&cli, None)?;
            run_async(issues::run(&config, args))
        }
        Command::Repos(cmd) => commits::repos(&load_config(&cli, None)?, cmd),
        Command::Artifacts(args) => {
            let config = load_config(&cli, None)?;
            run_async(artifacts::run(&config, args))
        }
        Command::Blobs(cmd) => blobs::run(&load_config(&cli, None)?, cmd),
        Command::Notifications(cmd) => notifications::run(&load_config(&cli, None)?, cmd),
        Command::Backup(args) => ops::backup(&load_config(&cli, None)?, args),
        Command::Restore(args) => ops::restore(&load_config(&cli, None)?, args),
        Command::Check(args) => ops::check(&load_config(&cli, None)?, args),
        Command::Migrate(args) => migrate::run(&load_config(&cli, None)?, args),
        Command::Completions(args) => ops::completions(args),
        Command::Man(args) => ops::man(args),
        Command::Open(args) => web::open(&load_config(&cli, None)?, args),
    }
}

fn run_async<F>(fut: F) -> Result<ExitCode, CliError>
where
    F: std::future::Future<Output = Result<ExitCode, CliError>>,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}

/// Logs go to stderr; `RUST_LOG` sets the level (default `info`).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        // Untrusted names (drop files, refs) are escaped so they cannot forge log lines.
        LogFormat::Human => builder
            .with_ansi(ansi)
            .with_writer(logs::EscapedStderr { ansi })
            .try_init(),
        // JSON escapes every string itself. The innermost span's fields (a request's
        // `request_id`, `method`, `route`) go in `span`; the whole list would repeat them for
        // nested spans.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .try_init(),
    };
}
