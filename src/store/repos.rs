//! Repositories: where commits come from (sentry-semantics.md §3.1).
//!
//! A repository row is created by the config (`repositories:`), by `shiplog repos add`, or
//! automatically when set-commits names a repository shiplog has never seen (sentry-cli's
//! `--local` mode sends the remote name, e.g. `origin`). Rows are never deleted while commits
//! point at them; a repository that leaves the config is only hidden.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::StoreError;

/// Provider of a repository with a local `path`.
pub const PROVIDER_GIT: &str = "git";
/// Provider of a repository reached through GitHub's API.
pub const PROVIDER_GITHUB: &str = "integrations:github";
/// Provider of a repository auto-created by set-commits (Sentry's null provider).
pub const PROVIDER_NONE: &str = "none";

pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_HIDDEN: &str = "hidden";

/// Who made a repository row, which decides who may change or hide it.
pub const ORIGIN_CONFIG: &str = "config";
pub const ORIGIN_CLI: &str = "cli";
pub const ORIGIN_API: &str = "api";

/// A repository row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub url: Option<String>,
    pub provider: String,
    pub path: Option<String>,
    pub external: Option<String>,
    pub status: String,
    pub date_added: String,
}

const COLUMNS: &str = "id, org_id, name, url, provider, path, external, status, date_added";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Repository> {
    Ok(Repository {
        id: r.get(0)?,
        org_id: r.get(1)?,
        name: r.get(2)?,
        url: r.get(3)?,
        provider: r.get(4)?,
        path: r.get(5)?,
        external: r.get(6)?,
        status: r.get(7)?,
        date_added: r.get(8)?,
    })
}

/// What [`upsert`] writes.
#[derive(Debug, Clone)]
pub struct NewRepository<'a> {
    pub org_id: i64,
    pub name: &'a str,
    pub url: Option<&'a str>,
    pub provider: &'a str,
    pub path: Option<&'a str>,
    pub external: Option<&'a str>,
    pub origin: &'a str,
    pub initial_depth: Option<i64>,
    pub date_added: &'a str,
}

/// Creates the repository, or updates every field of the existing one with this name and makes
/// it active again. `date_added` of an existing row is kept.
pub fn upsert(conn: &Connection, new: &NewRepository<'_>) -> Result<Repository, StoreError> {
    conn.prepare_cached(
        "INSERT INTO repositories (org_id, name, url, provider, path, external, status, date_added,
             origin, initial_depth)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8, ?9)
         ON CONFLICT (org_id, name) DO UPDATE SET url = excluded.url,
             provider = excluded.provider, path = excluded.path, external = excluded.external,
             status = 'active', origin = excluded.origin, initial_depth = excluded.initial_depth",
    )?
    .execute(params![
        new.org_id,
        new.name,
        new.url,
        new.provider,
        new.path,
        new.external,
        new.date_added,
        new.origin,
        new.initial_depth,
    ])?;
    by_name(conn, new.org_id, new.name)?
        .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

/// The repository with this name, whatever its status, or a new one with Sentry's null
/// provider (what set-commits does for a name it has not seen).
pub fn get_or_create(
    conn: &Connection,
    org_id: i64,
    name: &str,
    now: &str,
) -> Result<Repository, StoreError> {
    if let Some(repo) = by_name(conn, org_id, name)? {
        return Ok(repo);
    }
    conn.prepare_cached(
        "INSERT INTO repositories (org_id, name, provider, status, date_added, origin)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
    )?
    .execute(params![org_id, name, PROVIDER_NONE, now, ORIGIN_API])?;
    by_name(conn, org_id, name)?.ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

pub fn by_name(
    conn: &Connection,
    org_id: i64,
    name: &str,
) -> Result<Option<Repository>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM repositories WHERE org_id = ?1 AND name = ?2"
        ))?
        .query_row(params![org_id, name], from_row)
        .optional()?)
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<Repository>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM repositories WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// Several repositories by id.
pub fn by_ids(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, Repository>, StoreError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM repositories WHERE id IN ({marks})"
        ))?;
        for repo in stmt.query_map(params_from_iter(chunk.iter()), from_row)? {
            let repo = repo?;
            out.insert(repo.id, repo);
        }
    }
    Ok(out)
}

/// Every repository of an organization, by name.
pub fn list(conn: &Connection, org_id: i64) -> Result<Vec<Repository>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM repositories WHERE org_id = ?1 ORDER BY name, id"
    ))?;
    let rows = stmt.query_map([org_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Which statuses a page of repositories shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Active,
    NotActive,
    Any,
}

/// A page of repositories ordered by name; at most `limit + 1` rows so the caller can tell
/// whether another page follows. `query` matches names case-insensitively anywhere.
pub fn page(
    conn: &Connection,
    org_id: i64,
    status: StatusFilter,
    query: Option<&str>,
    limit: usize,
    offset: usize,
) -> Result<Vec<Repository>, StoreError> {
    let status_sql = match status {
        StatusFilter::Active => "AND status = 'active'",
        StatusFilter::NotActive => "AND status <> 'active'",
        StatusFilter::Any => "",
    };
    let pattern = query.map(|q| {
        let mut escaped = String::with_capacity(q.len() + 2);
        escaped.push('%');
        for c in q.chars() {
            if matches!(c, '%' | '_' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        escaped.push('%');
        escaped
    });
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM repositories
         WHERE org_id = ?1 {status_sql} AND (?2 IS NULL OR name LIKE ?2 ESCAPE '\\')
         ORDER BY name, id LIMIT ?3 OFFSET ?4"
    ))?;
    let rows = stmt.query_map(
        params![org_id, pattern, limit as i64 + 1, offset as i64],
        from_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Who made the row: [`ORIGIN_CONFIG`], [`ORIGIN_CLI`] or [`ORIGIN_API`].
pub fn origin(conn: &Connection, id: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT origin FROM repositories WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

/// How many commits a range without a start gets for this repository, when configured.
pub fn initial_depth(conn: &Connection, id: i64) -> Result<Option<usize>, StoreError> {
    let depth: Option<i64> = conn
        .prepare_cached("SELECT initial_depth FROM repositories WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(depth.and_then(|d| usize::try_from(d).ok()))
}

pub fn set_status(conn: &Connection, id: i64, status: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE repositories SET status = ?2 WHERE id = ?1")?
        .execute(params![id, status])?;
    Ok(())
}

/// Hides the config-made repositories of an organization whose names are not in `keep`.
pub fn hide_config_repos_except(
    conn: &Connection,
    org_id: i64,
    keep: &[&str],
) -> Result<usize, StoreError> {
    let mut hidden = 0;
    for repo in list(conn, org_id)? {
        if repo.status == STATUS_ACTIVE
            && !keep.contains(&repo.name.as_str())
            && origin(conn, repo.id)?.as_deref() == Some(ORIGIN_CONFIG)
        {
            set_status(conn, repo.id, STATUS_HIDDEN)?;
            hidden += 1;
        }
    }
    Ok(hidden)
}

/// `true` when commits or release head commits point at the repository.
pub fn is_referenced(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM commits WHERE repository_id = ?1)
                 OR EXISTS (SELECT 1 FROM release_head_commits WHERE repository_id = ?1)",
        )?
        .query_row([id], |r| r.get(0))?)
}

/// Deletes a repository nothing refers to (see [`is_referenced`]).
pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM repositories WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
