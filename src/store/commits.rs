//! Commits, their authors and file changes, and which commits belong to which release
//! (sentry-semantics.md §3.1). The rules that fill these tables live in `core::commit`.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::StoreError;
use crate::model::commit::FileChange;

/// A commit author row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub id: i64,
    pub name: Option<String>,
    pub email: String,
}

/// A commit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCommit {
    pub id: i64,
    pub org_id: i64,
    pub repository_id: i64,
    pub key: String,
    pub author_id: Option<i64>,
    pub message: Option<String>,
    pub date_added: String,
    pub timestamp: Option<String>,
}

const COMMIT_COLUMNS: &str =
    "c.id, c.org_id, c.repository_id, c.key, c.author_id, c.message, c.date_added, c.timestamp";

fn commit_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredCommit> {
    Ok(StoredCommit {
        id: r.get(0)?,
        org_id: r.get(1)?,
        repository_id: r.get(2)?,
        key: r.get(3)?,
        author_id: r.get(4)?,
        message: r.get(5)?,
        date_added: r.get(6)?,
        timestamp: r.get(7)?,
    })
}

/// The author with this (already lowercased) email, created if new; its name is updated when a
/// different one is given. Returns the author id.
pub fn author_get_or_create(
    conn: &Connection,
    org_id: i64,
    email: &str,
    name: Option<&str>,
) -> Result<i64, StoreError> {
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO commit_authors (org_id, email, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (org_id, email) DO UPDATE SET name = COALESCE(excluded.name, name)
             RETURNING id",
        )?
        .query_row(params![org_id, email, name], |r| r.get(0))?;
    Ok(id)
}

/// What [`commit_upsert`] writes. `None` fields leave an existing commit's value alone.
#[derive(Debug, Clone)]
pub struct CommitRow<'a> {
    pub org_id: i64,
    pub repository_id: i64,
    pub key: &'a str,
    pub author_id: Option<i64>,
    pub message: Option<&'a str>,
    /// Author time in UTC, canonical form.
    pub date_added: Option<&'a str>,
    /// Author time as given.
    pub timestamp: Option<&'a str>,
    /// `date_added` of a new commit with no time of its own.
    pub now: &'a str,
}

/// Creates the commit or updates the given fields of the existing one (Sentry's get_or_create
/// then update); returns its id.
pub fn commit_upsert(conn: &Connection, c: &CommitRow<'_>) -> Result<i64, StoreError> {
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO commits (org_id, repository_id, key, author_id, message, date_added, timestamp)
             VALUES (?1, ?2, ?3, ?4, ?5, COALESCE(?6, ?8), ?7)
             ON CONFLICT (repository_id, key) DO UPDATE SET
                 author_id = COALESCE(excluded.author_id, author_id),
                 message = COALESCE(excluded.message, message),
                 date_added = COALESCE(?6, date_added),
                 timestamp = COALESCE(excluded.timestamp, timestamp)
             RETURNING id",
        )?
        .query_row(
            params![
                c.org_id,
                c.repository_id,
                c.key,
                c.author_id,
                c.message,
                c.date_added,
                c.timestamp,
                c.now
            ],
            |r| r.get(0),
        )?;
    Ok(id)
}

/// The commit with this key in a repository, created with only its key if new (Sentry's
/// `Commit.get_or_create(key=...)` for head commits). Returns its id.
pub fn commit_get_or_create_key(
    conn: &Connection,
    org_id: i64,
    repository_id: i64,
    key: &str,
    now: &str,
) -> Result<i64, StoreError> {
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO commits (org_id, repository_id, key, date_added) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (repository_id, key) DO UPDATE SET key = key
             RETURNING id",
        )?
        .query_row(params![org_id, repository_id, key, now], |r| r.get(0))?;
    Ok(id)
}

/// Adds file changes to a commit; a path it already has is left as it is.
pub fn add_file_changes(
    conn: &Connection,
    commit_id: i64,
    changes: &[FileChange],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO commit_file_changes (commit_id, filename, type) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
    )?;
    for change in changes {
        stmt.execute(params![commit_id, change.path, change.kind.code()])?;
    }
    Ok(())
}

