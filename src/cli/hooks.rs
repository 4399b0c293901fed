//! `shiplog hooks install|uninstall|status`: shiplog's git hooks in a repository
//! ([`crate::hooks`] does the work; this module picks the repositories and prints).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{CliError, output};
use crate::config::Config;
use crate::hooks::{self, Location};

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install the hooks (default: into every configured repository with a path, else the
    /// current directory's repository). An existing hook is kept and runs first.
    Install {
        /// A configured repository name (owner/repo) or a path to a repository.
        repo: Option<String>,
        /// Also install the reference-transaction hook: reports local tags even when the
        /// daemon is not running to watch, at the cost of ~5 shell starts per commit.
        #[arg(long)]
        reference_transaction: bool,
    },
    /// Remove shiplog's hooks and put back the hooks they chained.
    Uninstall {
        /// A configured repository name (owner/repo) or a path to a repository.
        repo: Option<String>,
    },
    /// Show which hooks are installed where, and how many spool files wait for the daemon.
    Status {
        /// A configured repository name (owner/repo) or a path to a repository.
        repo: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A repository to work on: its configured name (if any) and path.
struct Target {
    name: Option<String>,
    path: PathBuf,
}

impl Target {
    fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({})", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

fn targets(config: &Config, repo: Option<&str>) -> Result<Vec<Target>, CliError> {
    if let Some(arg) = repo {
        if let Some(configured) = config.repository(arg) {
            let Some(path) = &configured.path else {
                return Err(CliError::Usage(format!(
                    "{arg} is reached through GitHub and has no local path; hooks go into a local clone (set `path:` for it in the config, or give a path)"
                )));
            };
            return Ok(vec![Target {
                name: Some(arg.to_owned()),
                path: path.clone(),
            }]);
        }
        let path = PathBuf::from(arg);
        if !path.exists() {
            let names: Vec<&str> = config
                .repositories
                .iter()
                .map(|r| r.name.as_str())
                .collect();
            let known = if names.is_empty() {
                String::new()
            } else {
                format!(" (configured: {})", names.join(", "))
            };
            return Err(CliError::Usage(format!(
                "{arg} is neither a configured repository{known} nor an existing path"
            )));
        }
        return Ok(vec![Target {
            name: configured_name(config, &path),
            path,
        }]);
    }
    let configured: Vec<Target> = config
        .repositories
        .iter()
        .filter_map(|r| {
            r.path.as_ref().map(|p| Target {
                name: Some(r.name.clone()),
                path: p.clone(),
            })
        })
        .collect();
    if !configured.is_empty() {
        return Ok(configured);
    }
    let cwd = std::env::current_dir()?;
    Ok(vec![Target {
        name: configured_name(config, &cwd),
        path: cwd,
    }])
}

/// The configured repository whose path is `path` (compared canonically).
fn configured_name(config: &Config, path: &Path) -> Option<String> {
    let want = std::fs::canonicalize(path).ok()?;
    config.repositories.iter().find_map(|r| {
        let p = std::fs::canonicalize(r.path.as_ref()?).ok()?;
        (p == want).then(|| r.name.clone())
    })
}

fn locate(target: &Target) -> Result<Location, CliError> {
    hooks::locate(&target.path).map_err(|e| CliError::Usage(e.to_string()))
}

pub fn run(config: &Config, cmd: &HooksCommand) -> Result<ExitCode, CliError> {
    match cmd {
        HooksCommand::Install {
            repo,
            reference_transaction,
        } => {
            for target in targets(config, repo.as_deref())? {
                let loc = locate(&target)?;
                let mut scripts = loc.default_scripts();
                if *reference_transaction {
                    scripts.push(hooks::REFERENCE_TRANSACTION);
                }
                let changes =
                    hooks::install(&loc, &scripts).map_err(|e| CliError::Usage(e.to_string()))?;
                output::line(&format!(
                    "{}: hooks in {}",
                    target.label(),
                    loc.hooks_dir.display()
                ))?;
                if let Some(hp) = &loc.hooks_path {
                    output::line(&format!(
                        "  core.hooksPath is {hp:?}: installed there, where git looks"
                    ))?;
                }
                for change in changes {
                    output::line(&format!("  {:<22}{}", change.name, change.action.as_str()))?;
                }
                if target.name.is_none() {
                    output::line(
                        "  note: this repository is not in the config; add it under `repositories:` (name and path) so the daemon reads what the hooks record",
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HooksCommand::Uninstall { repo } => {
            for target in targets(config, repo.as_deref())? {
                let loc = locate(&target)?;
                let changes = hooks::uninstall(&loc).map_err(|e| CliError::Usage(e.to_string()))?;
                if changes.is_empty() {
                    output::line(&format!(
                        "{}: no shiplog hooks in {}",
                        target.label(),
                        loc.hooks_dir.display()
                    ))?;
                    continue;
                }
                output::line(&format!(
                    "{}: hooks in {}",
                    target.label(),
                    loc.hooks_dir.display()
                ))?;
                for change in changes {
                    output::line(&format!("  {:<22}{}", change.name, change.action.as_str()))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HooksCommand::Status { repo, json } => {
            let mut all = Vec::new();
            for target in targets(config, repo.as_deref())? {
                let loc = locate(&target)?;
                all.push((target, hooks::status(&loc)));
            }
            if *json {
                let value: Vec<serde_json::Value> = all
                    .iter()
                    .map(|(t, s)| {
                        let mut v = serde_json::to_value(s).unwrap_or_default();
                        v["repository"] = serde_json::json!(t.name);
                        v["path"] = serde_json::json!(t.path);
                        v
                    })
                    .collect();
                output::json(&serde_json::Value::Array(value))?;
                return Ok(ExitCode::SUCCESS);
            }
            for (target, status) in all {
                output::line(&target.label())?;
                let mut pairs = vec![("hooks dir", status.hooks_dir.display().to_string())];
                if let Some(hp) = &status.hooks_path {
                    pairs.push(("core.hooksPath", hp.clone()));
                }
                pairs.push((
                    "spool backlog",
                    format!(
                        "{} file(s) in {}",
                        status.spool_backlog,
                        status.spool_dir.display()
                    ),
                ));
                output::fields(&pairs)?;
                let rows: Vec<Vec<String>> = status
                    .hooks
                    .iter()
                    .map(|h| {
                        vec![
                            h.name.to_owned(),
                            h.state.to_owned(),
                            if h.chained { "yes".into() } else { "-".into() },
                        ]
                    })
                    .collect();
                output::table(&["HOOK", "STATE", "CHAINS PREVIOUS"], &rows)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
