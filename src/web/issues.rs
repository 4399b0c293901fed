//! The issues list and an issue's page with its status actions.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::auth::{Session, check_form};
use super::releases::{IssueRow, Nav, issue_rows};
use super::{PageError, render, util};
use crate::api::AppState;
use crate::api::extract::QueryPairs;
use crate::core::issue::{self, StatusChange};
use crate::core::org::ProjectRef;
use crate::core::{self, CoreError};
use crate::model::event::{Event, Frame};
use crate::store::issues::{self as store, STATUS_IGNORED, STATUS_RESOLVED};
use crate::store::orgs;

#[derive(askama::Template)]
#[template(path = "issues.html")]
struct ListPage {
    nav: Nav,
    list: Vec<IssueRow>,
    projects: Vec<String>,
    project: String,
    query: String,
    sort: String,
    prev_url: Option<String>,
    next_url: Option<String>,
    error: Option<String>,
}

/// `GET /organizations/{org}/issues/`: the API's filters (`query`, `project`, `sort`).
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Path(org_slug): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    session.check_org(&org_slug)?;
    let q = QueryPairs(pairs);
    let project = q.get("project").unwrap_or("").to_string();
    let query = q.get("query").unwrap_or("is:unresolved").to_string();
    let sort = q.get("sort").unwrap_or("date").to_string();
    let req = issue::ListRequest {
        projects: if project.is_empty() {
            Vec::new()
        } else {
            vec![ProjectRef::Slug(project.clone())]
        },
        query: Some(query.clone()),
        sort: Some(sort.clone()),
        per_page: Some("50".into()),
        cursor: q.get("cursor").map(str::to_string),
    };
    let nav = Nav::new(&session, "issues");
    let org_url = nav.org_url.clone();
    let (list, projects, cursors, error) = state
        .store
        .read(move |conn| {
            let org = core::org::org(conn, &org_slug)?;
            let projects: Vec<String> = orgs::list_projects(conn, org.id)?
                .into_iter()
                .map(|p| p.slug)
                .collect();
            match issue::list(conn, &org, &req) {
                Ok(page) => Ok::<_, CoreError>((
                    issue_rows(page.items, &org_url),
                    projects,
                    Some((page.prev, page.next)),
                    None,
                )),
                Err(CoreError::Invalid { detail, .. }) => {
                    Ok((Vec::new(), projects, None, Some(detail)))
                }
                Err(e) => Err(e),
            }
        })
        .await?;
    let link = |c: &crate::core::release::Cursor| {
        c.has_results.then(|| {
            util::query(&[
                ("project", &project),
                ("query", &query),
                ("sort", &sort),
                ("cursor", &c.to_string()),
            ])
        })
    };
    let (prev_url, next_url) = match &cursors {
        Some((p, n)) => (link(p), link(n)),
        None => (None, None),
    };
    render(&ListPage {
        nav,
        list,
        projects,
        project,
        query,
        sort,
        prev_url,
        next_url,
        error,
    })
}

pub struct FrameRow {
    pub location: String,
    pub function: String,
    pub context: String,
    pub in_app: bool,
}

pub struct SuspectRow {
    pub author: String,
    pub sha: String,
    pub message: String,
    pub repository: String,
}

#[derive(askama::Template)]
#[template(path = "issue.html")]
struct DetailsPage {
    nav: Nav,
    short_id: String,
    title: String,
    culprit: String,
    status: String,
    project: String,
    level: String,
    first_seen: String,
    last_seen: String,
    first_release: Option<(String, String)>,
    last_release: Option<(String, String)>,
    events: i64,
    users: i64,
    exception: String,
    frames: Vec<FrameRow>,
    tags: Vec<(String, String)>,
    suspects: Vec<SuspectRow>,
    activity: Vec<(String, String)>,
    message: Option<String>,
}

fn release_link(org_url: &str, version: &str) -> (String, String) {
    (
        version.to_string(),
        format!("/organizations/{org_url}/releases/{}/", util::pct(version)),
    )
}

fn activity_text(kind: i64, data: &str) -> String {
    let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    let version = data["version"].as_str().unwrap_or("");
    let name = crate::api::issues::activity_name(kind);
    match name {
        "set_resolved" => "Resolved".into(),
        "set_unresolved" => "Reopened".into(),
        "set_ignored" => "Ignored".into(),
        "set_regression" if !version.is_empty() => format!("Regressed in {version}"),
        "set_regression" => "Regressed".into(),
        "first_seen" => "First seen".into(),
        "set_resolved_in_release" if version.is_empty() => "Resolved in the next release".into(),
        "set_resolved_in_release" => format!("Resolved in {version}"),
        "set_resolved_in_commit" => {
            let sha = data["commit"]["id"]
                .as_str()
                .or(data["commit"].as_str())
                .unwrap_or("");
            format!(
                "Resolved in commit {}",
                sha.chars().take(12).collect::<String>()
            )
        }
        "referenced_in_commit" => "Referenced in a commit".into(),
        other => other.replace('_', " "),
    }
}

