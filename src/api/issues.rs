//! `/api/0/organizations/{org}/issues/...` and the issues resolved in a release.
//!
//! The issue JSON follows Sentry's group serializer for the fields clients read: `id` and
//! `count` are strings, `shortId` is `WEB-1A`, `status` is `unresolved|resolved|ignored` with
//! `substatus` and `statusDetails` (`inRelease`, `inNextRelease`) saying how. `PUT` also takes
//! Sentry's `inCommit: {commit, repository}`: the issue is resolved in the release that has (or
//! next gets) the commit. `userCount` is the number of distinct users of the issue's events,
//! and each event of `issues/{id}/events/` carries Sentry's `tags` and `user`.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::{JsonBody, QueryPairs};
use crate::core::CoreError;
use crate::core::issue::{self, IssueView, ListRequest, StatusChange};
use crate::core::release::Page;
use crate::model::event::Event;
use crate::store::issues::{
    self as store, RES_IN_NEXT_RELEASE, RES_PENDING, STATUS_IGNORED, STATUS_RESOLVED,
};
use crate::store::orgs::Org;

fn status_name(code: i64) -> &'static str {
    match code {
        STATUS_RESOLVED => "resolved",
        STATUS_IGNORED => "ignored",
        _ => "unresolved",
    }
}

fn release_json(r: &store::ReleaseOrder) -> Value {
    json!({
        "id": r.id,
        "version": r.version,
        "shortVersion": r.version,
        "dateCreated": r.date_added,
        "dateReleased": r.date_released,
    })
}

/// One issue as Sentry's group serializer renders it.
pub fn issue_json(view: &IssueView, org: &Org, public_url: &str) -> Value {
    let i = &view.issue;
    let metadata: Value = serde_json::from_str(&i.metadata).unwrap_or_else(|_| json!({}));
    let mut status_details = json!({});
    if i.status == STATUS_RESOLVED
        && let Some(res) = &view.resolution
    {
        if res.ty == Some(RES_IN_NEXT_RELEASE) || (res.ty.is_none() && res.status == RES_PENDING) {
            status_details["inNextRelease"] = json!(true);
        } else {
            status_details["inRelease"] = json!(res.release_version);
        }
        if let Some(actor) = &res.actor {
            status_details["actor"] = json!({ "email": actor });
        }
    }
    json!({
        "id": i.id.to_string(),
        "shortId": i.qualified_short_id(),
        "title": i.title,
        "culprit": i.culprit,
        "permalink": format!("{public_url}/organizations/{}/issues/{}/", org.slug, i.id),
        "level": i.level,
        "status": status_name(i.status),
        "substatus": i.substatus,
        "statusDetails": status_details,
        "isPublic": false,
        "platform": i.platform,
        "project": {
            "id": i.project_id.to_string(),
            "slug": i.project_slug,
            "name": i.project_name,
            "platform": i.project_platform,
        },
        "type": i.ty,
        "issueType": "error",
        "issueCategory": "error",
        "metadata": metadata,
        "numComments": 0,
        "assignedTo": null,
        "isBookmarked": false,
        "isSubscribed": false,
        "hasSeen": false,
        "annotations": [],
        "count": i.times_seen.to_string(),
        "userCount": i.user_count,
        "firstSeen": i.first_seen,
        "lastSeen": i.last_seen,
        "firstRelease": view.first_release.as_ref().map(release_json),
        "lastRelease": view.last_release.as_ref().map(release_json),
    })
}

/// The list request of Sentry's issue index query string (`query`, `release`, `project`, `sort`,
/// `limit`/`per_page`, `cursor`); `query` defaults to `is:unresolved` in [`issue::list`].
pub(super) fn list_request(q: &QueryPairs) -> ListRequest {
    let mut query = q.get("query").map(str::to_string);
    if let Some(release) = q.get("release").filter(|r| !r.is_empty()) {
        let base = query.clone().unwrap_or_else(|| "is:unresolved".into());
        query = Some(format!("{base} release:\"{release}\""));
    }
    ListRequest {
        projects: q.projects(),
        query,
        sort: q.get("sort").map(str::to_string),
        per_page: q.get("limit").or(q.get("per_page")).map(str::to_string),
        cursor: q.get("cursor").map(str::to_string),
    }
}

/// A page of issues as JSON with Sentry's `Link` header.
pub(super) fn page_response<T>(
    state: &AppState,
    path: &str,
    q: &QueryPairs,
    org: &Org,
    page: &Page<T>,
    views: &[IssueView],
) -> Response {
    let body: Vec<Value> = views
        .iter()
        .map(|v| issue_json(v, org, &state.public_url))
        .collect();
    super::paged_json(body, &state.public_url, path, q, page.prev, page.next)
}

/// `GET /organizations/{org}/issues/`: newest activity first, `query` defaulting to
/// `is:unresolved`, paginated with Sentry's cursor and `Link` header.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let req = list_request(&q);
    let path = format!("/api/0/organizations/{org_slug}/issues/");
    let (org, page, views) = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let page = issue::list(conn, &org, &req)?;
            let views = issue::views(conn, page.items.clone())?;
            Ok::<_, CoreError>((org, page, views))
        })
        .await?;
    Ok(page_response(&state, &path, &q, &org, &page, &views))
}

