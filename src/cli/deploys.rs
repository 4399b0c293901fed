//! `shiplog deploys new|list`: sentry-cli's deploy verbs.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, ClientOptions, segment};
use super::releases::parse_time;
use super::{CliError, output};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct DeploysArgs {
    #[command(flatten)]
    client: ClientOptions,
    /// The release [env: SHIPLOG_RELEASE, SENTRY_RELEASE]
    #[arg(long, short = 'r', global = true, value_name = "VERSION")]
    release: Option<String>,
    #[command(subcommand)]
    command: DeploysCommand,
}

#[derive(Debug, Subcommand)]
enum DeploysCommand {
    /// Record a deploy of the release to an environment.
    New {
        /// Environment, e.g. production.
        #[arg(long, short = 'e')]
        env: String,
        /// A name for this deploy.
        #[arg(long, short = 'n')]
        name: Option<String>,
        /// A URL for this deploy (e.g. the CI job).
        #[arg(long, short = 'u')]
        url: Option<String>,
        /// How long the deploy took, in seconds (sets the start time).
        #[arg(long, short = 't', conflicts_with_all = ["started", "finished"])]
        time: Option<i64>,
        /// Start time (RFC 3339 or Unix seconds).
        #[arg(long)]
        started: Option<String>,
        /// Finish time (RFC 3339 or Unix seconds; default now).
        #[arg(long)]
        finished: Option<String>,
        /// Only these projects of the release.
        #[arg(long, short = 'p')]
        project: Vec<String>,
    },
    /// List the latest deploy per environment.
    List,
}

pub async fn run(config: &Config, args: &DeploysArgs) -> Result<ExitCode, CliError> {
    let client = Client::new(&args.client, config)?;
    let version = args
        .release
        .clone()
        .or_else(|| {
            ["SHIPLOG_RELEASE", "SENTRY_RELEASE"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        })
        .ok_or_else(|| CliError::Usage("which release? pass --release VERSION".into()))?;
    let path = format!(
        "organizations/{}/releases/{}/deploys/",
        segment(&client.org),
        segment(&version)
    );
    match &args.command {
        DeploysCommand::New {
            env,
            name,
            url,
            time,
            started,
            finished,
            project,
        } => {
            let now = chrono::Utc::now();
            let (started, finished) = match time {
                Some(secs) => (
                    Some(crate::model::time::format(
                        now - chrono::Duration::seconds(*secs),
                    )),
                    crate::model::time::format(now),
                ),
                None => (
                    started.as_deref().map(parse_time).transpose()?,
                    match finished {
                        Some(f) => parse_time(f)?,
                        None => crate::model::time::format(now),
                    },
                ),
            };
            let mut body = json!({
                "environment": env, "name": name, "url": url,
                "dateStarted": started, "dateFinished": finished,
            });
            if !project.is_empty() {
                body["projects"] = json!(project);
            }
            let (_, deploy) = client.send(Method::POST, &path, Some(&body)).await?;
            if client.json {
                return output::json(&deploy).map(|_| ExitCode::SUCCESS);
            }
            output::line(&format!(
                "Created new deploy {} for '{env}'",
                name.as_deref().unwrap_or("unnamed")
            ))?;
        }
        DeploysCommand::List => {
            let list = client.get(&path).await?;
            if client.json {
                return output::json(&list).map(|_| ExitCode::SUCCESS);
            }
            let items = list.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                output::line("No deploys found")?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|d: &Value| {
                    vec![
                        output::text(d, "environment"),
                        d.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("(unnamed)")
                            .to_string(),
                        output::when(d, "dateFinished"),
                    ]
                })
                .collect();
            output::table(&["ENVIRONMENT", "NAME", "FINISHED"], &rows)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
