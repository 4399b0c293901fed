//! The durable inbox: every input's events, written before they are applied.
//!
//! Each event carries an idempotency key (a webhook delivery id, `repo:ref:old..new`, a bundle
//! checksum); a second event with the same key is dropped at insert, which is what makes "the
//! same tag seen by the hook, the watcher and reconcile" one release.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// A stored, not yet applied event.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub idem_key: String,
    pub source: String,
    pub kind: String,
    pub payload: String,
    pub attempts: i64,
}

/// Inserts an event; `false` when an event with the same key was already received.
pub fn insert(
    conn: &Connection,
    idem_key: &str,
    source: &str,
    kind: &str,
    payload: &str,
    now: &str,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO inbox (idem_key, source, kind, payload, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (idem_key) DO NOTHING",
        )?
        .execute(params![idem_key, source, kind, payload, now])?;
    Ok(n == 1)
}

/// The oldest pending event with fewer than `max_attempts` failed attempts.
pub fn next_pending(conn: &Connection, max_attempts: i64) -> Result<Option<Entry>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, idem_key, source, kind, payload, attempts FROM inbox
             WHERE processed_at IS NULL AND attempts < ?1 ORDER BY id LIMIT 1",
        )?
        .query_row([max_attempts], |r| {
            Ok(Entry {
                id: r.get(0)?,
                idem_key: r.get(1)?,
                source: r.get(2)?,
                kind: r.get(3)?,
                payload: r.get(4)?,
                attempts: r.get(5)?,
            })
        })
        .optional()?)
}

pub fn mark_done(conn: &Connection, id: i64, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE inbox SET processed_at = ?2, last_error = NULL WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

pub fn mark_failed(conn: &Connection, id: i64, error: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE inbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1")?
        .execute(params![id, error])?;
    Ok(())
}

/// Counts of (pending, failed-for-good) events.
pub fn counts(conn: &Connection, max_attempts: i64) -> Result<(i64, i64), StoreError> {
    Ok(conn.query_row(
        "SELECT
            (SELECT count(*) FROM inbox WHERE processed_at IS NULL AND attempts < ?1),
            (SELECT count(*) FROM inbox WHERE processed_at IS NULL AND attempts >= ?1)",
        [max_attempts],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
