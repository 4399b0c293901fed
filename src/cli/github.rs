//! `shiplog github deliveries|hooks`: what GitHub sent and what shiplog did with it.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::{Client, ClientOptions, segment};
use super::{CliError, output};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct GithubArgs {
    #[command(flatten)]
    client: ClientOptions,
    #[command(subcommand)]
    command: GithubCommand,
}

#[derive(Debug, Subcommand)]
enum GithubCommand {
    /// The newest webhook deliveries and their outcome (applied, ignored, pending, failed).
    Deliveries {
        /// How many to show (1-1000).
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
    },
    /// The webhooks that have pinged shiplog (GitHub sends a ping when a webhook is created).
    Hooks,
}

pub async fn run(config: &Config, args: &GithubArgs) -> Result<ExitCode, CliError> {
    let client = Client::new(&args.client, config)?;
    let base = format!("organizations/{}/github", segment(&client.org));
    match &args.command {
        GithubCommand::Deliveries { limit } => {
            if !(1..=1000).contains(limit) {
                return Err(CliError::Usage(
                    "--limit must be a number from 1 to 1000".into(),
                ));
            }
            let list = client
                .get(&format!("{base}/deliveries/?per_page={limit}"))
                .await?;
            if client.json {
                return output::json(&list).map(|_| ExitCode::SUCCESS);
            }
            let items = list.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                output::line(
                    "No GitHub deliveries yet. Point a GitHub webhook at <shiplog URL>/webhooks/github with the secret from github.webhook_secret",
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|d: &Value| {
                    let event = match d.get("action").and_then(Value::as_str) {
                        Some(a) => format!("{}.{a}", output::text(d, "event")),
                        None => output::text(d, "event"),
                    };
                    vec![
                        output::when(d, "receivedAt"),
                        event,
                        output::text(d, "repository"),
                        output::text(d, "outcome"),
                        output::text(d, "detail"),
                        output::text(d, "delivery"),
                    ]
                })
                .collect();
            output::table(
                &[
                    "RECEIVED",
                    "EVENT",
                    "REPOSITORY",
                    "OUTCOME",
                    "DETAIL",
                    "DELIVERY",
                ],
                &rows,
            )?;
        }
        GithubCommand::Hooks => {
            let list = client.get(&format!("{base}/hooks/")).await?;
            if client.json {
                return output::json(&list).map(|_| ExitCode::SUCCESS);
            }
            let items = list.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                output::line("No webhook has pinged shiplog yet")?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|h: &Value| {
                    let events: Vec<String> = h
                        .get("events")
                        .and_then(Value::as_array)
                        .map(|e| {
                            e.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default();
                    vec![
                        output::text(h, "hookId"),
                        output::text(h, "target"),
                        output::text(h, "contentType"),
                        events.join(","),
                        output::when(h, "lastPingAt"),
                    ]
                })
                .collect();
            output::table(&["HOOK", "TARGET", "CONTENT", "EVENTS", "LAST PING"], &rows)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
