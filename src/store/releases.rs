//! Releases and the projects attached to them.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::StoreError;
use super::orgs::Project;
use crate::model::version::SemverColumns;

/// Sentry's ReleaseStatus values.
pub const STATUS_OPEN: i64 = 0;
pub const STATUS_ARCHIVED: i64 = 1;

/// A release row.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub id: i64,
    pub org_id: i64,
    pub version: String,
    pub ref_: Option<String>,
    pub url: Option<String>,
    pub date_added: String,
    pub date_started: Option<String>,
    pub date_released: Option<String>,
    pub status: i64,
    pub data: String,
    pub owner: Option<String>,
    pub user_agent: Option<String>,
    pub commit_count: i64,
    pub last_commit_id: Option<i64>,
    pub authors: String,
    pub total_deploys: i64,
    pub last_deploy_id: Option<i64>,
}

const COLUMNS: &str = "r.id, r.org_id, r.version, r.ref, r.url, r.date_added, r.date_started, \
     r.date_released, r.status, r.data, r.owner, r.user_agent, r.commit_count, r.last_commit_id, \
     r.authors, r.total_deploys, r.last_deploy_id";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Release> {
    Ok(Release {
        id: r.get(0)?,
        org_id: r.get(1)?,
        version: r.get(2)?,
        ref_: r.get(3)?,
        url: r.get(4)?,
        date_added: r.get(5)?,
        date_started: r.get(6)?,
        date_released: r.get(7)?,
        status: r.get(8)?,
        data: r.get(9)?,
        owner: r.get(10)?,
        user_agent: r.get(11)?,
        commit_count: r.get(12)?,
        last_commit_id: r.get(13)?,
        authors: r.get(14)?,
        total_deploys: r.get(15)?,
        last_deploy_id: r.get(16)?,
    })
}

/// What a new release row starts with.
#[derive(Debug, Clone)]
pub struct NewRelease<'a> {
    pub org_id: i64,
    pub version: &'a str,
    pub ref_: Option<&'a str>,
    pub url: Option<&'a str>,
    pub date_added: &'a str,
    pub date_started: Option<&'a str>,
    pub date_released: Option<&'a str>,
    pub status: i64,
    pub user_agent: Option<&'a str>,
    pub semver: Option<&'a SemverColumns>,
}

/// Inserts a release; the caller has checked that the version is free.
pub fn insert(conn: &Connection, new: &NewRelease<'_>) -> Result<i64, StoreError> {
    let s = new.semver;
    conn.prepare_cached(
        "INSERT INTO releases (org_id, version, ref, url, date_added, date_started, date_released,
             status, user_agent, package, major, minor, patch, revision, prerelease,
             prerelease_case, build_code, build_number)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        new.org_id,
        new.version,
        new.ref_,
        new.url,
        new.date_added,
        new.date_started,
        new.date_released,
        new.status,
        new.user_agent,
        s.map(|s| s.package.as_str()),
        s.map(|s| s.major),
        s.map(|s| s.minor),
        s.map(|s| s.patch),
        s.map(|s| s.revision),
        s.map(|s| s.prerelease.as_str()),
        s.map(|s| s.prerelease_case),
        s.and_then(|s| s.build_code.as_deref()),
        s.and_then(|s| s.build_number),
    ])?;
    Ok(conn.last_insert_rowid())
}

pub fn by_version(
    conn: &Connection,
    org_id: i64,
    version: &str,
) -> Result<Option<Release>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM releases r WHERE r.org_id = ?1 AND r.version = ?2"
        ))?
        .query_row(params![org_id, version], from_row)
        .optional()?)
}

