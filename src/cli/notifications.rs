//! `shiplog notifications`: the outbox's recent deliveries and failures (read from the data
//! dir directly), and a test message to each configured target.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliError, output};
use crate::config::Config;
use crate::store::Store;
use crate::store::notifications as store;

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Recent deliveries, newest first, with their state and last error.
    List(ListArgs),
    /// Send a test message to each configured target now.
    Test,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only deliveries that failed for good.
    #[arg(long)]
    failed: bool,
    /// How many to show.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, cmd: &NotificationsCommand) -> Result<ExitCode, CliError> {
    match cmd {
        NotificationsCommand::List(args) => list(config, args),
        NotificationsCommand::Test => test(config),
    }
}

fn list(config: &Config, args: &ListArgs) -> Result<ExitCode, CliError> {
    let store = Store::open_dir(&config.data_dir())?;
    let (limit, failed) = (args.limit, args.failed);
    let list = store.read_blocking(move |c| store::recent(c, limit, failed))?;
    if args.json {
        let items: Vec<_> = list
            .iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "event": d.event_type,
                    "target": d.target,
                    "state": d.state,
                    "attempts": d.attempts,
                    "created": d.created,
                    "nextAttempt": (d.state == "pending").then_some(&d.next_attempt),
                    "finished": d.finished,
                    "lastError": d.last_error,
                })
            })
            .collect();
        output::json(&json!(items))?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        output::line(
            if config.notifications.webhooks.is_empty() && config.notifications.slack.is_empty() {
                "No notifications. Configure targets under `notifications:` in the config"
            } else {
                "No notifications yet"
            },
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            vec![
                d.id.to_string(),
                d.event_type.clone(),
                d.target.clone(),
                d.state.clone(),
                d.attempts.to_string(),
                d.created.clone(),
                d.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "EVENT",
            "TARGET",
            "STATE",
            "ATTEMPTS",
            "CREATED",
            "LAST ERROR",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn test(config: &Config) -> Result<ExitCode, CliError> {
    let outcomes = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(crate::notify::send_test(&config.notifications));
    if outcomes.is_empty() {
        return Err(CliError::Usage(
            "no notification targets are configured; add webhooks or slack under `notifications:` in the config".into(),
        ));
    }
    let mut ok = true;
    for (label, outcome) in outcomes {
        match outcome {
            Ok(()) => output::line(&format!("ok      {label}"))?,
            Err(e) => {
                ok = false;
                output::line(&format!("failed  {label}: {e}"))?;
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
