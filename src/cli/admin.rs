//! Admin commands that work on the data dir directly, whether the daemon runs or not:
//! tokens and projects. SQLite's WAL lets them write beside a running daemon.

use std::process::ExitCode;

use clap::Subcommand;

use super::{CliError, output};
use crate::config::Config;
use crate::core;
use crate::store::{Store, orgs, tokens};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (shown once; only its hash is stored).
    Create {
        /// Organization (default: the config's).
        #[arg(long)]
        org: Option<String>,
        /// A name to recognise it by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// The URL to embed, that clients such as sentry-cli will call (default: the config's
        /// public_url, else the running daemon's address, else the listen address).
        #[arg(long)]
        url: Option<String>,
        /// Create the organization named by `--org` if the data dir has none of that name
        /// (without it, a mistyped `--org` is an error, not a new organization).
        #[arg(long)]
        create_org: bool,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Add a project (or rename an existing one).
    Add {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        platform: Option<String>,
    },
    /// List projects.
    List,
    /// Print a project's DSN, for SDKs and `sentry-cli send-event` (SENTRY_DSN).
    Dsn {
        slug: String,
        /// The URL the DSN points at (default: the config's public_url, else the running
        /// daemon's address, else the listen address).
        #[arg(long)]
        url: Option<String>,
    },
}

pub(super) fn open(config: &Config) -> Result<Store, CliError> {
    let store = Store::open_dir(&config.data_dir())?;
    store.write_blocking(|tx| core::org::sync_config(tx, config, &core::now()))?;
    Ok(store)
}

/// The URL to embed in a new token.
pub(super) fn token_url(config: &Config, explicit: Option<&str>) -> String {
    if let Some(url) = explicit {
        return url.trim_end_matches('/').to_string();
    }
    if config.public_url.is_some() {
        return config.effective_public_url(None);
    }
    match crate::daemon::runtime_info(&config.data_dir()) {
        Some(info) => info.url,
        None => config.effective_public_url(None),
    }
}

pub fn token(config: &Config, cmd: &TokenCommand) -> Result<ExitCode, CliError> {
    let store = open(config)?;
    match cmd {
        TokenCommand::Create {
            org,
            name,
            url,
            create_org,
        } => {
            let url = token_url(config, url.as_deref());
            let org_slug = org.clone().unwrap_or_else(|| config.organization.clone());
            let now = chrono::Utc::now();
            let value = store.write_blocking(|tx| {
                let org = match orgs::org_by_slug(tx, &org_slug)? {
                    Some(org) => org,
                    None if *create_org => {
                        if !core::org::is_valid_slug(&org_slug) {
                            return Err(CliError::Usage(format!(
                                "cannot create organization '{org_slug}': a slug is lowercase letters, digits, '-' and '_'"
                            )));
                        }
                        orgs::ensure_org(tx, &org_slug, &crate::model::time::format(now))?
                    }
                    None => {
                        return Err(CliError::Usage(format!(
                            "organization '{org_slug}' does not exist in {} (the config's is '{}'); check --org, or pass --create-org to create it",
                            config.data_dir().display(),
                            config.organization
                        )));
                    }
                };
                let (_, value) = core::token::create(
                    tx,
                    &org,
                    name,
                    &url,
                    now.timestamp_millis() as f64 / 1000.0,
                    &crate::model::time::format(now),
                )?;
                Ok::<_, CliError>(value)
            })?;
            output::line(&value)?;
        }
        TokenCommand::List => {
            let list = store.read_blocking(tokens::list)?;
            if list.is_empty() {
                output::line("No tokens. Create one with `shiplog token create`")?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.org_slug.clone(),
                        format!("…{}", t.token_tail),
                        t.date_added[..16.min(t.date_added.len())].replace('T', " "),
                        t.date_last_used
                            .as_deref()
                            .map(|d| d[..16.min(d.len())].replace('T', " "))
                            .unwrap_or_else(|| "never".into()),
                        if t.date_revoked.is_some() {
                            "revoked".into()
                        } else {
                            "active".into()
                        },
                    ]
                })
                .collect();
            output::table(
                &[
                    "ID",
                    "NAME",
                    "ORG",
                    "ENDS WITH",
                    "CREATED",
                    "LAST USED",
                    "STATE",
                ],
                &rows,
            )?;
        }
        TokenCommand::Revoke { id } => {
            let now = core::now();
            let done = store.write_blocking(|tx| tokens::revoke(tx, *id, &now))?;
            if !done {
                return Err(CliError::Usage(format!(
                    "no active token with id {id} (see `shiplog token list`)"
                )));
            }
            output::line(&format!("Revoked token {id}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn projects(config: &Config, cmd: &ProjectCommand) -> Result<ExitCode, CliError> {
    let store = open(config)?;
    match cmd {
        ProjectCommand::Add {
            slug,
            name,
            platform,
        } => {
            let org_slug = config.organization.clone();
            let now = core::now();
            let p = store.write_blocking(|tx| {
                let org = core::org::org(tx, &org_slug)?;
                core::org::add_project(tx, org.id, slug, name.as_deref(), platform.as_deref(), &now)
            })?;
            output::line(&format!("Project {} ({}) is ready", p.slug, p.name))?;
        }
        ProjectCommand::List => {
            let org_slug = config.organization.clone();
            let list = store.read_blocking(|c| {
                let org = core::org::org(c, &org_slug)?;
                Ok::<_, CliError>(orgs::list_projects(c, org.id)?)
            })?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|p| {
                    vec![
                        p.id.to_string(),
                        p.slug.clone(),
                        p.name.clone(),
                        p.platform.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            output::table(&["ID", "SLUG", "NAME", "PLATFORM"], &rows)?;
        }
        ProjectCommand::Dsn { slug, url } => {
            let base = token_url(config, url.as_deref());
            let dsn = super::issues::dsn(&store, config, slug, &base)?;
            output::line(&dsn)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
