//! The activity log.

use rusqlite::{Connection, params};

use super::StoreError;
use crate::model::activity::ActivityType;

/// One activity entry to record.
#[derive(Debug, Clone)]
pub struct NewActivity<'a> {
    pub org_id: i64,
    pub project_id: Option<i64>,
    pub release_id: Option<i64>,
    pub kind: ActivityType,
    pub ident: Option<&'a str>,
    pub data: serde_json::Value,
    pub datetime: &'a str,
}

pub fn insert(conn: &Connection, a: &NewActivity<'_>) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO activities (org_id, project_id, release_id, type, ident, data, datetime)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        a.org_id,
        a.project_id,
        a.release_id,
        a.kind.code(),
        a.ident,
        a.data.to_string(),
        a.datetime
    ])?;
    Ok(conn.last_insert_rowid())
}

/// An activity entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: i64,
    pub project_id: Option<i64>,
    pub kind: i64,
    pub ident: Option<String>,
    pub data: String,
    pub datetime: String,
}

pub fn for_release(conn: &Connection, release_id: i64) -> Result<Vec<Activity>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, project_id, type, ident, data, datetime FROM activities
         WHERE release_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([release_id], |r| {
        Ok(Activity {
            id: r.get(0)?,
            project_id: r.get(1)?,
            kind: r.get(2)?,
            ident: r.get(3)?,
            data: r.get(4)?,
            datetime: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
