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

/// Inserts an event; `None` when an event with the same key was already received.
pub fn insert(
    conn: &Connection,
    idem_key: &str,
    source: &str,
    kind: &str,
    payload: &str,
    now: &str,
) -> Result<Option<i64>, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO inbox (idem_key, source, kind, payload, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (idem_key) DO NOTHING",
        )?
        .execute(params![idem_key, source, kind, payload, now])?;
    Ok((n == 1).then(|| conn.last_insert_rowid()))
}

/// The oldest pending event that is due (`not_before` passed) and has attempts left.
pub fn next_due(
    conn: &Connection,
    now: &str,
    max_attempts: i64,
) -> Result<Option<Entry>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, idem_key, source, kind, payload, attempts FROM inbox
             WHERE processed_at IS NULL AND attempts < ?2 AND (not_before IS NULL OR not_before <= ?1)
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![now, max_attempts], |r| {
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

/// When the next retry of a failed event is due, if any is waiting.
pub fn next_retry_at(conn: &Connection, max_attempts: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT min(not_before) FROM inbox
             WHERE processed_at IS NULL AND attempts < ?1 AND not_before IS NOT NULL",
        )?
        .query_row([max_attempts], |r| r.get(0))?)
}

pub fn mark_done(conn: &Connection, id: i64, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE inbox SET processed_at = ?2, last_error = NULL WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Records a failed attempt; the event is retried after `not_before`, or never again when
/// `give_up` is set.
pub fn mark_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    not_before: &str,
    give_up: Option<i64>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE inbox SET attempts = COALESCE(?4, attempts + 1), last_error = ?2, not_before = ?3
         WHERE id = ?1",
    )?
    .execute(params![id, error, not_before, give_up])?;
    Ok(())
}

/// Counts of events by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub pending: i64,
    pub failed: i64,
    pub processed: i64,
}

pub fn counts(conn: &Connection, max_attempts: i64) -> Result<Counts, StoreError> {
    Ok(conn.query_row(
        "SELECT
            (SELECT count(*) FROM inbox WHERE processed_at IS NULL AND attempts < ?1),
            (SELECT count(*) FROM inbox WHERE processed_at IS NULL AND attempts >= ?1),
            (SELECT count(*) FROM inbox WHERE processed_at IS NOT NULL)",
        [max_attempts],
        |r| {
            Ok(Counts {
                pending: r.get(0)?,
                failed: r.get(1)?,
                processed: r.get(2)?,
            })
        },
    )?)
}

/// Forgets processed events whose idempotency key starts with `prefix`, so that an identical
/// event received later is applied again (a tag deleted and re-created on the same commit).
pub fn forget_processed(conn: &Connection, prefix: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM inbox WHERE processed_at IS NOT NULL
             AND substr(idem_key, 1, length(?1)) = ?1",
        )?
        .execute([prefix])?)
}

/// What waits in the inbox, for the daemon's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// Events not yet applied that have attempts left.
    pub pending: i64,
    /// Events that gave up.
    pub failed: i64,
    /// When the oldest pending event was received.
    pub oldest_received: Option<String>,
}

pub fn backlog(conn: &Connection, max_attempts: i64) -> Result<Backlog, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE attempts < ?1),
                    count(*) FILTER (WHERE attempts >= ?1),
                    min(received_at) FILTER (WHERE attempts < ?1)
               FROM inbox WHERE processed_at IS NULL",
        )?
        .query_row([max_attempts], |r| {
            Ok(Backlog {
                pending: r.get(0)?,
                failed: r.get(1)?,
                oldest_received: r.get(2)?,
            })
        })?)
}
