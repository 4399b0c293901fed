//! `/api/0/projects/{org}/{project}/issues/` and `.../events/`: the project-scoped endpoints of
//! `sentry-cli issues list|resolve|mute|unresolve` and `sentry-cli events list`.
//!
//! The list answers as the organization list does (same JSON, same `Link` paging). The `PUT`
//! is Sentry's bulk mutation: the query string selects (`?id=` repeated, or `?status=` and
//! `?query=`), the body is the same as the single-issue `PUT` (`{"status": "resolved"}`;
//! sentry-cli's `muted` is `ignored`). It answers the new status as Sentry does, or 204 when
//! nothing matched.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::{JsonBody, QueryPairs};
use super::issues::{
    UpdateBody, event_json, issue_json, list_request, page_response, status_change,
};
use crate::core::CoreError;
use crate::core::issue;
use crate::core::project_issues::{self, Selection};

/// `GET /projects/{org}/{project}/issues/`.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project_slug)): Path<(String, String)>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let req = list_request(&q);
    let path = format!("/api/0/projects/{org_slug}/{project_slug}/issues/");
    let (org, page, views) = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let project = project_issues::project(conn, &org, &project_slug)?;
            let page = project_issues::list(conn, &org, &project, req)?;
            let views = issue::views(conn, page.items.clone())?;
            Ok::<_, CoreError>((org, page, views))
        })
        .await?;
    Ok(page_response(&state, &path, &q, &org, &page, &views))
}

fn selection(q: &QueryPairs) -> Result<Selection, ApiError> {
    let ids = q
        .all("id")
        .into_iter()
        .map(|id| {
            id.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("Invalid issue id \"{id}\" (expected a number)"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Selection {
        ids,
        query: q.get("query").map(str::to_string),
        status: q.get("status").map(str::to_string),
    })
}

/// `PUT /projects/{org}/{project}/issues/`: one status change for every selected issue.
pub async fn bulk_update(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project_slug)): Path<(String, String)>,
    q: QueryPairs,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Response, ApiError> {
    let sel = selection(&q)?;
    let change = status_change(&body)?;
    let public_url = state.public_url.clone();
    let actor = format!("token:{}", auth.token.name);
    let first = state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &org_slug)?;
            let project = project_issues::project(tx, &org, &project_slug)?;
            let changed =
                project_issues::bulk_update(tx, &org, &project, &sel, &change, Some(&actor))?;
            let Some(first) = changed.into_iter().next() else {
                return Ok::<_, CoreError>(None);
            };
            let view = issue::views(tx, vec![first])?;
            Ok(view.first().map(|v| issue_json(v, &org, &public_url)))
        })
        .await?;
    let Some(first) = first else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    // Sentry answers the change it applied, not the issues.
    Ok(Json(json!({
        "status": first["status"],
        "substatus": first["substatus"],
        "statusDetails": first["statusDetails"],
    }))
    .into_response())
}

/// `GET /projects/{org}/{project}/events/`: the project's events, newest first.
pub async fn events(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project_slug)): Path<(String, String)>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let path = format!("/api/0/projects/{org_slug}/{project_slug}/events/");
    let cursor = q.get("cursor").map(str::to_string);
    let (project, page) = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let project = project_issues::project(conn, &org, &project_slug)?;
            let page = project_issues::events(conn, &project, cursor.as_deref())?;
            Ok::<_, CoreError>((project, page))
        })
        .await?;
    let body: Vec<Value> = page
        .items
        .iter()
        .map(|e| {
            let mut v = event_json(&e.event);
            v["title"] = json!(e.title);
            v["groupID"] = json!(e.issue_id.to_string());
            v["projectID"] = json!(project.id.to_string());
            v
        })
        .collect();
    Ok(super::paged_json(
        body,
        &state.public_url,
        &path,
        &q,
        page.prev,
        page.next,
    ))
}
