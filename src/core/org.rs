//! Organizations and projects: the config is the seed, the database the truth.

use rusqlite::Connection;

use super::CoreError;
use crate::config::Config;
use crate::store::orgs::{self, Org, Project};

/// Makes sure the configured organization and projects exist. Runs at every daemon start and
/// before one-shot commands, so a project added to the config is usable at once. Projects that
/// were removed from the config are kept: releases still point at them.
pub fn sync_config(conn: &Connection, config: &Config, now: &str) -> Result<Org, CoreError> {
    let org = orgs::ensure_org(conn, &config.organization, now)?;
    for p in &config.projects {
        let name = p.name.as_deref().unwrap_or(&p.slug);
        orgs::upsert_project(conn, org.id, &p.slug, name, p.platform.as_deref(), now)?;
    }
    Ok(org)
}

/// The organization with this slug, or Sentry's 404.
pub fn org(conn: &Connection, slug: &str) -> Result<Org, CoreError> {
    orgs::org_by_slug(conn, slug)?
        .ok_or_else(|| CoreError::NotFound(format!("Organization '{slug}' not found")))
}

/// A project named by id or slug, as Sentry's API accepts both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(i64),
    Slug(String),
}

impl std::fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProjectRef::Id(id) => write!(f, "{id}"),
            ProjectRef::Slug(s) => f.write_str(s),
        }
    }
}

/// Resolves project references of one organization; every unknown one is named in the error.
pub fn resolve_projects(
    conn: &Connection,
    org_id: i64,
    refs: &[ProjectRef],
) -> Result<Vec<Project>, CoreError> {
    let mut found = Vec::with_capacity(refs.len());
    let mut unknown = Vec::new();
    for r in refs {
        let p = match r {
            ProjectRef::Id(id) => orgs::project_by_id(conn, org_id, *id)?,
            // Numeric strings are ids too: sentry-cli sends `["42"]` in some requests.
            ProjectRef::Slug(s) => match orgs::project_by_slug(conn, org_id, s)? {
                Some(p) => Some(p),
                None => match s.parse::<i64>() {
                    Ok(id) => orgs::project_by_id(conn, org_id, id)?,
                    Err(_) => None,
                },
            },
        };
        match p {
            Some(p) if !found.iter().any(|f: &Project| f.id == p.id) => found.push(p),
            Some(_) => {}
            None => unknown.push(r.to_string()),
        }
    }
    if !unknown.is_empty() {
        return Err(CoreError::invalid(
            "projects",
            format!(
                "Invalid project ids or slugs: {}. Add them under `projects:` in the config or run `shiplog projects add SLUG`",
                unknown.join(", ")
            ),
        ));
    }
    Ok(found)
}

/// Adds (or renames) a project outside the config.
pub fn add_project(
    conn: &Connection,
    org_id: i64,
    slug: &str,
    name: Option<&str>,
    platform: Option<&str>,
    now: &str,
) -> Result<Project, CoreError> {
    if !is_valid_slug(slug) {
        return Err(CoreError::invalid(
            "slug",
            format!(
                "project slug \"{slug}\" must be 1-50 lowercase letters, digits, '-' or '_' and not all digits"
            ),
        ));
    }
    Ok(orgs::upsert_project(
        conn,
        org_id,
        slug,
        name.unwrap_or(slug),
        platform,
        now,
    )?)
}

/// Sentry's slug rule: lowercase letters, digits, `-` and `_`, at most 50, not only digits.
pub fn is_valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 50
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !slug.bytes().all(|b| b.is_ascii_digit())
}
