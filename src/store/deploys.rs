//! Deploys, environments and the per-(release, project, environment) latest-deploy pointers.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::StoreError;

/// A deploy joined with its environment's name.
#[derive(Debug, Clone, PartialEq)]
pub struct Deploy {
    pub id: i64,
    pub release_id: i64,
    pub environment: String,
    pub name: Option<String>,
    pub url: Option<String>,
    pub date_started: Option<String>,
    pub date_finished: String,
}

const COLUMNS: &str = "d.id, d.release_id, e.name, d.name, d.url, d.date_started, d.date_finished";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Deploy> {
    Ok(Deploy {
        id: r.get(0)?,
        release_id: r.get(1)?,
        environment: r.get(2)?,
        name: r.get(3)?,
        url: r.get(4)?,
        date_started: r.get(5)?,
        date_finished: r.get(6)?,
    })
}

/// Returns the environment's id, creating it on first use (Sentry's get_or_create).
pub fn ensure_environment(conn: &Connection, org_id: i64, name: &str) -> Result<i64, StoreError> {
    // Looked up first: every ingested event names its environment, which nearly always exists.
    if let Some(id) = conn
        .prepare_cached("SELECT id FROM environments WHERE org_id = ?1 AND name = ?2")?
        .query_row(params![org_id, name], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    conn.prepare_cached(
        "INSERT INTO environments (org_id, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?
    .execute(params![org_id, name])?;
    Ok(conn
        .prepare_cached("SELECT id FROM environments WHERE org_id = ?1 AND name = ?2")?
        .query_row(params![org_id, name], |r| r.get(0))?)
}

/// What a new deploy records.
#[derive(Debug, Clone)]
pub struct NewDeploy<'a> {
    pub org_id: i64,
    pub release_id: i64,
    pub environment_id: i64,
    pub name: Option<&'a str>,
    pub url: Option<&'a str>,
    pub date_started: Option<&'a str>,
    pub date_finished: &'a str,
}

/// Inserts the deploy, bumps the release's counters and points each project's
/// (release, project, environment) row at it. Returns the deploy id.
pub fn insert(
    conn: &Connection,
    d: &NewDeploy<'_>,
    project_ids: &[i64],
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO deploys (org_id, release_id, environment_id, name, url, date_started, date_finished)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        d.org_id,
        d.release_id,
        d.environment_id,
        d.name,
        d.url,
        d.date_started,
        d.date_finished
    ])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached(
        "UPDATE releases SET total_deploys = total_deploys + 1, last_deploy_id = ?2 WHERE id = ?1",
    )?
    .execute(params![d.release_id, id])?;
    let mut rpe = conn.prepare_cached(
        "INSERT INTO release_project_environments (release_id, project_id, environment_id, first_seen, last_deploy_id)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (release_id, project_id, environment_id) DO UPDATE SET last_deploy_id = excluded.last_deploy_id",
    )?;
    for project_id in project_ids {
        rpe.execute(params![
            d.release_id,
            project_id,
            d.environment_id,
            d.date_finished,
            id
        ])?;
    }
    Ok(id)
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<Deploy>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM deploys d JOIN environments e ON e.id = d.environment_id WHERE d.id = ?1"
        ))?
        .query_row([id], from_row)
        .optional()?)
}

/// Sentry's deploy list: the deploys that are the latest for some (project, environment) of the
/// release, newest finished first. Restricted to `project_ids` when given.
pub fn latest_for_release(
    conn: &Connection,
    release_id: i64,
    project_ids: &[i64],
) -> Result<Vec<Deploy>, StoreError> {
    let mut params: Vec<i64> = vec![release_id];
    let project_filter = if project_ids.is_empty() {
        String::new()
    } else {
        params.extend_from_slice(project_ids);
        let marks: Vec<String> = (2..=params.len()).map(|i| format!("?{i}")).collect();
        format!(" AND rpe.project_id IN ({})", marks.join(", "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM deploys d JOIN environments e ON e.id = d.environment_id
         WHERE d.id IN (SELECT rpe.last_deploy_id FROM release_project_environments rpe
                        WHERE rpe.release_id = ?1{project_filter})
         ORDER BY d.date_finished DESC, d.id DESC"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Loads several deploys by id at once (for `lastDeploy` on a page of releases).
pub fn by_ids(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, Deploy>, StoreError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT {COLUMNS} FROM deploys d JOIN environments e ON e.id = d.environment_id WHERE d.id IN ({marks})"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(chunk.iter()), from_row)?;
        for row in rows {
            let d = row?;
            out.insert(d.id, d);
        }
    }
    Ok(out)
}
