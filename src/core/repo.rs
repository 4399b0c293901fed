//! Repositories: the config's `repositories:` made into rows, `shiplog repos add|remove`, and
//! the list the API shows (Sentry's `GET /organizations/{org}/repos/`).
//!
//! The config is the seed and the database the truth, as for projects: [`sync_config`] runs at
//! every daemon start and writes each configured repository (name, URL, provider, path). A
//! repository that leaves the config is hidden, never deleted, because commits and release
//! head commits point at it. Repositories added with `shiplog repos add` live beside the
//! config's and are not hidden by it.

use std::path::Path;

use rusqlite::Connection;

use super::CoreError;
use crate::config::{Config, RepositoryConfig};
use crate::store::orgs::Org;
use crate::store::repos::{
    self, NewRepository, ORIGIN_CLI, ORIGIN_CONFIG, PROVIDER_GIT, PROVIDER_GITHUB, Repository,
    STATUS_ACTIVE, STATUS_HIDDEN,
};

/// The provider a configured repository gets: `git` for a local path, GitHub's integration for
/// a repository reached through the API.
fn provider_of(repo: &RepositoryConfig) -> &'static str {
    if repo.path.is_some() {
        PROVIDER_GIT
    } else {
        PROVIDER_GITHUB
    }
}

/// Writes the configured repositories and hides config-made ones no longer configured. Called
/// at daemon start after the organization sync.
pub fn sync_config(
    conn: &Connection,
    org: &Org,
    config: &Config,
    now: &str,
) -> Result<(), CoreError> {
    for repo in &config.repositories {
        let path = repo.path.as_ref().map(|p| p.to_string_lossy().into_owned());
        let url = repo.web_url(&config.github);
        // A range without a start (a first release) takes the first policy's depth.
        let initial_depth = repo
            .releases
            .first()
            .map(|p| i64::try_from(p.initial_depth).unwrap_or(i64::MAX));
        repos::upsert(
            conn,
            &NewRepository {
                org_id: org.id,
                name: &repo.name,
                url: url.as_deref(),
                provider: provider_of(repo),
                path: path.as_deref(),
                external: repo.github.as_deref(),
                origin: ORIGIN_CONFIG,
                initial_depth,
                date_added: now,
            },
        )?;
    }
    let keep: Vec<&str> = config
        .repositories
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let hidden = repos::hide_config_repos_except(conn, org.id, &keep)?;
    if hidden > 0 {
        tracing::info!(
            hidden,
            "repositories removed from the config are hidden (their commits are kept)"
        );
    }
    Ok(())
}

/// Checks that every configured `path` is a git repository, so a typo is refused at start with
/// one line rather than found at the first tag. Opens repositories: call it outside any store
/// transaction.
pub fn verify_paths(config: &Config) -> Result<(), CoreError> {
    for (i, repo) in config.repositories.iter().enumerate() {
        let Some(path) = &repo.path else { continue };
        if let Err(e) = crate::git::open(path) {
            let key = format!("repositories[{i}].path");
            return Err(CoreError::invalid(
                "path",
                format!(
                    "{}: {key}: {e}; point it at a clone or a bare repository",
                    config.provenance.origin_of(&key)
                ),
            ));
        }
    }
    Ok(())
}

/// The repository with this name, whatever its status.
pub fn by_name(
    conn: &Connection,
    org_id: i64,
    name: &str,
) -> Result<Option<Repository>, CoreError> {
    Ok(repos::by_name(conn, org_id, name)?)
}

/// Every repository of the organization, by name, hidden ones included.
pub fn list(conn: &Connection, org_id: i64) -> Result<Vec<Repository>, CoreError> {
    Ok(repos::list(conn, org_id)?)
}

/// Where `shiplog repos add` finds a repository's commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local clone or bare repository (already checked to be one).
    Path(String),
    /// `owner/repo` on GitHub.
    Github(String),
}

/// `shiplog repos add NAME (--path DIR | --github owner/repo) [--url URL]`. A configured
/// repository is the config's to change; a hidden one comes back.
pub fn add(
    conn: &Connection,
    org: &Org,
    config: &Config,
    name: &str,
    location: &Location,
    url: Option<&str>,
    now: &str,
) -> Result<Repository, CoreError> {
    if !is_repo_name(name) {
        return Err(CoreError::invalid(
            "name",
            format!(
                "repository name {name:?} must look like owner/repo (letters, digits, '.', '-' or '_', separated by '/'), e.g. acme/web"
            ),
        ));
    }
    if config.repository(name).is_some() {
        return Err(CoreError::Conflict(format!(
            "repository {name} is defined in the config file; change it there"
        )));
    }
    let url = url.map(|u| u.trim_end_matches('/').to_string());
    let (provider, path, external, url) = match location {
        Location::Path(p) => (PROVIDER_GIT, Some(p.as_str()), None, url),
        Location::Github(g) => {
            if !is_repo_name(g) {
                return Err(CoreError::invalid(
                    "github",
                    format!("{g:?} must be owner/repo as on GitHub, e.g. acme/web (not a URL)"),
                ));
            }
            let url = url.or_else(|| {
                RepositoryConfig {
                    github: Some(g.clone()),
                    ..RepositoryConfig::default()
                }
                .web_url(&config.github)
            });
            (PROVIDER_GITHUB, None, Some(g.as_str()), url)
        }
    };
    Ok(repos::upsert(
        conn,
        &NewRepository {
            org_id: org.id,
            name,
            url: url.as_deref(),
            provider,
            path,
            external,
            origin: ORIGIN_CLI,
            initial_depth: None,
            date_added: now,
        },
    )?)
}