/// One issue as the detail endpoints (GET and PUT) answer it: the list JSON plus activity.
fn detail(
    conn: &rusqlite::Connection,
    org: &Org,
    found: crate::store::issues::Issue,
    public_url: &str,
) -> Result<Value, CoreError> {
    let activity = store::activity_of(conn, found.id)?;
    let view = issue::views(conn, vec![found])?
        .pop()
        .ok_or_else(|| CoreError::NotFound("issue vanished".into()))?;
    Ok(detail_json(&view, org, public_url, &activity))
}

fn detail_json(
    view: &IssueView,
    org: &Org,
    public_url: &str,
    activity: &[store::ActivityRow],
) -> Value {
    let mut v = issue_json(view, org, public_url);
    v["activity"] = activity
        .iter()
        .map(|a| {
            json!({
                "id": a.id.to_string(),
                "type": activity_name(a.kind),
                "data": serde_json::from_str::<Value>(&a.data).unwrap_or_else(|_| json!({})),
                "dateCreated": a.datetime,
            })
        })
        .collect();
    v
}

/// Sentry's activity type names (`ActivityType.name.lower()`).
pub fn activity_name(code: i64) -> &'static str {
    match code {
        1 => "set_resolved",
        2 => "set_unresolved",
        3 => "set_ignored",
        6 => "set_regression",
        9 => "first_seen",
        10 => "release",
        13 => "set_resolved_in_release",
        16 => "set_resolved_in_commit",
        17 => "deploy",
        28 => "referenced_in_commit",
        _ => "unknown",
    }
}

/// `GET /organizations/{org}/issues/{id}/` (`id` numeric or a short id like `WEB-1A`).
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let public_url = state.public_url.clone();
    let body = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let found = issue::find(conn, &org, &id)?;
            detail(conn, &org, found, &public_url)
        })
        .await?;
    Ok(Json(body))
}

/// `GET /organizations/{org}/issues/{id}/events/`: the newest events of an issue.
pub async fn events(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let list = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let found = issue::find(conn, &org, &id)?;
            Ok::<_, CoreError>(store::events_of(conn, found.id, 100)?)
        })
        .await?;
    Ok(Json(list.iter().map(event_json).collect()))
}

/// One event as Sentry's simple event serializer renders it (`tags` as `[{key, value}]`
/// sorted by key, `user` or null), plus its release, environment, level, exception and
/// frames.
pub fn event_json(e: &store::StoredEvent) -> Value {
    let mut payload = match serde_json::from_str::<Value>(&e.data) {
        Ok(Value::Object(map)) => map,
        _ => Default::default(),
    };
    // The row holds the id; the payload's cannot make the rest unreadable.
    payload.remove("event_id");
    let mut event = Event::from_json(&payload).ok();
    if let Some(ev) = event.as_mut() {
        // The columns hold what ingest kept (an invalid release or environment is dropped).
        ev.release = e.release.clone();
        ev.environment = e.environment.clone();
        if let Some(level) = &e.level {
            ev.level = level.clone();
        }
    }
    let d = event.as_ref().map(Event::description);
    let user = event.as_ref().and_then(|ev| ev.user.as_ref()).map(|u| {
        json!({
            "id": u.id, "email": u.email, "username": u.username,
            "ip_address": u.ip_address, "name": u.name,
        })
    });
    let tags: Vec<Value> = event
        .as_ref()
        .map(Event::all_tags)
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| json!({ "key": key, "value": value }))
        .collect();
    let mut v = json!({
        "id": e.event_id,
        "eventID": e.event_id,
        "groupID": e.issue_id.to_string(),
        "projectID": e.project_id.to_string(),
        "event.type": d.as_ref().map_or("default", |d| d.ty),
        "title": d.as_ref().map(|d| d.title.clone()),
        "message": e.message.clone().unwrap_or_default(),
        "culprit": d.as_ref().and_then(|d| d.culprit.clone()),
        "location": d.as_ref().and_then(|d| d.metadata.get("filename").cloned()),
        "platform": e.platform,
        "level": e.level,
        "release": e.release,
        "environment": e.environment,
        "user": user,
        "tags": tags,
        "dateCreated": e.timestamp,
        "dateReceived": e.received,
        "crashFile": null,
        "frames": serde_json::from_str::<Value>(&e.frames).unwrap_or_else(|_| json!([])),
    });
    // Sentry's exception interface, left out when there is none: sentry-cli 2.x's
    // `events list` parses it when present.
    if let Some(ty) = &e.exception_type {
        v["exception"] = json!({"values": [{"type": ty, "value": e.exception_value}]});
    }
    v
}

/// The PUT body (Sentry's GroupValidator, the fields shiplog supports).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBody {
    status: Option<String>,
    status_details: Option<StatusDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    in_release: Option<String>,
    in_next_release: Option<bool>,
    in_commit: Option<InCommit>,
}