/// The release of `version` when it exists *and* is attached to `project_id` (the case of
/// nearly every ingested event): one query instead of an upsert's four.
pub fn by_version_in_project(
    conn: &Connection,
    org_id: i64,
    version: &str,
    project_id: i64,
) -> Result<Option<Release>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM releases r
             JOIN release_projects rp ON rp.release_id = r.id AND rp.project_id = ?3
             WHERE r.org_id = ?1 AND r.version = ?2"
        ))?
        .query_row(params![org_id, version, project_id], from_row)
        .optional()?)
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<Release>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM releases r WHERE r.id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// Ids of the projects attached to a release.
pub fn project_ids(conn: &Connection, release_id: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT project_id FROM release_projects WHERE release_id = ?1 ORDER BY project_id",
    )?;
    let rows = stmt.query_map([release_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Attaches a project; `true` when it was not attached before.
pub fn add_project(
    conn: &Connection,
    release_id: i64,
    project_id: i64,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO release_projects (release_id, project_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![release_id, project_id])?;
    Ok(n == 1)
}

/// The fields a PUT or a status change may set; `None` leaves a field alone.
#[derive(Debug, Default, Clone)]
pub struct ReleaseUpdate {
    pub ref_: Option<String>,
    pub url: Option<String>,
    pub date_released: Option<String>,
    pub status: Option<i64>,
}

pub fn update(conn: &Connection, id: i64, u: &ReleaseUpdate) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE releases SET ref = COALESCE(?2, ref), url = COALESCE(?3, url),
             date_released = COALESCE(?4, date_released), status = COALESCE(?5, status)
         WHERE id = ?1",
    )?
    .execute(params![id, u.ref_, u.url, u.date_released, u.status])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM releases WHERE id = ?1", [id])?;
    Ok(())
}

/// How a release list is ordered (Sentry's `sort` parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sort {
    /// Newest first by creation.
    Date,
    /// Greatest semantic version first; releases without one last.
    Semver,
    /// Greatest numeric build first; only releases that have a build number.
    Build,
    /// Most recently adopted first (in the listed projects and environments), releases never
    /// adopted last, newest first among equals.
    Adoption {
        project_ids: Vec<i64>,
        environments: Vec<String>,
    },
}

/// One condition of a release search, already parsed (see `core::release::parse_query`).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Version contains the text, case-insensitively.
    Contains(String),
    /// Version equals the text.
    Exact(String),
    /// Version does not equal the text.
    NotExact(String),
    /// Version starts with the text.
    Prefix(String),
    /// Version ends with the text.
    Suffix(String),
    /// Version is one of these.
    In(Vec<String>),
    /// `release.package:` exact match.
    Package(String),
    /// `finalized:true|false`.
    Finalized(bool),
    /// `release.build:N` (numeric) or `release.build:code` (exact) or `code*` (prefix).
    BuildNumber(i64),
    BuildCode(String),
    BuildCodePrefix(String),
    /// `release.version:OP x.y.z` — compares the semver tuple `(major, minor, patch, revision,
    /// prerelease_case, prerelease)` with SQLite row values.
    SemverCmp {
        op: &'static str,
        package: Option<String>,
        tuple: (i64, i64, i64, i64, i64, String),
    },
    /// Any of several conditions (the free-text `1.0 (123)` form also matches `1.0+123`).
    Any(Vec<Filter>),
    /// All of several conditions (a semver wildcard is a range).
    All(Vec<Filter>),
    /// `release.stage:` in one environment: the release is at one of these adoption stages
    /// (`adopted`, `replaced`, `low_adoption`) in some project (of `project_ids`, when given).
    Stage {
        stages: Vec<&'static str>,
        environment: String,
        project_ids: Vec<i64>,
    },
}

