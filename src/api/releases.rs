//! `/api/0/organizations/{org}/releases/...` and `/api/0/projects/{org}/{project}/releases/`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::{JsonBody, QueryPairs};
use super::health::HealthParams;
use super::render;
use crate::core::org::ProjectRef;
use crate::core::release::{self, CreateRelease, ListRequest, Status, UpdateRelease};
use crate::core::{self, CoreError};

/// A project named by numeric id or by slug, as Sentry's API accepts both.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ProjectRefWire {
    Id(i64),
    Slug(String),
}

impl From<ProjectRefWire> for ProjectRef {
    fn from(w: ProjectRefWire) -> Self {
        match w {
            ProjectRefWire::Id(id) => ProjectRef::Id(id),
            ProjectRefWire::Slug(s) => ProjectRef::Slug(s),
        }
    }
}

pub fn project_refs(list: Option<Vec<ProjectRefWire>>) -> Vec<ProjectRef> {
    list.unwrap_or_default()
        .into_iter()
        .map(ProjectRef::from)
        .collect()
}

/// The POST body (Sentry's ReleaseSerializerWithProjects).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    version: Option<String>,
    projects: Option<Vec<ProjectRefWire>>,
    #[serde(rename = "ref")]
    ref_: Option<String>,
    url: Option<String>,
    date_released: Option<String>,
    date_started: Option<String>,
    status: Option<String>,
    #[serde(flatten)]
    commit_fields: super::commits::CommitFields,
}

fn required<T>(field: &'static str, value: Option<T>) -> Result<T, CoreError> {
    value.ok_or_else(|| CoreError::invalid(field, format!("{field}: This field is required.")))
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// POST: create, or attach projects / change status of an existing release (201 vs 208).
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let version = required("version", body.version)?;
    let projects = required("projects", body.projects)?;
    let req = CreateRelease {
        version,
        projects: project_refs(Some(projects)),
        ref_: body.ref_,
        url: body.url,
        date_started: body.date_started,
        date_released: body.date_released,
        status: body.status.as_deref().map(Status::parse).transpose()?,
        user_agent: user_agent(&headers),
    };
    let prepared = super::commits::prepare(
        &state,
        &auth,
        &org_slug,
        &req.version,
        &req.projects,
        body.commit_fields,
        false,
    )
    .await?;
    let (view, created) = state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &org_slug)?;
            let up = release::upsert(tx, &org, &req, &core::now())?;
            let r = super::commits::apply(tx, &org, up.release, prepared)?;
            Ok::<_, CoreError>((release::view(tx, r)?, up.created))
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::ALREADY_REPORTED
    };
    Ok((status, Json(render::release(&view))).into_response())
}

/// POST `/projects/{org}/{project}/releases/`: sentry-cli 2.x's `releases new` with one
/// project; the project in the path is the release's project.
pub async fn create_for_project(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(mut body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    body.projects = Some(vec![ProjectRefWire::Slug(project)]);
    create(State(state), auth, Path(org_slug), headers, JsonBody(body)).await
}

fn list_request(q: &QueryPairs, projects: Vec<ProjectRef>, health: &HealthParams) -> ListRequest {
    ListRequest {
        projects,
        query: q.get("query").map(str::to_string),
        status: q.get("status").map(str::to_string),
        sort: q.get("sort").map(str::to_string),
        per_page: q.get("per_page").map(str::to_string),
        cursor: q.get("cursor").map(str::to_string),
        flatten: q.get("flatten") == Some("1"),
        environments: health.request.environments.clone(),
        summary_secs: health.request.summary_secs,
        now: health.request.now,
    }
}

async fn list_response(
    state: AppState,
    auth: Auth,
    org_slug: String,
    project: Option<String>,
    q: QueryPairs,
    path: String,
) -> Result<Response, ApiError> {
    let mut projects = q.projects();
    let project_scoped = project.is_some();
    if let Some(slug) = project {
        projects = vec![ProjectRef::Slug(slug)];
    }
    let health = HealthParams::parse(&q)?;
    let req = list_request(&q, projects, &health);
    let reads = state.store.clone();
    let (page, body) = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let page = release::list(conn, &org, &req).map_err(|e| match e {
                // `/projects/{org}/{project}/releases/` with an unknown project is a 404.
                CoreError::Invalid {
                    field: Some("projects"),
                    ..
                } if project_scoped => CoreError::NotFound("Project not found".to_string()),
                other => other,
            })?;
            let releases = page.items.iter().map(|r| r.release.clone()).collect();
            let views = release::views(conn, releases)?;
            let mut body: Vec<Value> = views
                .iter()
                .zip(&page.items)
                .map(|(view, row)| {
                    let mut json = render::release(view);
                    // A flattened row shows its one project.
                    if let (Some(id), Some(list)) =
                        (row.project_id, json["projects"].as_array_mut())
                    {
                        list.retain(|p| p["id"].as_i64() == Some(id));
                    }
                    json
                })
                .collect();
            super::health::decorate(conn, &reads, org.id, &mut body, &health)?;
            Ok::<_, CoreError>((page, body))
        })
        .await?;
    let link = super::link_header(&state.public_url, &path, &q, page.prev, page.next);
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, v);
    }
    Ok(response)
}