/// Sentry's `inCommit`: a commit (its sha) of a repository (its name).
#[derive(Debug, Deserialize)]
pub struct InCommit {
    commit: String,
    repository: String,
}

pub(super) fn status_change(body: &UpdateBody) -> Result<StatusChange, CoreError> {
    let details = body.status_details.as_ref();
    if let Some(d) = details
        && d.in_release.is_some()
        && d.in_next_release == Some(true)
    {
        return Err(CoreError::invalid(
            "statusDetails",
            "Give either inRelease or inNextRelease, not both.",
        ));
    }
    let in_release = details.and_then(|d| d.in_release.clone());
    let in_next = details.and_then(|d| d.in_next_release) == Some(true);
    if let Some(c) = details.and_then(|d| d.in_commit.as_ref()) {
        if in_release.is_some() || in_next {
            return Err(CoreError::invalid(
                "statusDetails",
                "Give one of inRelease, inNextRelease or inCommit.",
            ));
        }
        if !matches!(body.status.as_deref(), Some("resolved") | None) {
            return Err(CoreError::invalid(
                "statusDetails",
                "inCommit goes with status \"resolved\".",
            ));
        }
        return Ok(StatusChange::ResolvedInCommit {
            commit: c.commit.trim().to_ascii_lowercase(),
            repository: c.repository.clone(),
        });
    }
    match body.status.as_deref() {
        Some("resolved") | None if in_release.is_some() => {
            let v = in_release.unwrap_or_default();
            if v.trim().is_empty() {
                return Err(CoreError::invalid(
                    "statusDetails",
                    "inRelease: This field may not be blank.",
                ));
            }
            Ok(StatusChange::ResolvedInRelease(v))
        }
        Some("resolved") | None if in_next => {
            Ok(StatusChange::ResolvedInNextRelease { explicit: true })
        }
        Some("resolvedInNextRelease") => {
            Ok(StatusChange::ResolvedInNextRelease { explicit: in_next })
        }
        Some("resolved") => Ok(StatusChange::Resolved),
        Some("unresolved") => Ok(StatusChange::Unresolved),
        Some("ignored") | Some("muted") => Ok(StatusChange::Ignored),
        Some(other) => Err(CoreError::invalid(
            "status",
            format!("\"{other}\" is not a valid choice."),
        )),
        None => Err(CoreError::invalid(
            "status",
            "Nothing to update: send {\"status\": \"resolved\"|\"unresolved\"|\"ignored\"|\"resolvedInNextRelease\"}, optionally with statusDetails {\"inRelease\": VERSION}, {\"inNextRelease\": true} or {\"inCommit\": {\"commit\": SHA, \"repository\": NAME}}",
        )),
    }
}

/// `PUT /organizations/{org}/issues/{id}/`: resolve (now, in a release, in the next release),
/// reopen or ignore.
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    let change = status_change(&body)?;
    let public_url = state.public_url.clone();
    let actor = format!("token:{}", auth.token.name);
    let body = state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &org_slug)?;
            let found = issue::find(tx, &org, &id)?;
            let updated = issue::update_status(tx, &org, &found, &change, Some(&actor))?;
            detail(tx, &org, updated, &public_url)
        })
        .await?;
    Ok(Json(body))
}

/// `GET /organizations/{org}/releases/{version}/resolved/`: issues resolved in a release.
pub async fn resolved_in_release(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let public_url = state.public_url.clone();
    let body = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let list = issue::resolved_in_release(conn, &org, &version)?;
            let views = issue::views(conn, list)?;
            Ok::<_, CoreError>(
                views
                    .iter()
                    .map(|v| issue_json(v, &org, &public_url))
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    Ok(Json(Value::Array(body)))
}

/// `GET /organizations/{org}/releases/{version}/notes/` (shiplog's own): release notes as JSON.
pub async fn release_notes(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let body = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            crate::core::notes::notes(conn, &org, &version)
        })
        .await?;
    Ok(Json(body))
}

/// `GET /projects/{org}/{project}/events/{event_id}/committers/`: Sentry's suspect
/// committers of an event, `{"committers": [{"author", "commits": [.. "score"]}]}`.
pub async fn committers(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project_slug, event_id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let list = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let project = crate::store::orgs::project_by_slug(conn, org.id, &project_slug)?
                .ok_or_else(|| CoreError::NotFound("Project not found".into()))?;
            issue::event_committers(conn, &org, &project, &event_id)
        })
        .await?;
    let committers: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({
                "author": {"name": c.author_name, "email": c.author_email},
                "commits": c.commits.iter().map(|(commit, score)| json!({
                    "id": commit.key,
                    "message": commit.message,
                    "dateCreated": commit.date_added,
                    "repository": {"name": commit.repository},
                    "author": {"name": commit.author_name, "email": commit.author_email},
                    "score": score,
                    "suspectCommitType": "via stack trace",
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "committers": committers })))
}
