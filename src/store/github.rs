//! GitHub's own rows: hooks that pinged, the outcome of each delivery, and the "commits
//! pending" mark a release carries while its commits could not be fetched from the API.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::StoreError;

/// A webhook configuration that has pinged shiplog.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    pub hook_id: String,
    pub target: Option<String>,
    pub hook_type: Option<String>,
    pub events: Vec<String>,
    pub content_type: Option<String>,
    pub zen: Option<String>,
    pub first_ping_at: String,
    pub last_ping_at: String,
}

/// Records a ping (the first one, or again) for the organization it is applied to.
pub fn upsert_hook(conn: &Connection, org_id: i64, hook: &Hook) -> Result<(), StoreError> {
    let events = serde_json::to_string(&hook.events).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached(
        "INSERT INTO github_hooks (hook_id, target, hook_type, events, content_type, zen, first_ping_at, last_ping_at, org_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
         ON CONFLICT (hook_id) DO UPDATE SET org_id = excluded.org_id, target = excluded.target, hook_type = excluded.hook_type,
            events = excluded.events, content_type = excluded.content_type, zen = excluded.zen,
            last_ping_at = excluded.last_ping_at",
    )?
    .execute(params![
        hook.hook_id,
        hook.target,
        hook.hook_type,
        events,
        hook.content_type,
        hook.zen,
        hook.last_ping_at,
        org_id
    ])?;
    Ok(())
}

/// The hooks that pinged on behalf of an organization, newest ping first.
pub fn hooks(conn: &Connection, org_id: i64) -> Result<Vec<Hook>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT hook_id, target, hook_type, events, content_type, zen, first_ping_at, last_ping_at
         FROM github_hooks WHERE org_id = ?1 ORDER BY last_ping_at DESC",
    )?;
    let rows = stmt.query_map([org_id], |r| {
        let events: String = r.get(3)?;
        Ok(Hook {
            hook_id: r.get(0)?,
            target: r.get(1)?,
            hook_type: r.get(2)?,
            events: serde_json::from_str(&events).unwrap_or_default(),
            content_type: r.get(4)?,
            zen: r.get(5)?,
            first_ping_at: r.get(6)?,
            last_ping_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What applying a delivery did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryLog {
    pub hook_id: String,
    pub delivery: String,
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub received_at: String,
    pub processed_at: String,
    /// `applied`, `ignored`, `pending` (will be retried) or `failed`.
    pub outcome: String,
    pub detail: String,
}

/// Records (or updates, on a retry) the outcome of a delivery applied to an organization.
pub fn record_delivery(conn: &Connection, org_id: i64, d: &DeliveryLog) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO github_deliveries (hook_id, delivery, event, action, repository, received_at, processed_at, outcome, detail, org_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (hook_id, delivery) DO UPDATE SET processed_at = excluded.processed_at,
            outcome = excluded.outcome, detail = excluded.detail",
    )?
    .execute(params![
        d.hook_id,
        d.delivery,
        d.event,
        d.action,
        d.repository,
        d.received_at,
        d.processed_at,
        d.outcome,
        d.detail,
        org_id
    ])?;
    Ok(())
}

/// An organization's newest `limit` delivery outcomes, newest first.
pub fn deliveries(
    conn: &Connection,
    org_id: i64,
    limit: usize,
) -> Result<Vec<DeliveryLog>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT hook_id, delivery, event, action, repository, received_at, processed_at, outcome, detail
         FROM github_deliveries WHERE org_id = ?1 ORDER BY processed_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![org_id, limit as i64], |r| {
        Ok(DeliveryLog {
            hook_id: r.get(0)?,
            delivery: r.get(1)?,
            event: r.get(2)?,
            action: r.get(3)?,
            repository: r.get(4)?,
            received_at: r.get(5)?,
            processed_at: r.get(6)?,
            outcome: r.get(7)?,
            detail: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks a release as waiting for its commits (`data.commitsPending`, `data.commitsError`).
pub fn mark_commits_pending(
    conn: &Connection,
    release_id: i64,
    error: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE releases SET data = json_set(CASE WHEN json_valid(data) THEN data ELSE '{}' END,
            '$.commitsPending', json('true'), '$.commitsError', ?2) WHERE id = ?1",
    )?
    .execute(params![release_id, error])?;
    Ok(())
}

/// Clears the mark once the commits are in.
pub fn clear_commits_pending(conn: &Connection, release_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE releases SET data = json_remove(data, '$.commitsPending', '$.commitsError')
         WHERE id = ?1 AND json_valid(data)",
    )?
    .execute([release_id])?;
    Ok(())
}

/// Whether any release of the organization carries the mark (a cheap check before looking
/// tag by tag).
pub fn any_commits_pending(conn: &Connection, org_id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM releases WHERE org_id = ?1 AND json_valid(data)
                AND json_extract(data, '$.commitsPending') = 1)",
        )?
        .query_row([org_id], |r| r.get::<_, bool>(0))?)
}

/// Whether a release carries the mark.
pub fn commits_pending(conn: &Connection, release_id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT json_extract(data, '$.commitsPending') FROM releases
             WHERE id = ?1 AND json_valid(data)",
        )?
        .query_row([release_id], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten()
        .unwrap_or(0)
        != 0)
}

/// Where an inbox event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    /// Never received.
    Absent,
    /// Received, not applied yet, attempts left.
    Waiting,
    /// The pipeline gave up on it.
    GaveUp,
    Processed,
}

/// The state of the inbox event with this (full, kind-prefixed) idempotency key.
pub fn inbox_state(
    conn: &Connection,
    idem_key: &str,
    max_attempts: i64,
) -> Result<InboxState, StoreError> {
    let row: Option<(Option<String>, i64)> = conn
        .prepare_cached("SELECT processed_at, attempts FROM inbox WHERE idem_key = ?1")?
        .query_row([idem_key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        None => InboxState::Absent,
        Some((Some(_), _)) => InboxState::Processed,
        Some((None, attempts)) if attempts >= max_attempts => InboxState::GaveUp,
        Some((None, _)) => InboxState::Waiting,
    })
}
