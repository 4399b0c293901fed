//! `shiplog releases ...`: sentry-cli's release verbs against the daemon.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, ClientOptions, query_value, segment};
use super::{CliError, output};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct ReleasesArgs {
    #[command(flatten)]
    client: ClientOptions,
    /// Project slug; repeat for several [env: SHIPLOG_PROJECT, SENTRY_PROJECT]
    #[arg(long, short = 'p', global = true, value_name = "PROJECT")]
    project: Vec<String>,
    #[command(subcommand)]
    command: ReleasesCommand,
}

#[derive(Debug, Subcommand)]
enum ReleasesCommand {
    /// Create a release (or attach projects to an existing one).
    New {
        version: String,
        /// Mark it released now.
        #[arg(long)]
        finalize: bool,
        /// A URL for the release (e.g. its changelog).
        #[arg(long)]
        url: Option<String>,
    },
    /// List releases, newest first.
    List {
        /// Search: free text, `release:web@1.*`, `release.version:>=1.2.0`, `finalized:true`.
        #[arg(long, short = 'q')]
        query: Option<String>,
        /// open (default), archived or any.
        #[arg(long)]
        status: Option<String>,
        /// date (default), semver or build.
        #[arg(long)]
        sort: Option<String>,
        /// At most this many (1-100).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one release.
    Info { version: String },
    /// Release health: sessions, users, crash-free rates, adoption and stage per project (of
    /// one release, or of every release with session data), and refused session items.
    Health {
        version: Option<String>,
        /// The period the figures cover: 1h, 24h, 48h, 7d, 14d, 30d or 90d.
        #[arg(long, default_value = "24h")]
        period: String,
        /// Only sessions of this environment.
        #[arg(long)]
        env: Option<String>,
    },
    /// Mark a release as released.
    Finalize {
        version: String,
        /// When it was released: RFC 3339 or Unix seconds (default: now).
        #[arg(long)]
        released: Option<String>,
        #[arg(long)]
        url: Option<String>,
    },
    /// Archive a release (hidden from default lists).
    Archive { version: String },
    /// Restore an archived release.
    Restore { version: String },
    /// Delete a release with its deploys.
    Delete { version: String },
    /// Release notes: commits by conventional-commit type, fixed issues, authors, deploys.
    Notes {
        version: String,
        /// md (default) or json.
        #[arg(long, default_value = "md")]
        format: String,
    },
    /// Associate commits with a release (--auto, --commit, --local or --clear, as sentry-cli).
    SetCommits(super::commits::SetCommitsArgs),
    /// Print a version for a new release: $SHIPLOG_RELEASE, $SENTRY_RELEASE, CI variables,
    /// else the git HEAD sha.
    ProposeVersion,
}

fn projects(args: &ReleasesArgs) -> Vec<String> {
    if !args.project.is_empty() {
        return args.project.clone();
    }
    ["SHIPLOG_PROJECT", "SENTRY_PROJECT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .map(|v| vec![v])
        .unwrap_or_default()
}

/// Accepts RFC 3339 or Unix seconds (as sentry-cli's `--released` does).
pub fn parse_time(text: &str) -> Result<String, CliError> {
    if let Ok(secs) = text.parse::<i64>() {
        return chrono::DateTime::from_timestamp(secs, 0)
            .map(crate::model::time::format)
            .ok_or_else(|| CliError::Usage(format!("timestamp {text} is out of range")));
    }
    crate::model::time::normalize(text).ok_or_else(|| {
        CliError::Usage(format!(
            "\"{text}\" is not a timestamp: use RFC 3339 (2024-01-31T12:00:00Z) or Unix seconds"
        ))
    })
}

fn release_path(client: &Client, version: &str) -> String {
    format!(
        "organizations/{}/releases/{}/",
        segment(&client.org),
        segment(version)
    )
}

pub async fn run(config: &Config, args: &ReleasesArgs) -> Result<ExitCode, CliError> {
    if let ReleasesCommand::ProposeVersion = &args.command {
        return super::commits::propose_version();
    }
    let client = Client::new(&args.client, config)?;
    let org = segment(&client.org);
    match &args.command {
        ReleasesCommand::New {
            version,
            finalize,
            url,
        } => {
            let mut body = json!({"version": version, "projects": projects(args)});
            if let Some(url) = url {
                body["url"] = json!(url);
            }
            if *finalize {
                body["dateReleased"] = json!(crate::core::now());
            }
            let (status, release) = client
                .send(
                    Method::POST,
                    &format!("organizations/{org}/releases/"),
                    Some(&body),
                )
                .await?;
            if client.json {
                return output::json(&release).map(|_| ExitCode::SUCCESS);
            }
            let verb = if status == 208 {
                "Release already exists:"
            } else {
                "Created release"
            };
            output::line(&format!("{verb} {version}"))?;
        }
        ReleasesCommand::List {
            query,
            status,
            sort,
            limit,
        } => {
            let mut params = Vec::new();
            if let Some(q) = query {
                params.push(format!("query={}", query_value(q)));
            }
            if let Some(s) = status {
                params.push(format!("status={}", query_value(s)));
            }
            if let Some(s) = sort {
                params.push(format!("sort={}", query_value(s)));
            }
            if let Some(n) = limit {
                params.push(format!("per_page={n}"));
            }
            let base = match projects(args).first() {
                Some(p) => format!("projects/{org}/{}/releases/", segment(p)),
                None => format!("organizations/{org}/releases/"),
            };
            // Crash-free columns over the last day, as the releases index shows them.
            params.push("health=1&summaryStatsPeriod=24h".into());
            let list = client.get(&format!("{base}?{}", params.join("&"))).await?;
            if client.json {
                return output::json(&list).map(|_| ExitCode::SUCCESS);
            }
            let items = list.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                output::line("No releases found")?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows: Vec<Vec<String>> = items.iter().map(list_row).collect();
            let mut header = vec![
                "VERSION", "STATUS", "PROJECTS", "COMMITS", "DEPLOYS", "CREATED", "RELEASED",
            ];
            if let Some(columns) = super::health::list_columns(&items) {
                header.extend(["CRASH-FREE SESSIONS 24H", "CRASH-FREE USERS 24H"]);
                for (row, cells) in rows.iter_mut().zip(columns) {
                    row.extend(cells);
                }
            }
            output::table(&header, &rows)?;
        }
        ReleasesCommand::Info { version } => {
            let release = client.get(&release_path(&client, version)).await?;
            if client.json {
                return output::json(&release).map(|_| ExitCode::SUCCESS);
            }
            print_info(&release)?;
            super::issues::print_fixed_issues(&client, version).await?;
        }
        ReleasesCommand::Health {
            version,
            period,
            env,
        } => {
            return super::health::print(&client, version.as_deref(), period, env.as_deref()).await;
        }
        ReleasesCommand::Notes { version, format } => {
            super::issues::print_notes(&client, version, format, client.json).await?;
        }
        ReleasesCommand::Finalize {
            version,
            released,
            url,
        } => {
            let when = match released {
                Some(t) => parse_time(t)?,
                None => crate::core::now(),
            };
            let mut body = json!({"dateReleased": when});
            let projects = projects(args);
            if !projects.is_empty() {
                body["projects"] = json!(projects);
            }
            if let Some(url) = url {
                body["url"] = json!(url);
            }
            let (_, release) = client
                .send(Method::PUT, &release_path(&client, version), Some(&body))
                .await?;
            if client.json {
                return output::json(&release).map(|_| ExitCode::SUCCESS);
            }
            output::line(&format!("Finalized release {version}"))?;
        }
        ReleasesCommand::Archive { version } | ReleasesCommand::Restore { version } => {
            let (status, verb) = match &args.command {
                ReleasesCommand::Archive { .. } => ("archived", "Archived"),
                _ => ("open", "Restored"),
            };
            // Like sentry-cli: a status change is a POST to the collection, which must not
            // create a release that does not exist.
            client.get(&release_path(&client, version)).await?;
            let body = json!({"version": version, "projects": [], "status": status});
            let (_, release) = client
                .send(
                    Method::POST,
                    &format!("organizations/{org}/releases/"),
                    Some(&body),
                )
                .await?;
            if client.json {
                return output::json(&release).map(|_| ExitCode::SUCCESS);
            }
            output::line(&format!("{verb} release {version}"))?;
        }
        ReleasesCommand::Delete { version } => {
            client
                .send(Method::DELETE, &release_path(&client, version), None)
                .await?;
            if client.json {
                return output::json(&json!({"deleted": version})).map(|_| ExitCode::SUCCESS);
            }
            output::line(&format!("Deleted release {version}"))?;
        }
        ReleasesCommand::SetCommits(set) => {
            return super::commits::set_commits(&client, &projects(args), set).await;
        }
        ReleasesCommand::ProposeVersion => return super::commits::propose_version(),
    }
    Ok(ExitCode::SUCCESS)
}

fn list_row(r: &Value) -> Vec<String> {
    let projects: Vec<String> = r
        .get("projects")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(|p| output::text(p, "slug")).collect())
        .unwrap_or_default();
    let released = match r.get("dateReleased").and_then(Value::as_str) {
        Some(_) => output::when(r, "dateReleased"),
        None => "(unreleased)".into(),
    };
    vec![
        output::text(r, "version"),
        output::text(r, "status"),
        if projects.is_empty() {
            "-".into()
        } else {
            projects.join(",")
        },
        output::text(r, "commitCount"),
        output::text(r, "deployCount"),
        output::when(r, "dateCreated"),
        released,
    ]
}

fn print_info(r: &Value) -> Result<(), CliError> {
    let projects: Vec<String> = r
        .get("projects")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(|p| output::text(p, "slug")).collect())
        .unwrap_or_default();
    let last_deploy = match r.get("lastDeploy") {
        Some(d) if d.is_object() => format!(
            "{} at {}",
            output::text(d, "environment"),
            output::when(d, "dateFinished")
        ),
        _ => "-".into(),
    };
    let description = r
        .get("versionInfo")
        .map(|v| output::text(v, "description"))
        .unwrap_or_else(|| "-".into());
    output::fields(&[
        ("Version", output::text(r, "version")),
        ("Description", description),
        ("Status", output::text(r, "status")),
        ("Projects", projects.join(", ")),
        ("Created", output::when(r, "dateCreated")),
        (
            "Released",
            match r.get("dateReleased").and_then(Value::as_str) {
                Some(_) => output::when(r, "dateReleased"),
                None => "(unreleased)".into(),
            },
        ),
        ("URL", output::text(r, "url")),
        ("Commits", commits_line(r)),
        ("Deploys", output::text(r, "deployCount")),
        ("Last deploy", last_deploy),
        ("New issues", output::text(r, "newGroups")),
    ])
}

/// The commit count, and why it is incomplete while GitHub's commits are still being fetched
/// (`data.commitsPending`, set by the GitHub integration).
fn commits_line(r: &Value) -> String {
    let count = output::text(r, "commitCount");
    let data = r.get("data");
    if data
        .and_then(|d| d.get("commitsPending"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        let why = data
            .and_then(|d| d.get("commitsError"))
            .and_then(Value::as_str)
            .unwrap_or("not fetched yet");
        format!("{count} (commits pending: {why})")
    } else {
        count
    }
}