/// `GET /organizations/{org}/issues/{id}/` (`id` numeric or a short id).
pub async fn details(
    State(state): State<AppState>,
    session: Session,
    Path((org_slug, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_org(&org_slug)?;
    let nav = Nav::new(&session, "issues");
    let org_url = nav.org_url.clone();
    let message = q.get("done").map(|d| format!("Issue {d}."));
    let page = state
        .store
        .read(move |conn| {
            let org = core::org::org(conn, &org_slug)?;
            let found = issue::find(conn, &org, &id)?;
            let activity = store::activity_of(conn, found.id)?
                .into_iter()
                .map(|a| (util::when(&a.datetime), activity_text(a.kind, &a.data)))
                .collect();
            let view = issue::views(conn, vec![found])?
                .pop()
                .ok_or_else(|| CoreError::NotFound("issue vanished".into()))?;
            let latest = store::events_of(conn, view.issue.id, 1)?.pop();
            let mut frames = Vec::new();
            let mut tags = Vec::new();
            let mut exception = String::new();
            let mut suspects = Vec::new();
            if let Some(e) = &latest {
                let parsed: Vec<Frame> = serde_json::from_str(&e.frames).unwrap_or_default();
                // Newest call first, as Sentry shows a stack trace.
                frames = parsed
                    .iter()
                    .rev()
                    .map(|f| FrameRow {
                        location: format!(
                            "{}{}",
                            f.filename
                                .as_deref()
                                .or(f.abs_path.as_deref())
                                .or(f.module.as_deref())
                                .unwrap_or("?"),
                            f.lineno.map(|l| format!(":{l}")).unwrap_or_default()
                        ),
                        function: f.function.clone().unwrap_or_default(),
                        context: f.context_line.clone().unwrap_or_default(),
                        in_app: f.in_app == Some(true),
                    })
                    .collect();
                if let Some(ty) = &e.exception_type {
                    exception = match &e.exception_value {
                        Some(v) => format!("{ty}: {v}"),
                        None => ty.clone(),
                    };
                }
                if let Ok(Value::Object(mut payload)) = serde_json::from_str::<Value>(&e.data) {
                    payload.remove("event_id");
                    if let Ok(ev) = Event::from_json(&payload) {
                        tags = ev.all_tags();
                    }
                }
                let project = orgs::project_by_id(conn, org.id, view.issue.project_id)?;
                if let Some(project) = project {
                    // Suspect commits are a bonus: an event they cannot be found for still shows.
                    if let Ok(list) = issue::event_committers(conn, &org, &project, &e.event_id) {
                        for c in list {
                            let author = c
                                .author_name
                                .clone()
                                .or(c.author_email.clone())
                                .unwrap_or_default();
                            for (commit, _) in c.commits {
                                suspects.push(SuspectRow {
                                    author: author.clone(),
                                    sha: commit.key.chars().take(12).collect(),
                                    message: util::first_line(
                                        commit.message.as_deref().unwrap_or(""),
                                    ),
                                    repository: commit.repository,
                                });
                            }
                        }
                    }
                }
            }
            let i = &view.issue;
            let status = match i.status {
                STATUS_RESOLVED => match &view.resolution {
                    Some(r)
                        if r.ty == Some(store::RES_IN_NEXT_RELEASE)
                            || (r.ty.is_none() && r.status == store::RES_PENDING) =>
                    {
                        "resolved in the next release".into()
                    }
                    Some(r) => format!("resolved in {}", r.release_version),
                    None => "resolved".into(),
                },
                STATUS_IGNORED => "ignored".into(),
                _ => match i.substatus.as_deref() {
                    Some(s) => format!("unresolved ({s})"),
                    None => "unresolved".into(),
                },
            };
            Ok::<_, CoreError>(DetailsPage {
                short_id: i.qualified_short_id(),
                title: i.title.clone(),
                culprit: i.culprit.clone().unwrap_or_default(),
                status,
                project: i.project_slug.clone(),
                level: i.level.clone(),
                first_seen: util::when(&i.first_seen),
                last_seen: util::when(&i.last_seen),
                first_release: view
                    .first_release
                    .as_ref()
                    .map(|r| release_link(&org_url, &r.version)),
                last_release: view
                    .last_release
                    .as_ref()
                    .map(|r| release_link(&org_url, &r.version)),
                events: i.times_seen,
                users: i.user_count,
                exception,
                frames,
                tags,
                suspects,
                activity,
                message,
                nav,
            })
        })
        .await?;
    render(&page)
}

/// `POST /organizations/{org}/issues/{id}/`: resolve (now, in the next release, in a
/// release), ignore, reopen.
pub async fn action(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path((org_slug, id)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_org(&org_slug)?;
    check_form(&state, &session, &headers, &form)?;
    let (change, done) = match form.get("action").map(String::as_str) {
        Some("resolve") => (StatusChange::Resolved, "resolved"),
        Some("resolve_next") => (
            StatusChange::ResolvedInNextRelease { explicit: true },
            "resolved in the next release",
        ),
        Some("resolve_in") => {
            let version = form.get("version").map(|v| v.trim()).unwrap_or("");
            if version.is_empty() {
                return Err(PageError::new(
                    StatusCode::BAD_REQUEST,
                    "Name the release the issue is resolved in",
                ));
            }
            (
                StatusChange::ResolvedInRelease(version.to_string()),
                "resolved in a release",
            )
        }
        Some("ignore") => (StatusChange::Ignored, "ignored"),
        Some("reopen") => (StatusChange::Unresolved, "reopened"),
        _ => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "Unknown action (expected resolve, resolve_next, resolve_in, ignore or reopen)",
            ));
        }
    };
    let actor = format!("web:{}", session.session.origin);
    let issue_id = state
        .store
        .write(move |tx| {
            let org = core::org::org(tx, &org_slug)?;
            let found = issue::find(tx, &org, &id)?;
            issue::update_status(tx, &org, &found, &change, Some(&actor)).map(|i| i.id)
        })
        .await?;
    let url = format!(
        "/organizations/{}/issues/{issue_id}/{}",
        util::pct(&session.session.org_slug),
        util::query(&[("done", done)])
    );
    Ok(Redirect::to(&url).into_response())
}
