//! API tokens: only a hash of each token is stored.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// A token row (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: i64,
    pub org_id: i64,
    pub org_slug: String,
    pub name: String,
    pub token_tail: String,
    pub scopes: Vec<String>,
    pub date_added: String,
    pub date_last_used: Option<String>,
    pub date_revoked: Option<String>,
}

const COLUMNS: &str = "t.id, t.org_id, o.slug, t.name, t.token_tail, t.scopes, t.date_added, \
     t.date_last_used, t.date_revoked";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Token> {
    let scopes: String = r.get(5)?;
    Ok(Token {
        id: r.get(0)?,
        org_id: r.get(1)?,
        org_slug: r.get(2)?,
        name: r.get(3)?,
        token_tail: r.get(4)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        date_added: r.get(6)?,
        date_last_used: r.get(7)?,
        date_revoked: r.get(8)?,
    })
}

pub fn insert(
    conn: &Connection,
    org_id: i64,
    name: &str,
    hash: &str,
    tail: &str,
    scopes: &[String],
    now: &str,
) -> Result<i64, StoreError> {
    let scopes = serde_json::to_string(scopes).unwrap_or_else(|_| "[]".into());
    conn.execute(
        "INSERT INTO api_tokens (org_id, name, token_hash, token_tail, scopes, date_added)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![org_id, name, hash, tail, scopes, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The live (not revoked) token with this hash.
pub fn active_by_hash(conn: &Connection, hash: &str) -> Result<Option<Token>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM api_tokens t JOIN organizations o ON o.id = t.org_id
             WHERE t.token_hash = ?1 AND t.date_revoked IS NULL"
        ))?
        .query_row([hash], from_row)
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<Token>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN organizations o ON o.id = t.org_id ORDER BY t.id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks a token revoked; `false` when there is no live token with that id.
pub fn revoke(conn: &Connection, id: i64, now: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE api_tokens SET date_revoked = ?2 WHERE id = ?1 AND date_revoked IS NULL",
        params![id, now],
    )?;
    Ok(n == 1)
}

/// Records use, at most once a minute per token so reads stay reads most of the time.
pub fn touch(conn: &Connection, id: i64, now: &str, minute_ago: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE api_tokens SET date_last_used = ?2
         WHERE id = ?1 AND (date_last_used IS NULL OR date_last_used < ?3)",
    )?
    .execute(params![id, now, minute_ago])?;
    Ok(())
}