/// What [`remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// Nothing referred to it: the row is gone.
    Deleted,
    /// Commits refer to it: hidden, commits kept.
    Hidden,
}

/// `shiplog repos remove NAME`.
pub fn remove(
    conn: &Connection,
    org: &Org,
    config: &Config,
    name: &str,
) -> Result<Removed, CoreError> {
    if config.repository(name).is_some() {
        return Err(CoreError::Conflict(format!(
            "repository {name} is defined in the config file; remove it there (it is then hidden at the next start)"
        )));
    }
    let repo = repos::by_name(conn, org.id, name)?.ok_or_else(|| {
        CoreError::NotFound(format!(
            "no repository named {name} (see `shiplog repos list`)"
        ))
    })?;
    if repos::is_referenced(conn, repo.id)? {
        repos::set_status(conn, repo.id, STATUS_HIDDEN)?;
        Ok(Removed::Hidden)
    } else {
        repos::delete(conn, repo.id)?;
        Ok(Removed::Deleted)
    }
}

/// Checks that `path` is a git repository and returns it absolute, for `repos add --path`.
pub fn check_path(path: &Path) -> Result<String, CoreError> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    crate::git::open(&absolute).map_err(|e| {
        CoreError::invalid(
            "path",
            format!("{e}; give the path of a clone or a bare repository"),
        )
    })?;
    Ok(absolute.to_string_lossy().into_owned())
}

/// `owner/repo` (or deeper `group/sub/repo`): segments of letters, digits, `.`, `-`, `_`.
fn is_repo_name(name: &str) -> bool {
    let segments: Vec<&str> = name.split('/').collect();
    segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

/// Repository list filters, as the API receives them.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub status: Option<String>,
    pub query: Option<String>,
    pub cursor: Option<String>,
}

/// Repositories per page, as Sentry serves them.
pub const PER_PAGE: usize = 100;

/// One page of repositories with the offsets around it. Sentry's repos cursor is
/// `0:<offset>:<is_prev>` (sentry-cli-protocol.md §1.5).
#[derive(Debug, Clone)]
pub struct RepoPage {
    pub items: Vec<Repository>,
    pub offset: usize,
    pub has_next: bool,
}

/// Sentry's `GET /organizations/{org}/repos/`: active repositories by name unless `status`
/// says otherwise (`deleted`/`hidden` for the others, `all` for every one).
pub fn page(conn: &Connection, org: &Org, req: &ListRequest) -> Result<RepoPage, CoreError> {
    let status = match req.status.as_deref() {
        None | Some("") | Some("active") => repos::StatusFilter::Active,
        Some("deleted") | Some("hidden") => repos::StatusFilter::NotActive,
        Some("all") | Some("any") => repos::StatusFilter::Any,
        Some(other) => {
            return Err(CoreError::invalid(
                "status",
                format!("invalid status {other:?} (expected active, hidden or all)"),
            ));
        }
    };
    let offset = match req.cursor.as_deref() {
        None | Some("") => 0,
        Some(text) => {
            let cursor = super::release::Cursor::parse(text)?
                .ok_or_else(|| CoreError::invalid("cursor", "Invalid cursor parameter."))?;
            if cursor.offset < 0 {
                return Err(CoreError::invalid(
                    "cursor",
                    "Pagination offset cannot be negative",
                ));
            }
            cursor.offset as usize
        }
    };
    let mut items = repos::page(
        conn,
        org.id,
        status,
        req.query.as_deref().filter(|q| !q.is_empty()),
        PER_PAGE,
        offset,
    )?;
    let has_next = items.len() > PER_PAGE;
    items.truncate(PER_PAGE);
    Ok(RepoPage {
        items,
        offset,
        has_next,
    })
}

/// Sentry's repository JSON. `id` is a string (sentry-cli fails on a number); `provider` is
/// `{id, name}`, and a repository without a provider (auto-created by set-commits) shows
/// Sentry's `{"id": "unknown", "name": "Unknown Provider"}`.
pub fn repo_json(repo: &Repository) -> serde_json::Value {
    let provider = match repo.provider.as_str() {
        repos::PROVIDER_GIT => serde_json::json!({"id": "git", "name": "Git"}),
        PROVIDER_GITHUB => serde_json::json!({"id": PROVIDER_GITHUB, "name": "GitHub"}),
        repos::PROVIDER_NONE => serde_json::json!({"id": "unknown", "name": "Unknown Provider"}),
        other => serde_json::json!({"id": other, "name": other}),
    };
    serde_json::json!({
        "id": repo.id.to_string(),
        "name": repo.name,
        "url": repo.url,
        "provider": provider,
        "status": repo.status,
        "dateCreated": repo.date_added,
        "integrationId": null,
        "externalSlug": repo.external,
        "externalId": null,
    })
}

/// `true` for a repository new commits may be recorded against.
pub fn is_active(repo: &Repository) -> bool {
    repo.status == STATUS_ACTIVE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        assert!(is_repo_name("acme/web"));
        assert!(is_repo_name("group/sub/repo.js"));
        assert!(!is_repo_name("web"));
        assert!(!is_repo_name("acme//web"));
        assert!(!is_repo_name("acme/.."));
        assert!(!is_repo_name("https://github.com/acme/web"));
    }
}