/// A commit's file changes as `(filename, type)`, by filename.
pub fn file_changes(
    conn: &Connection,
    commit_id: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT filename, type FROM commit_file_changes WHERE commit_id = ?1 ORDER BY filename",
    )?;
    let rows = stmt.query_map([commit_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes every commit of a release (the commits themselves stay).
pub fn clear_release_commits(conn: &Connection, release_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM release_commits WHERE release_id = ?1")?
        .execute([release_id])?;
    Ok(())
}

/// Adds a commit to a release at `position` (0 = newest); `false` when the release already
/// has it.
pub fn add_release_commit(
    conn: &Connection,
    release_id: i64,
    commit_id: i64,
    position: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO release_commits (release_id, commit_id, position) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![release_id, commit_id, position])?;
    Ok(n == 1)
}

/// The distinct authors of a release's commits, newest commit first.
pub fn release_author_ids(conn: &Connection, release_id: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.author_id FROM release_commits rc JOIN commits c ON c.id = rc.commit_id
         WHERE rc.release_id = ?1 AND c.author_id IS NOT NULL
         GROUP BY c.author_id ORDER BY min(rc.position)",
    )?;
    let rows = stmt.query_map([release_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets the materialised commit columns of a release. `authors` is the JSON array text.
pub fn set_release_commit_fields(
    conn: &Connection,
    release_id: i64,
    commit_count: i64,
    last_commit_id: Option<i64>,
    authors: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE releases SET commit_count = ?2, last_commit_id = ?3, authors = ?4 WHERE id = ?1",
    )?
    .execute(params![release_id, commit_count, last_commit_id, authors])?;
    Ok(())
}

/// Sets the head commit of a repository in a release, unless one is set; `true` when set.
pub fn insert_head_commit_if_absent(
    conn: &Connection,
    release_id: i64,
    repository_id: i64,
    commit_id: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO release_head_commits (release_id, repository_id, commit_id)
             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?
        .execute(params![release_id, repository_id, commit_id])?;
    Ok(n == 1)
}

/// Sets (or replaces) the head commit of a repository in a release.
pub fn set_head_commit(
    conn: &Connection,
    release_id: i64,
    repository_id: i64,
    commit_id: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO release_head_commits (release_id, repository_id, commit_id)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (release_id, repository_id) DO UPDATE SET commit_id = excluded.commit_id",
    )?
    .execute(params![release_id, repository_id, commit_id])?;
    Ok(())
}

/// The key (sha) of a release's head commit for a repository.
pub fn head_commit_key(
    conn: &Connection,
    release_id: i64,
    repository_id: i64,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT c.key FROM release_head_commits h JOIN commits c ON c.id = h.commit_id
             WHERE h.release_id = ?1 AND h.repository_id = ?2",
        )?
        .query_row(params![release_id, repository_id], |r| r.get(0))
        .optional()?)
}

/// Removes every head commit of a release.
pub fn clear_head_commits(conn: &Connection, release_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM release_head_commits WHERE release_id = ?1")?
        .execute([release_id])?;
    Ok(())
}

/// Commits by id.
pub fn by_ids(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, StoredCommit>, StoreError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COMMIT_COLUMNS} FROM commits c WHERE c.id IN ({marks})"
        ))?;
        for c in stmt.query_map(params_from_iter(chunk.iter()), commit_from_row)? {
            let c = c?;
            out.insert(c.id, c);
        }
    }
    Ok(out)
}

/// Authors by id.
pub fn authors_by_ids(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, Author>, StoreError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, name, email FROM commit_authors WHERE id IN ({marks})"
        ))?;
        let rows = stmt.query_map(params_from_iter(chunk.iter()), |r| {
            Ok(Author {
                id: r.get(0)?,
                name: r.get(1)?,
                email: r.get(2)?,
            })
        })?;
        for a in rows {
            let a = a?;
            out.insert(a.id, a);
        }
    }
    Ok(out)
}

