//! Commands for whoever runs shiplog as a service: `backup`, `restore` and `check` work on the
//! data dir directly (the first and the last beside a running daemon); `completions` and `man`
//! print what the shell and `man` need, generated from the same clap definitions as the parser.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};

use super::{Cli, CliError, output};
use crate::config::Config;
use crate::store::backup;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (a single SQLite file holding the whole store).
    pub file: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `shiplog backup` (or the `backup` schedule).
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Skip reading every chunk to verify its sha1 (the rest is quick).
    #[arg(long)]
    pub quick: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command (shiplog.1, shiplog-releases.1, ...) into DIR instead of
    /// printing shiplog(1).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub fn backup(config: &Config, args: &BackupArgs) -> Result<ExitCode, CliError> {
    let report = backup::backup(&config.data_dir(), &args.file, args.force)?;
    output::line(&format!(
        "backed up {} to {} ({} bytes, schema {})",
        config.data_dir().display(),
        report.path.display(),
        report.bytes,
        report.schema_version
    ))?;
    Ok(ExitCode::SUCCESS)
}

pub fn restore(config: &Config, args: &RestoreArgs) -> Result<ExitCode, CliError> {
    let data_dir = config.data_dir();
    let version = backup::restore(&args.file, &data_dir)?;
    output::line(&format!(
        "restored {} (schema {version}) into {}; start it with `shiplog serve`",
        args.file.display(),
        data_dir.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Exits 1 when the store has problems (warnings alone still pass).
pub fn check(config: &Config, args: &CheckArgs) -> Result<ExitCode, CliError> {
    let report = backup::check(&config.data_dir(), !args.quick)?;
    if args.json {
        output::json(&serde_json::to_value(&report).unwrap_or_default())?;
    } else {
        for problem in &report.problems {
            output::line(&format!("problem: {problem}"))?;
        }
        for warning in &report.warnings {
            output::line(&format!("warning: {warning}"))?;
        }
        let hashed = if args.quick {
            "chunks not hashed (--quick)".to_string()
        } else {
            format!("{} chunks hashed", report.chunks_hashed)
        };
        output::line(&match report.problems.len() {
            0 => format!("ok: {} is sound ({hashed})", config.data_dir().display()),
            n => format!(
                "{n} problems in {}; restore the latest good backup (`shiplog restore FILE` into an empty data dir)",
                config.data_dir().display()
            ),
        })?;
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn completions(args: &CompletionsArgs) -> Result<ExitCode, CliError> {
    use clap_complete::Shell as S;
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
    };
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "shiplog", &mut out);
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: &ManArgs) -> Result<ExitCode, CliError> {
    let command = Cli::command();
    match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            // shiplog.1 and one page per subcommand, named after its path (shiplog-releases.1).
            clap_mangen::generate_to(command, dir)?;
            output::line(&format!("man pages written to {}", dir.display()))?;
        }
        None => {
            clap_mangen::Man::new(command).render(&mut std::io::stdout().lock())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
