//! The project-scoped issue endpoints sentry-cli calls (`issues list|resolve|mute|unresolve`,
//! `events list`): Sentry's bulk mutation and the project's event list.
//!
//! They add no rule of their own: a list is [`issue::list`] narrowed to one project, a bulk
//! change is [`issue::update_status`] applied to each selected issue. What is specific is the
//! selection (Sentry's `update_groups_with_search_fn`): explicit ids (`?id=1&id=2`, ids of other
//! projects are ignored), or else every issue the search matches, at most
//! [`BULK_MUTATION_LIMIT`]. The search is `query` (Sentry's default `is:unresolved` when absent)
//! narrowed by `status` (sentry-cli's `--status resolved|muted|unresolved`).

use rusqlite::{Connection, Transaction};

use super::CoreError;
use super::issue::{self, ListRequest, StatusChange};
use super::org::ProjectRef;
use super::release::{Cursor, MAX_PER_PAGE, Page};
use crate::store::issues::{self as store, Issue, ProjectEvent};
use crate::store::orgs::{self, Org, Project};

/// Sentry's cap on how many issues one bulk request changes.
pub const BULK_MUTATION_LIMIT: usize = 1000;

/// Which issues a bulk request names (its query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `?id=`: these issues only (numeric ids).
    pub ids: Vec<i64>,
    /// `?query=`: Sentry's search; `None` is its default, `is:unresolved`.
    pub query: Option<String>,
    /// `?status=`: only issues of this status (`resolved`, `unresolved`, `ignored`/`muted`).
    pub status: Option<String>,
}

/// The project of a project-scoped URL, or the 404 sentry-cli turns into "Project not found".
pub fn project(conn: &Connection, org: &Org, slug: &str) -> Result<Project, CoreError> {
    orgs::project_by_slug(conn, org.id, slug)?
        .ok_or_else(|| CoreError::NotFound(format!("Project '{slug}' not found")))
}

/// `GET /projects/{org}/{project}/issues/`: the organization list narrowed to one project.
pub fn list(
    conn: &Connection,
    org: &Org,
    project: &Project,
    mut req: ListRequest,
) -> Result<Page<Issue>, CoreError> {
    req.projects = vec![ProjectRef::Id(project.id)];
    issue::list(conn, org, &req)
}

/// The search a selection without ids runs: `query` narrowed by `status`.
fn search_query(sel: &Selection) -> Result<Option<String>, CoreError> {
    let Some(status) = sel.status.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(sel.query.clone());
    };
    if !matches!(status, "resolved" | "unresolved" | "ignored" | "muted") {
        return Err(CoreError::invalid(
            "status",
            format!(
                "Invalid status \"{status}\" (expected resolved, unresolved, ignored or muted)"
            ),
        ));
    }
    // An explicit status replaces the default `is:unresolved` rather than adding to it.
    let base = sel.query.as_deref().unwrap_or("");
    Ok(Some(format!("{base} is:{status}").trim().to_string()))
}

/// The issues a selection names, at most [`BULK_MUTATION_LIMIT`].
pub fn select(
    conn: &Connection,
    org: &Org,
    project: &Project,
    sel: &Selection,
) -> Result<Vec<Issue>, CoreError> {
    if !sel.ids.is_empty() {
        let mut out = Vec::new();
        for id in &sel.ids {
            if let Some(found) = store::by_id(conn, org.id, *id)?
                && found.project_id == project.id
                && !out.iter().any(|i: &Issue| i.id == found.id)
            {
                out.push(found);
            }
        }
        return Ok(out);
    }
    let query = search_query(sel)?;
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = list(
            conn,
            org,
            project,
            ListRequest {
                query: query.clone(),
                per_page: Some(MAX_PER_PAGE.to_string()),
                cursor: cursor.clone(),
                ..Default::default()
            },
        )?;
        out.extend(page.items);
        if !page.next.has_results || out.len() >= BULK_MUTATION_LIMIT {
            break;
        }
        cursor = Some(page.next.to_string());
    }
    out.truncate(BULK_MUTATION_LIMIT);
    Ok(out)
}

/// `PUT /projects/{org}/{project}/issues/`: applies one status change to every selected issue,
/// all or none (one transaction). Returns the changed issues; none selected is not an error.
pub fn bulk_update(
    tx: &Transaction<'_>,
    org: &Org,
    project: &Project,
    sel: &Selection,
    change: &StatusChange,
    actor: Option<&str>,
) -> Result<Vec<Issue>, CoreError> {
    let selected = select(tx, org, project, sel)?;
    selected
        .iter()
        .map(|i| issue::update_status(tx, org, i, change, actor))
        .collect()
}

/// `GET /projects/{org}/{project}/events/`: the project's events, newest first, paginated.
pub fn events(
    conn: &Connection,
    project: &Project,
    cursor: Option<&str>,
) -> Result<Page<ProjectEvent>, CoreError> {
    let page = Cursor::page_number(cursor)?;
    let offset = (page as usize).saturating_mul(MAX_PER_PAGE);
    let mut items = store::events_of_project(conn, project.id, MAX_PER_PAGE + 1, offset)?;
    let has_next = items.len() > MAX_PER_PAGE;
    items.truncate(MAX_PER_PAGE);
    let (prev, next) = Cursor::around_page(MAX_PER_PAGE, page, has_next);
    Ok(Page { items, prev, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(query: Option<&str>, status: Option<&str>) -> Selection {
        Selection {
            ids: vec![],
            query: query.map(Into::into),
            status: status.map(Into::into),
        }
    }

    #[test]
    fn the_search_is_the_query_narrowed_by_status() {
        assert_eq!(search_query(&sel(None, None)).unwrap(), None);
        assert_eq!(
            search_query(&sel(Some(""), None)).unwrap(),
            Some(String::new())
        );
        assert_eq!(
            search_query(&sel(None, Some("resolved")))
                .unwrap()
                .as_deref(),
            Some("is:resolved")
        );
        assert_eq!(
            search_query(&sel(Some("release:1.0"), Some("muted")))
                .unwrap()
                .as_deref(),
            Some("release:1.0 is:muted")
        );
        assert!(search_query(&sel(None, Some("weird"))).is_err());
    }
}