/// A page of a release's commits in list order (position ascending, newest first), with their
/// positions: forward, the rows at positions `>= from`, skipping `offset`; backward, the rows
/// nearest below `from` (skipping `offset`), still returned in list order. At most
/// `limit + 1` rows, so the caller can tell whether more follow.
pub fn release_commits_page(
    conn: &Connection,
    release_id: i64,
    from: i64,
    offset: usize,
    limit: usize,
    backward: bool,
) -> Result<Vec<(i64, StoredCommit)>, StoreError> {
    let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, StoredCommit)> {
        Ok((r.get(8)?, commit_from_row(r)?))
    };
    let sql = if backward {
        format!(
            "SELECT {COMMIT_COLUMNS}, rc.position FROM release_commits rc
             JOIN commits c ON c.id = rc.commit_id
             WHERE rc.release_id = ?1 AND rc.position < ?2
             ORDER BY rc.position DESC LIMIT ?3 OFFSET ?4"
        )
    } else {
        format!(
            "SELECT {COMMIT_COLUMNS}, rc.position FROM release_commits rc
             JOIN commits c ON c.id = rc.commit_id
             WHERE rc.release_id = ?1 AND rc.position >= ?2
             ORDER BY rc.position LIMIT ?3 OFFSET ?4"
        )
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows: Vec<(i64, StoredCommit)> = stmt
        .query_map(
            params![release_id, from, limit as i64 + 1, offset as i64],
            map,
        )?
        .collect::<Result<_, _>>()?;
    if backward {
        rows.reverse();
    }
    Ok(rows)
}

/// `true` when the release has a commit at a position below `position`.
pub fn has_commit_before(
    conn: &Connection,
    release_id: i64,
    position: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM release_commits WHERE release_id = ?1 AND position < ?2)",
        )?
        .query_row(params![release_id, position], |r| r.get(0))?)
}

/// `true` when the release has a commit at a position above `position`.
pub fn has_commit_after(
    conn: &Connection,
    release_id: i64,
    position: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM release_commits WHERE release_id = ?1 AND position > ?2)",
        )?
        .query_row(params![release_id, position], |r| r.get(0))?)
}

fn project_filter(project_ids: &[i64], first_param: usize) -> String {
    if project_ids.is_empty() {
        "EXISTS (SELECT 1 FROM release_projects rp WHERE rp.release_id = r.id)".to_string()
    } else {
        let marks: Vec<String> = (0..project_ids.len())
            .map(|i| format!("?{}", first_param + i))
            .collect();
        format!(
            "EXISTS (SELECT 1 FROM release_projects rp WHERE rp.release_id = r.id
                 AND rp.project_id IN ({}))",
            marks.join(", ")
        )
    }
}

/// Sentry's `prev_release` for set_refs (sentry-semantics.md §3.3): the most recent other
/// release of the organization sharing one of `project_ids`, by
/// `COALESCE(date_released, date_added)`. `None` when `project_ids` is empty.
pub fn prev_release_sharing_projects(
    conn: &Connection,
    org_id: i64,
    version: &str,
    project_ids: &[i64],
) -> Result<Option<i64>, StoreError> {
    if project_ids.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT r.id FROM releases r
         WHERE r.org_id = ?1 AND r.version <> ?2 AND {}
         ORDER BY COALESCE(r.date_released, r.date_added) DESC, r.id DESC LIMIT 1",
        project_filter(project_ids, 3)
    );
    let mut values: Vec<rusqlite::types::Value> = vec![org_id.into(), version.to_string().into()];
    values.extend(
        project_ids
            .iter()
            .map(|id| rusqlite::types::Value::from(*id)),
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(values), |r| r.get(0))
        .optional()?)
}

/// The newest release other than `release_id` that has commits, belongs to one of
/// `project_ids` (any project when empty) and whose `COALESCE(date_released, date_added)` is
/// not after `date`.
pub fn previous_with_commits(
    conn: &Connection,
    org_id: i64,
    release_id: i64,
    date: &str,
    project_ids: &[i64],
) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "SELECT r.id FROM releases r
         WHERE r.org_id = ?1 AND r.id <> ?2 AND r.last_commit_id IS NOT NULL
           AND COALESCE(r.date_released, r.date_added) <= ?3 AND {}
         ORDER BY COALESCE(r.date_released, r.date_added) DESC, r.id DESC LIMIT 1",
        project_filter(project_ids, 4)
    );
    let mut values: Vec<rusqlite::types::Value> =
        vec![org_id.into(), release_id.into(), date.to_string().into()];
    values.extend(
        project_ids
            .iter()
            .map(|id| rusqlite::types::Value::from(*id)),
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(values), |r| r.get(0))
        .optional()?)
}
