//! Organizations and projects.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// An organization row.
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    pub id: i64,
    pub slug: String,
    pub name: String,
    /// When it was first made (Sentry's `dateCreated`).
    pub date_added: String,
}

/// A project row.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: i64,
    pub org_id: i64,
    pub slug: String,
    pub name: String,
    pub platform: Option<String>,
}

/// Creates the organization if it does not exist and returns it.
pub fn ensure_org(conn: &Connection, slug: &str, now: &str) -> Result<Org, StoreError> {
    conn.execute(
        "INSERT INTO organizations (slug, name, date_added) VALUES (?1, ?1, ?2)
         ON CONFLICT (slug) DO NOTHING",
        params![slug, now],
    )?;
    org_by_slug(conn, slug)?.ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

pub fn org_by_slug(conn: &Connection, slug: &str) -> Result<Option<Org>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, slug, name, date_added FROM organizations WHERE slug = ?1",
            [slug],
            |r| {
                Ok(Org {
                    id: r.get(0)?,
                    slug: r.get(1)?,
                    name: r.get(2)?,
                    date_added: r.get(3)?,
                })
            },
        )
        .optional()?)
}

pub fn org_by_id(conn: &Connection, id: i64) -> Result<Option<Org>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, slug, name, date_added FROM organizations WHERE id = ?1",
            [id],
            |r| {
                Ok(Org {
                    id: r.get(0)?,
                    slug: r.get(1)?,
                    name: r.get(2)?,
                    date_added: r.get(3)?,
                })
            },
        )
        .optional()?)
}

pub fn list_orgs(conn: &Connection) -> Result<Vec<Org>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, slug, name, date_added FROM organizations ORDER BY slug")?;
    let rows = stmt.query_map([], |r| {
        Ok(Org {
            id: r.get(0)?,
            slug: r.get(1)?,
            name: r.get(2)?,
            date_added: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Creates or updates a project by slug (name and platform follow the caller).
pub fn upsert_project(
    conn: &Connection,
    org_id: i64,
    slug: &str,
    name: &str,
    platform: Option<&str>,
    now: &str,
) -> Result<Project, StoreError> {
    conn.execute(
        "INSERT INTO projects (org_id, slug, name, platform, date_added) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (org_id, slug) DO UPDATE SET name = excluded.name,
             platform = COALESCE(excluded.platform, projects.platform)",
        params![org_id, slug, name, platform, now],
    )?;
    project_by_slug(conn, org_id, slug)?
        .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

fn project_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: r.get(0)?,
        org_id: r.get(1)?,
        slug: r.get(2)?,
        name: r.get(3)?,
        platform: r.get(4)?,
    })
}

pub fn project_by_slug(
    conn: &Connection,
    org_id: i64,
    slug: &str,
) -> Result<Option<Project>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, org_id, slug, name, platform FROM projects WHERE org_id = ?1 AND slug = ?2",
            params![org_id, slug],
            project_from_row,
        )
        .optional()?)
}

pub fn project_by_id(
    conn: &Connection,
    org_id: i64,
    id: i64,
) -> Result<Option<Project>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, org_id, slug, name, platform FROM projects WHERE org_id = ?1 AND id = ?2",
            params![org_id, id],
            project_from_row,
        )
        .optional()?)
}

pub fn list_projects(conn: &Connection, org_id: i64) -> Result<Vec<Project>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, org_id, slug, name, platform FROM projects WHERE org_id = ?1 ORDER BY slug",
    )?;
    let rows = stmt.query_map([org_id], project_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