/// A release list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub org_id: i64,
    pub project_ids: Vec<i64>,
    pub status: Option<i64>,
    pub filters: Vec<Filter>,
    pub sort: Sort,
    pub limit: usize,
    pub offset: usize,
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn filter_sql(filter: &Filter, params: &mut Vec<Value>) -> String {
    let mut bind = |v: Value| {
        params.push(v);
        format!("?{}", params.len())
    };
    match filter {
        Filter::Contains(t) => format!(
            "r.version LIKE {} ESCAPE '\\'",
            bind(Value::Text(format!("%{}%", escape_like(t))))
        ),
        Filter::Exact(t) => format!("r.version = {}", bind(Value::Text(t.clone()))),
        Filter::NotExact(t) => format!("r.version <> {}", bind(Value::Text(t.clone()))),
        Filter::Prefix(t) => format!(
            "substr(r.version, 1, length({0})) = {0}",
            bind(Value::Text(t.clone()))
        ),
        Filter::Suffix(t) => format!(
            "substr(r.version, -length({0})) = {0}",
            bind(Value::Text(t.clone()))
        ),
        Filter::In(list) => {
            let marks: Vec<String> = list.iter().map(|v| bind(Value::Text(v.clone()))).collect();
            if marks.is_empty() {
                "0".into()
            } else {
                format!("r.version IN ({})", marks.join(", "))
            }
        }
        Filter::Package(p) => format!("r.package = {}", bind(Value::Text(p.clone()))),
        Filter::Finalized(true) => "r.date_released IS NOT NULL".into(),
        Filter::Finalized(false) => "r.date_released IS NULL".into(),
        Filter::BuildNumber(n) => format!("r.build_number = {}", bind(Value::Integer(*n))),
        Filter::BuildCode(c) => format!("r.build_code = {}", bind(Value::Text(c.clone()))),
        Filter::BuildCodePrefix(c) => format!(
            "substr(r.build_code, 1, length({0})) = {0}",
            bind(Value::Text(c.clone()))
        ),
        Filter::SemverCmp { op, package, tuple } => {
            let (a, b, c, d, e, f) = tuple.clone();
            let lhs = "(r.major, r.minor, r.patch, r.revision, r.prerelease_case, r.prerelease)";
            let rhs = format!(
                "({}, {}, {}, {}, {}, {})",
                bind(Value::Integer(a)),
                bind(Value::Integer(b)),
                bind(Value::Integer(c)),
                bind(Value::Integer(d)),
                bind(Value::Integer(e)),
                bind(Value::Text(f)),
            );
            let cmp = if *op == "!=" {
                format!("NOT ({lhs} = {rhs})")
            } else {
                format!("{lhs} {op} {rhs}")
            };
            match package {
                Some(p) => format!(
                    "r.major IS NOT NULL AND r.package = {} AND {cmp}",
                    bind(Value::Text(p.clone()))
                ),
                None => format!("r.major IS NOT NULL AND {cmp}"),
            }
        }
        Filter::Any(list) => {
            let parts: Vec<String> = list.iter().map(|f| filter_sql(f, params)).collect();
            if parts.is_empty() {
                "0".into()
            } else {
                format!("({})", parts.join(" OR "))
            }
        }
        Filter::Stage {
            stages,
            environment,
            project_ids,
        } => {
            let env = bind(Value::Text(environment.clone()));
            let mut projects = String::new();
            if !project_ids.is_empty() {
                let marks: Vec<String> = project_ids
                    .iter()
                    .map(|id| bind(Value::Integer(*id)))
                    .collect();
                projects = format!(" AND {{t}}.project_id IN ({})", marks.join(", "));
            }
            let adoption = |t: &str, cond: &str| {
                format!(
                    "EXISTS (SELECT 1 FROM health_adoption {t} WHERE {t}.release_id = r.id \
                     AND {t}.environment = {env}{} AND {cond})",
                    projects.replace("{t}", t)
                )
            };
            let parts: Vec<String> = stages
                .iter()
                .map(|stage| match *stage {
                    "adopted" => adoption("a", "a.adopted IS NOT NULL AND a.unadopted IS NULL"),
                    "replaced" => {
                        adoption("a", "a.adopted IS NOT NULL AND a.unadopted IS NOT NULL")
                    }
                    // Sessions in the environment, never adopted there.
                    _ => format!(
                        "EXISTS (SELECT 1 FROM health_rollups h WHERE h.release_id = r.id \
                         AND h.environment = {env}{} AND NOT EXISTS (SELECT 1 FROM \
                         health_adoption a WHERE a.release_id = h.release_id \
                         AND a.project_id = h.project_id AND a.environment = h.environment \
                         AND a.adopted IS NOT NULL))",
                        projects.replace("{t}", "h")
                    ),
                })
                .collect();
            if parts.is_empty() {
                "0".into()
            } else {
                format!("({})", parts.join(" OR "))
            }
        }
        Filter::All(list) => {
            let parts: Vec<String> = list.iter().map(|f| filter_sql(f, params)).collect();
            if parts.is_empty() {
                "1".into()
            } else {
                format!("({})", parts.join(" AND "))
            }
        }
    }
}

