//! The web pages' sign-in links and browser sessions. Only hashes of their secrets are stored.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// A live browser session.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSession {
    pub id: i64,
    pub org_id: i64,
    pub org_slug: String,
    pub origin: String,
    pub date_created: String,
    pub date_expires: String,
}

pub fn insert_link(
    conn: &Connection,
    org_id: i64,
    hash: &str,
    now: &str,
    expires: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO web_signin_links (org_id, secret_hash, date_created, date_expires)
         VALUES (?1, ?2, ?3, ?4)",
        params![org_id, hash, now, expires],
    )?;
    Ok(())
}

/// Marks an unused, unexpired link used and returns its organization; `None` for a link that
/// is unknown, used or expired. One UPDATE, so two requests racing with one link cannot both
/// win.
pub fn consume_link(conn: &Connection, hash: &str, now: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "UPDATE web_signin_links SET date_used = ?2
             WHERE secret_hash = ?1 AND date_used IS NULL AND date_expires > ?2
             RETURNING org_id",
            params![hash, now],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn insert_session(
    conn: &Connection,
    org_id: i64,
    hash: &str,
    origin: &str,
    now: &str,
    expires: &str,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO web_sessions (org_id, secret_hash, origin, date_created, date_expires)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![org_id, hash, origin, now, expires],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The unexpired session with this hash.
pub fn session_by_hash(
    conn: &Connection,
    hash: &str,
    now: &str,
) -> Result<Option<WebSession>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT s.id, s.org_id, o.slug, s.origin, s.date_created, s.date_expires
             FROM web_sessions s JOIN organizations o ON o.id = s.org_id
             WHERE s.secret_hash = ?1 AND s.date_expires > ?2",
        )?
        .query_row(params![hash, now], |r| {
            Ok(WebSession {
                id: r.get(0)?,
                org_id: r.get(1)?,
                org_slug: r.get(2)?,
                origin: r.get(3)?,
                date_created: r.get(4)?,
                date_expires: r.get(5)?,
            })
        })
        .optional()?)
}

pub fn delete_session(conn: &Connection, hash: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM web_sessions WHERE secret_hash = ?1", [hash])? > 0)
}

/// Deletes expired sessions and links that can no longer be used.
pub fn prune(conn: &Connection, now: &str) -> Result<usize, StoreError> {
    let a = conn.execute("DELETE FROM web_sessions WHERE date_expires <= ?1", [now])?;
    let b = conn.execute(
        "DELETE FROM web_signin_links WHERE date_expires <= ?1",
        [now],
    )?;
    Ok(a + b)
}
