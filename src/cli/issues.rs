//! `shiplog issues list|show|resolve|reopen|ignore`, the DSN of a project, and the issue and
//! release-notes parts of `shiplog releases`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, ClientOptions, query_value, segment};
use super::{CliError, output};
use crate::config::Config;
use crate::core;
use crate::store::{Store, orgs};

#[derive(Debug, Args)]
pub struct IssuesArgs {
    #[command(flatten)]
    client: ClientOptions,
    #[command(subcommand)]
    command: IssuesCommand,
}

#[derive(Debug, Subcommand)]
enum IssuesCommand {
    /// List issues, most recently seen first.
    List {
        /// unresolved (default), resolved, ignored, regressed or all.
        #[arg(long, default_value = "unresolved")]
        status: String,
        /// Only this project (slug); repeat for several.
        #[arg(long, short = 'p', value_name = "PROJECT")]
        project: Vec<String>,
        /// Only issues with events in this release.
        #[arg(long)]
        release: Option<String>,
        /// Search text in titles and culprits.
        #[arg(long, short = 'q')]
        query: Option<String>,
        /// At most this many (1-100).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one issue (numeric id or short id such as WEB-1A).
    Show { id: String },
    /// Resolve an issue: now, in a release, in the next release, or in a commit.
    Resolve {
        id: String,
        /// Resolved in this release (a version, or `latest`).
        #[arg(long, value_name = "VERSION", conflicts_with_all = ["in_next_release", "in_commit"])]
        in_release: Option<String>,
        /// Resolved in the next release to be created.
        #[arg(long, conflicts_with = "in_commit")]
        in_next_release: bool,
        /// Resolved by this commit (its full sha), in the release that contains it.
        #[arg(long, value_name = "SHA", requires = "repo")]
        in_commit: Option<String>,
        /// The repository of --in-commit, by name (e.g. acme/web).
        #[arg(long, value_name = "NAME", requires = "in_commit")]
        repo: Option<String>,
    },
    /// Reopen an issue (unresolved).
    Reopen { id: String },
    /// Ignore an issue.
    Ignore { id: String },
}

/// The DSN of a project of the configured organization, pointing at `base`.
pub fn dsn(store: &Store, config: &Config, slug: &str, base: &str) -> Result<String, CliError> {
    let org_slug = config.organization.clone();
    store.read_blocking(|conn| {
        let org = core::org::org(conn, &org_slug)?;
        let project = orgs::project_by_slug(conn, org.id, slug)?.ok_or_else(|| {
            CliError::Usage(format!(
                "no project \"{slug}\" in organization {org_slug} (see `shiplog projects list`)"
            ))
        })?;
        Ok::<_, CliError>(core::issue::dsn(conn, &project, base)?)
    })
}

fn issue_path(client: &Client, id: &str) -> String {
    format!(
        "organizations/{}/issues/{}/",
        segment(&client.org),
        segment(id)
    )
}

pub async fn run(config: &Config, args: &IssuesArgs) -> Result<ExitCode, CliError> {
    let client = Client::new(&args.client, config)?;
    match &args.command {
        IssuesCommand::List {
            status,
            project,
            release,
            query,
            limit,
        } => {
            let mut terms = Vec::new();
            match status.as_str() {
                "all" | "any" => {}
                "unresolved" | "resolved" | "ignored" | "regressed" => {
                    terms.push(format!("is:{status}"))
                }
                other => {
                    return Err(CliError::Usage(format!(
                        "--status {other}: expected unresolved, resolved, ignored, regressed or all"
                    )));
                }
            }
            if let Some(r) = release {
                terms.push(format!("release:\"{r}\""));
            }
            if let Some(q) = query {
                terms.push(q.clone());
            }
            let mut params = vec![format!("query={}", query_value(&terms.join(" ")))];
            for p in project {
                params.push(format!("project={}", query_value(p)));
            }
            if let Some(n) = limit {
                params.push(format!("per_page={n}"));
            }
            let list = client
                .get(&format!(
                    "organizations/{}/issues/?{}",
                    segment(&client.org),
                    params.join("&")
                ))
                .await?;
            if client.json {
                return output::json(&list).map(|_| ExitCode::SUCCESS);
            }
            let items = list.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                output::line("No issues found")?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|i| {
                    vec![
                        output::text(i, "shortId"),
                        status_label(i),
                        output::text(i, "count"),
                        output::when(i, "lastSeen"),
                        output::text(i, "title"),
                    ]
                })
                .collect();
            output::table(&["ISSUE", "STATUS", "EVENTS", "LAST SEEN", "TITLE"], &rows)?;
        }
        IssuesCommand::Show { id } => {
            let issue = client.get(&issue_path(&client, id)).await?;
            if client.json {
                return output::json(&issue).map(|_| ExitCode::SUCCESS);
            }
            print_issue(&issue)?;
            print_suspects(&client, &issue).await?;
        }
        IssuesCommand::Resolve {
            id,
            in_release,
            in_next_release,
            in_commit,
            repo,
        } => {
            let body = match (in_release, in_next_release, in_commit) {
                (Some(v), _, _) => {
                    json!({"status": "resolved", "statusDetails": {"inRelease": v}})
                }
                (None, true, _) => json!({"status": "resolvedInNextRelease"}),
                (None, false, Some(sha)) => json!({"status": "resolved",
                    "statusDetails": {"inCommit": {"commit": sha, "repository": repo}}}),
                (None, false, None) => json!({"status": "resolved"}),
            };
            let (_, issue) = client
                .send(Method::PUT, &issue_path(&client, id), Some(&body))
                .await?;
            if client.json {
                return output::json(&issue).map(|_| ExitCode::SUCCESS);
            }
            output::line(&format!(
                "{} is {}",
                output::text(&issue, "shortId"),
                status_label(&issue)
            ))?;
        }
        IssuesCommand::Reopen { id } | IssuesCommand::Ignore { id } => {
            let status = match &args.command {
                IssuesCommand::Reopen { .. } => "unresolved",
                _ => "ignored",
            };
            let (_, issue) = client
                .send(
                    Method::PUT,
                    &issue_path(&client, id),
                    Some(&json!({ "status": status })),
                )
                .await?;
            if client.json {
                return output::json(&issue).map(|_| ExitCode::SUCCESS);
            }
            output::line(&format!(
                "{} is {}",
                output::text(&issue, "shortId"),
                status_label(&issue)
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `resolved in 1.1`, `resolved in next release`, `unresolved (regressed)`, ...
pub fn status_label(issue: &Value) -> String {
    let status = output::text(issue, "status");
    let details = issue.get("statusDetails");
    if status == "resolved" {
        if let Some(v) = details
            .and_then(|d| d.get("inRelease"))
            .and_then(Value::as_str)
        {
            return format!("resolved in {v}");
        }
        if details.and_then(|d| d.get("inNextRelease")) == Some(&Value::Bool(true)) {
            return "resolved in next release".into();
        }
        return status;
    }
    match issue.get("substatus").and_then(Value::as_str) {
        Some(sub) if sub == "regressed" || sub == "new" => format!("{status} ({sub})"),
        _ => status,
    }
}

fn release_version(v: Option<&Value>) -> String {
    v.and_then(|r| r.get("version"))
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string()
}

fn print_issue(i: &Value) -> Result<(), CliError> {
    output::fields(&[
        ("Issue", output::text(i, "shortId")),
        ("Title", output::text(i, "title")),
        ("Culprit", output::text(i, "culprit")),
        ("Project", output::text(&i["project"], "slug")),
        ("Status", status_label(i)),
        ("Level", output::text(i, "level")),
        ("Events", output::text(i, "count")),
        ("First seen", output::when(i, "firstSeen")),
        ("Last seen", output::when(i, "lastSeen")),
        ("First release", release_version(i.get("firstRelease"))),
        ("Last release", release_version(i.get("lastRelease"))),
    ])?;
    let activity = i
        .get("activity")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !activity.is_empty() {
        output::line("")?;
        output::line("Activity:")?;
        for a in activity.iter().rev() {
            let data = &a["data"];
            let what = match a["type"].as_str().unwrap_or("") {
                "set_resolved_in_release" => format!(
                    "resolved in release {}",
                    data["version"]
                        .as_str()
                        .filter(|v| !v.is_empty())
                        .unwrap_or("(next)")
                ),
                "set_resolved_in_commit" => "resolved in a commit".to_string(),
                "set_regression" => format!(
                    "regressed in {}",
                    data["version"]
                        .as_str()
                        .filter(|v| !v.is_empty())
                        .unwrap_or("-")
                ),
                "referenced_in_commit" => format!(
                    "referenced in commit {}",
                    data["sha"]
                        .as_str()
                        .map(|s| &s[..s.len().min(12)])
                        .unwrap_or("-")
                ),
                other => other.replace('_', " "),
            };
            output::line(&format!("  {}  {what}", output::when(a, "dateCreated")))?;
        }
    }
    Ok(())
}

/// Prints the issues resolved in a release, for `shiplog releases info`.
pub async fn print_fixed_issues(client: &Client, version: &str) -> Result<(), CliError> {
    let list = client
        .get(&format!(
            "organizations/{}/releases/{}/resolved/",
            segment(&client.org),
            segment(version)
        ))
        .await?;
    let items = list.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return output::fields(&[("Fixed issues", "-".into())]);
    }
    let lines: Vec<String> = items
        .iter()
        .map(|i| {
            format!(
                "{}  {}  ({})",
                output::text(i, "shortId"),
                output::text(i, "title"),
                status_label(i)
            )
        })
        .collect();
    output::fields(&[("Fixed issues", lines.join("\n              "))])
}

/// Prints a release's notes as Markdown or JSON, for `shiplog releases notes`.
pub async fn print_notes(
    client: &Client,
    version: &str,
    format: &str,
    json: bool,
) -> Result<(), CliError> {
    let format = if json { "json" } else { format };
    if !matches!(format, "md" | "markdown" | "json") {
        return Err(CliError::Usage(format!(
            "--format {format}: expected md or json"
        )));
    }
    let notes = client
        .get(&format!(
            "organizations/{}/releases/{}/notes/",
            segment(&client.org),
            segment(version)
        ))
        .await?;
    if format == "json" {
        return output::json(&notes);
    }
    let text = crate::core::notes::markdown(&notes);
    output::line(text.trim_end())
}

/// Prints the suspect commits of an issue's newest event, when shiplog can tell.
async fn print_suspects(client: &Client, issue: &Value) -> Result<(), CliError> {
    let id = output::text(issue, "id");
    let events = client
        .get(&format!(
            "organizations/{}/issues/{}/events/",
            segment(&client.org),
            segment(&id)
        ))
        .await?;
    let Some(event_id) = events
        .get(0)
        .and_then(|e| e.get("eventID"))
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    let project = output::text(&issue["project"], "slug");
    let path = format!(
        "projects/{}/{}/events/{}/committers/",
        segment(&client.org),
        segment(&project),
        segment(event_id)
    );
    // No first release, or no commits in it: nothing to suspect, which is not an error here.
    let Ok(found) = client.get(&path).await else {
        return Ok(());
    };
    let committers = found["committers"].as_array().cloned().unwrap_or_default();
    if committers.is_empty() {
        return Ok(());
    }
    output::line("")?;
    output::line("Suspect commits:")?;
    // Sentry lists the strongest suspect last; show it first.
    for c in committers.iter().rev() {
        let who = c["author"]["name"]
            .as_str()
            .or(c["author"]["email"].as_str())
            .unwrap_or("?");
        for commit in c["commits"].as_array().cloned().unwrap_or_default() {
            let sha = commit["id"].as_str().unwrap_or("");
            let title = commit["message"]
                .as_str()
                .and_then(|m| m.lines().next())
                .unwrap_or("");
            output::line(&format!(
                "  {}  {title}  ({who})",
                &sha[..sha.len().min(12)]
            ))?;
        }
    }
    Ok(())
}
