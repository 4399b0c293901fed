//! The notification targets and the durable outbox of deliveries (`notification_*` tables).

use rusqlite::{Connection, params};

use super::StoreError;

/// A configured target as the outbox knows it: no URL, no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key: String,
    pub kind: String,
    /// Event types it wants; empty means all.
    pub events: Vec<String>,
    /// Environments it wants; empty means all.
    pub environments: Vec<String>,
}

/// Replaces the targets with the config's.
pub fn replace_targets(conn: &Connection, targets: &[Target]) -> Result<(), StoreError> {
    conn.execute("DELETE FROM notification_targets", [])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO notification_targets (key, kind, events, environments) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for t in targets {
        insert.execute(params![
            t.key,
            t.kind,
            serde_json::to_string(&t.events).unwrap_or_else(|_| "[]".into()),
            serde_json::to_string(&t.environments).unwrap_or_else(|_| "[]".into()),
        ])?;
    }
    Ok(())
}

pub fn targets(conn: &Connection) -> Result<Vec<Target>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT key, kind, events, environments FROM notification_targets")?;
    let rows = stmt.query_map([], |r| {
        let events: String = r.get(2)?;
        let environments: String = r.get(3)?;
        Ok(Target {
            key: r.get(0)?,
            kind: r.get(1)?,
            events: serde_json::from_str(&events).unwrap_or_default(),
            environments: serde_json::from_str(&environments).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A delivery to write.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub org_id: i64,
    pub target: &'a str,
    pub event_type: &'a str,
    pub subject: &'a str,
    pub created: &'a str,
}

pub fn insert(conn: &Connection, d: &NewDelivery<'_>) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO notification_deliveries (org_id, target, event_type, subject, created, next_attempt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![d.org_id, d.target, d.event_type, d.subject, d.created])?;
    Ok(conn.last_insert_rowid())
}

/// Whether a delivery of one of `event_types` about `subject` to `target` exists.
pub fn exists(
    conn: &Connection,
    target: &str,
    subject: &str,
    event_types: &[&str],
) -> Result<bool, StoreError> {
    let types = serde_json::to_string(event_types).unwrap_or_else(|_| "[]".into());
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM notification_deliveries WHERE target = ?1 AND subject = ?2
             AND event_type IN (SELECT value FROM json_each(?3)))",
        )?
        .query_row(params![target, subject, types], |r| r.get(0))?)
}

/// A delivery row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub org_id: i64,
    pub target: String,
    pub event_type: String,
    pub subject: String,
    pub created: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt: String,
    pub last_error: Option<String>,
    pub finished: Option<String>,
}

const COLUMNS: &str = "id, org_id, target, event_type, subject, created, state, attempts, \
                       next_attempt, last_error, finished";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        org_id: r.get(1)?,
        target: r.get(2)?,
        event_type: r.get(3)?,
        subject: r.get(4)?,
        created: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        next_attempt: r.get(8)?,
        last_error: r.get(9)?,
        finished: r.get(10)?,
    })
}

/// Pending deliveries whose next attempt is due, oldest first.
pub fn due(conn: &Connection, now: &str, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM notification_deliveries
         WHERE state = 'pending' AND next_attempt <= ?1 ORDER BY next_attempt, id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now, limit as i64], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The most recent deliveries, newest first; only failed ones when `failed_only`.
pub fn recent(
    conn: &Connection,
    limit: usize,
    failed_only: bool,
) -> Result<Vec<Delivery>, StoreError> {
    let filter = if failed_only {
        "WHERE state = 'failed'"
    } else {
        ""
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM notification_deliveries {filter} ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map(params![limit as i64], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks a delivery sent.
pub fn delivered(conn: &Connection, id: i64, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE notification_deliveries
         SET state = 'delivered', attempts = attempts + 1, last_error = NULL, finished = ?2
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// Records a failed attempt: another at `next_attempt`, or none (`failed`) when it is `None`.
pub fn attempt_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    next_attempt: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    match next_attempt {
        Some(next) => conn
            .prepare_cached(
                "UPDATE notification_deliveries
                 SET attempts = attempts + 1, last_error = ?2, next_attempt = ?3 WHERE id = ?1",
            )?
            .execute(params![id, error, next])?,
        None => conn
            .prepare_cached(
                "UPDATE notification_deliveries
                 SET state = 'failed', attempts = attempts + 1, last_error = ?2, finished = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, error, now])?,
    };
    Ok(())
}

/// (pending, failed) delivery counts, for the metrics.
pub fn counts(conn: &Connection) -> Result<(i64, i64), StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'failed'), 0)
         FROM notification_deliveries",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// How many distinct files the release's commits changed (the deploy email's "files changed").
pub fn release_files_changed(conn: &Connection, release_id: i64) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT count(DISTINCT f.filename) FROM release_commits rc
             JOIN commit_file_changes f ON f.commit_id = rc.commit_id WHERE rc.release_id = ?1",
        )?
        .query_row([release_id], |r| r.get(0))?)
}