/// Lists releases; returns at most `limit + 1` rows so the caller can tell whether a next page
/// exists.
pub fn list(conn: &Connection, q: &ListQuery) -> Result<Vec<Release>, StoreError> {
    let mut params: Vec<Value> = vec![Value::Integer(q.org_id)];
    let mut wheres = vec!["r.org_id = ?1".to_string()];
    if let Some(status) = q.status {
        params.push(Value::Integer(status));
        wheres.push(format!("r.status = ?{}", params.len()));
    }
    if !q.project_ids.is_empty() {
        let marks: Vec<String> = q
            .project_ids
            .iter()
            .map(|id| {
                params.push(Value::Integer(*id));
                format!("?{}", params.len())
            })
            .collect();
        wheres.push(format!(
            "EXISTS (SELECT 1 FROM release_projects rp WHERE rp.release_id = r.id AND rp.project_id IN ({}))",
            marks.join(", ")
        ));
    }
    for f in &q.filters {
        wheres.push(filter_sql(f, &mut params));
    }
    let order = match &q.sort {
        Sort::Date => "r.date_added DESC, r.id DESC".to_string(),
        Sort::Semver => "r.major IS NULL, r.major DESC, r.minor DESC, r.patch DESC, \
             r.revision DESC, r.prerelease_case DESC, r.prerelease DESC, r.date_added DESC, r.id DESC"
            .to_string(),
        Sort::Build => {
            wheres.push("r.build_number IS NOT NULL".into());
            "r.build_number DESC, r.date_added DESC, r.id DESC".to_string()
        }
        Sort::Adoption {
            project_ids,
            environments,
        } => {
            let mut conds = String::new();
            let mut list = |col: &str, values: Vec<Value>| {
                if values.is_empty() {
                    return;
                }
                let marks: Vec<String> = values
                    .into_iter()
                    .map(|v| {
                        params.push(v);
                        format!("?{}", params.len())
                    })
                    .collect();
                conds.push_str(&format!(" AND a.{col} IN ({})", marks.join(", ")));
            };
            list(
                "project_id",
                project_ids.iter().map(|id| Value::Integer(*id)).collect(),
            );
            list(
                "environment",
                environments.iter().map(|e| Value::Text(e.clone())).collect(),
            );
            let adopted = format!(
                "(SELECT max(a.adopted) FROM health_adoption a WHERE a.release_id = r.id{conds})"
            );
            format!("{adopted} IS NULL, {adopted} DESC, r.date_added DESC, r.id DESC")
        }
    };
    params.push(Value::Integer(q.limit as i64 + 1));
    let limit = params.len();
    params.push(Value::Integer(q.offset as i64));
    let offset = params.len();
    let sql = format!(
        "SELECT {COLUMNS} FROM releases r WHERE {} ORDER BY {order} LIMIT ?{limit} OFFSET ?{offset}",
        wheres.join(" AND ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The projects of each release, with their per-release new-issue counts.
pub fn projects_of(
    conn: &Connection,
    release_ids: &[i64],
) -> Result<HashMap<i64, Vec<(Project, i64)>>, StoreError> {
    let mut out: HashMap<i64, Vec<(Project, i64)>> = HashMap::new();
    if release_ids.is_empty() {
        return Ok(out);
    }
    // Chunked to stay far below SQLite's bound-parameter limit.
    for chunk in release_ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT rp.release_id, p.id, p.org_id, p.slug, p.name, p.platform, rp.new_groups
             FROM release_projects rp JOIN projects p ON p.id = rp.project_id
             WHERE rp.release_id IN ({marks}) ORDER BY p.slug"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(chunk.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Project {
                    id: r.get(1)?,
                    org_id: r.get(2)?,
                    slug: r.get(3)?,
                    name: r.get(4)?,
                    platform: r.get(5)?,
                },
                r.get::<_, i64>(6)?,
            ))
        })?;
        for row in rows {
            let (release_id, project, new_groups) = row?;
            out.entry(release_id)
                .or_default()
                .push((project, new_groups));
        }
    }
    Ok(out)
}

/// Counts releases of an organization (for benchmarks and status output).
pub fn count(conn: &Connection, org_id: i64) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM releases WHERE org_id = ?1",
        [org_id],
        |r| r.get(0),
    )?)
}