/// GET the organization's releases (newest first, paginated with Sentry's cursor).
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let path = format!("/api/0/organizations/{org_slug}/releases/");
    list_response(state, auth, org_slug, None, q, path).await
}

/// GET one project's releases.
pub async fn list_for_project(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project)): Path<(String, String)>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let path = format!("/api/0/projects/{org_slug}/{project}/releases/");
    list_response(state, auth, org_slug, Some(project), q, path).await
}

/// GET one release (with `health=1`, `adoptionStages=1` and their periods, as the list).
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
    q: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let health = HealthParams::parse(&q)?;
    let reads = state.store.clone();
    let body = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let r = release::get(conn, &org, &version)?;
            let mut body = [render::release(&release::view(conn, r)?)];
            super::health::decorate(conn, &reads, org.id, &mut body, &health)?;
            let [body] = body;
            Ok::<_, CoreError>(body)
        })
        .await?;
    Ok(Json(body))
}

/// The PUT body (Sentry's OrganizationReleaseSerializer).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateBody {
    #[serde(rename = "ref")]
    ref_: Option<String>,
    url: Option<String>,
    date_released: Option<String>,
    status: Option<String>,
    projects: Option<Vec<ProjectRefWire>>,
    #[serde(flatten)]
    commit_fields: super::commits::CommitFields,
}

/// PUT: finalize (`dateReleased`), set `url`/`ref`/`status`.
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    let req = UpdateRelease {
        ref_: body.ref_,
        url: body.url,
        date_released: body.date_released,
        status: body
            .status
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(Status::parse)
            .transpose()?,
        projects: project_refs(body.projects),
    };
    let prepared = super::commits::prepare(
        &state,
        &auth,
        &org_slug,
        &version,
        &req.projects,
        body.commit_fields,
        true,
    )
    .await?;
    let view = state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &org_slug)?;
            let r = release::update(tx, &org, &version, &req)?;
            let r = super::commits::apply(tx, &org, r, prepared)?;
            release::view(tx, r)
        })
        .await?;
    Ok(Json(render::release(&view)))
}

/// DELETE: 204 on success.
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &org_slug)?;
            release::delete(tx, &org, &version)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// `/projects/{org}/{project}/releases/{version}/...`: what sentry-cli 2.x calls when one
// project is configured. The release must be one of the project's; then each is the
// organization-scoped endpoint.
// ---------------------------------------------------------------------------------------------

/// 404 unless the release is one of the project's.
pub(super) async fn check_in_project(
    state: &AppState,
    auth: &Auth,
    org_slug: &str,
    project: String,
    version: &str,
) -> Result<(), ApiError> {
    let (auth, org_slug, version) = (auth.clone(), org_slug.to_string(), version.to_string());
    state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            release::get_in_project(conn, &org, Some(&project), &version).map(|_| ())
        })
        .await?;
    Ok(())
}

/// GET `/projects/{org}/{project}/releases/{version}/`.
pub async fn get_in_project(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project, version)): Path<(String, String, String)>,
    q: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    check_in_project(&state, &auth, &org_slug, project, &version).await?;
    get(State(state), auth, Path((org_slug, version)), q).await
}

/// PUT `/projects/{org}/{project}/releases/{version}/` (2.x `releases finalize`, set-commits).
pub async fn update_in_project(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project, version)): Path<(String, String, String)>,
    body: JsonBody<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    check_in_project(&state, &auth, &org_slug, project, &version).await?;
    update(State(state), auth, Path((org_slug, version)), body).await
}

/// DELETE `/projects/{org}/{project}/releases/{version}/`.
pub async fn delete_in_project(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project, version)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    check_in_project(&state, &auth, &org_slug, project, &version).await?;
    delete(State(state), auth, Path((org_slug, version))).await
}
