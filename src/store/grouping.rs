//! The hashes an issue answers to and the users it has seen (migration 0015).
//!
//! See `model::grouping` for what a hash is and why an issue may answer to several, of
//! several grouping versions.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params, params_from_iter};

use super::StoreError;
use crate::model::grouping::GroupHash;

/// The issue of the first of `hashes` that a project knows, and the grouping version of that
/// hash, as `(issue id, version)`. Hashes past their `expires` (an older grouping's, after
/// its transition) are ignored. One query whatever the number of hashes.
pub fn issue_for_hashes(
    conn: &Connection,
    project_id: i64,
    hashes: &[GroupHash],
    now: &str,
) -> Result<Option<(i64, i64)>, StoreError> {
    let marks: Vec<String> = (0..hashes.len()).map(|i| format!("?{}", i + 3)).collect();
    let sql = format!(
        "SELECT hash, issue_id, grouping_version FROM issue_hashes
         WHERE project_id = ?1 AND hash IN ({}) AND (expires IS NULL OR expires > ?2)",
        marks.join(", ")
    );
    let mut args = vec![
        SqlValue::Integer(project_id),
        SqlValue::Text(now.to_string()),
    ];
    args.extend(hashes.iter().map(|h| SqlValue::Text(h.hash.clone())));
    let found: Vec<(String, i64, i64)> = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(args.iter()), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(hashes.iter().find_map(|h| {
        found
            .iter()
            .find(|(hash, _, _)| *hash == h.hash)
            .map(|(_, issue, version)| (*issue, *version))
    }))
}

/// Makes an issue answer to a hash for good (kept as is when the project already has it).
pub fn add_hash(
    conn: &Connection,
    project_id: i64,
    hash: &GroupHash,
    issue_id: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO issue_hashes (project_id, hash, issue_id, grouping_version)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )?
    .execute(params![project_id, hash.hash, issue_id, hash.version])?;
    Ok(())
}

/// Counts a user (their `user` tag value) for an issue, once.
pub fn add_user(conn: &Connection, issue_id: i64, tag: &str) -> Result<(), StoreError> {
    let added = conn
        .prepare_cached(
            "INSERT INTO issue_users (issue_id, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![issue_id, tag])?;
    if added > 0 {
        conn.prepare_cached("UPDATE issues SET user_count = user_count + 1 WHERE id = ?1")?
            .execute([issue_id])?;
    }
    Ok(())
}
