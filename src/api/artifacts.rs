//! Artifact endpoints: assemble (sentry-cli's second half of an upload), release files, and
//! lookups.
//!
//! - `POST /organizations/{org}/artifactbundle/assemble/` — `{checksum, chunks, projects,
//!   version?, dist?}`; answers `{state, missingChunks, detail}` at once (`not_found` with the
//!   chunks to upload, then `created`, `assembling`, `ok` or `error`) while the pipeline
//!   assembles. A bundle over `artifacts.max_file_size` is a 413.
//! - `POST /organizations/{org}/releases/{version}/assemble/` — the legacy release-bundle form,
//!   `{checksum, chunks}`, for the release in the path.
//! - `GET /organizations/{org}/releases/{version}/files/[?dist=D]` (and
//!   `/projects/{org}/{project}/releases/{version}/files/...` for every files route, which
//!   sentry-cli 2.x calls with `-p`; `POST` there is `api::release_files`) — the release's artifacts,
//!   Sentry's `{id, name, dist, headers, size, sha1, dateCreated}`, paginated with `cursor`.
//! - `GET .../files/{id}/` — one artifact; with `?download=1` its bytes, streamed.
//! - `DELETE .../files/{id}/` — 204.
//! - `GET /organizations/{org}/artifacts/lookup/?debug_id=ID&url=URL&release=V&dist=D` —
//!   shiplog's own: every artifact stored under the debug id (any release, or none), and the
//!   artifact a release serves for the URL (tried in Sentry's `normalize` order), each with a
//!   `download` path.
//! - `GET /organizations/{org}/artifact-bundles/{bundle_id}/files/?path=P` — the bytes of one
//!   entry of a stored bundle (what a debug-id lookup of a bundle points at).

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Auth;
use super::chunks;
use super::error::ApiError;
use super::extract::{JsonBody, QueryPairs};
use super::release_files;
use crate::core::artifact::{self, Answer, AssembleRequest, Task};
use crate::core::release::Cursor;
use crate::core::{self, CoreError};
use crate::store::artifacts::{Content, Listed};
use crate::store::releases;

/// The artifact routes, below `/api/0`: uploads get `limits.max_upload_body`, the JSON
/// endpoints the JSON limit.
pub fn routes(json_limit: usize, upload_limit: usize) -> Router<AppState> {
    let uploads = Router::new()
        .route(
            "/organizations/{org}/chunk-upload/",
            get(chunks::options).post(chunks::upload),
        )
        .route(
            "/organizations/{org}/releases/{version}/files/",
            get(list_files).post(release_files::upload),
        )
        .route(
            "/projects/{org}/{project}/releases/{version}/files/",
            get(list_files).post(release_files::upload),
        )
        .layer(DefaultBodyLimit::max(upload_limit));
    let json = Router::new()
        .route(
            "/organizations/{org}/artifactbundle/assemble/",
            post(assemble_bundle),
        )
        .route(
            "/organizations/{org}/releases/{version}/assemble/",
            post(assemble_release),
        )
        .route(
            "/organizations/{org}/releases/{version}/files/{id}/",
            get(get_file).delete(delete_file),
        )
        .route(
            "/projects/{org}/{project}/releases/{version}/files/{id}/",
            get(get_file).delete(delete_file),
        )
        .route(
            "/organizations/{org}/files/source-maps/",
            delete(release_files::delete_all),
        )
        .route(
            "/projects/{org}/{project}/files/source-maps/",
            delete(release_files::delete_all),
        )
        .route("/organizations/{org}/artifacts/lookup/", get(lookup))
        .route(
            "/organizations/{org}/artifact-bundles/{bundle_id}/files/",
            get(bundle_file),
        )
        .layer(DefaultBodyLimit::max(json_limit));
    uploads.merge(json)
}

/// A project as sentry-cli names it in an assemble request: a slug, or an id (sent as a
/// string, sometimes as a number).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ProjectWire {
    Slug(String),
    Id(i64),
}

#[derive(Debug, Deserialize)]
pub struct AssembleBody {
    checksum: Option<String>,
    chunks: Option<Vec<String>>,
    #[serde(default)]
    projects: Option<Vec<ProjectWire>>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    dist: Option<String>,
}

impl AssembleBody {
    fn into_request(self) -> Result<AssembleRequest, CoreError> {
        let checksum = self
            .checksum
            .ok_or_else(|| CoreError::invalid("checksum", "checksum: This field is required."))?;
        let chunks = self
            .chunks
            .ok_or_else(|| CoreError::invalid("chunks", "chunks: This field is required."))?;
        Ok(AssembleRequest {
            checksum: checksum.to_ascii_lowercase(),
            chunks: chunks.into_iter().map(|c| c.to_ascii_lowercase()).collect(),
            projects: self
                .projects
                .unwrap_or_default()
                .into_iter()
                .map(|p| match p {
                    ProjectWire::Slug(s) => s,
                    ProjectWire::Id(id) => id.to_string(),
                })
                .collect(),
            version: self.version.filter(|v| !v.is_empty()),
            dist: self.dist.filter(|d| !d.is_empty()),
            checksum_verified: false,
        })
    }
}

fn state_body(state: &str, missing: &[String], detail: Option<&str>) -> Response {
    Json(json!({ "state": state, "missingChunks": missing, "detail": detail })).into_response()
}

async fn answer(
    state: AppState,
    auth: Auth,
    org_slug: String,
    task: Task,
    req: AssembleRequest,
) -> Result<Response, ApiError> {
    let settings = state.artifacts.clone();
    let answer = state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &org_slug)?;
            artifact::begin_assemble(tx, &settings, &org, task, &req, &core::now())
        })
        .await?;
    Ok(match answer {
        Answer::Missing(missing) => state_body("not_found", &missing, None),
        Answer::State { state, detail } => state_body(&state, &[], detail.as_deref()),
        Answer::TooLarge(detail) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, detail).into_response()
        }
        Answer::Started(event) => {
            if let Err(e) = state.pipeline.submit("api", &event).await {
                // Clients poll this detail: the database's own words stay in the log.
                tracing::error!(error = %e, "cannot queue an assemble");
                let detail = "cannot queue the assemble; the server log has the details".to_owned();
                let ev = event.clone();
                let d = detail.clone();
                let _ = state
                    .store
                    .write(move |tx| artifact::fail_to_queue(tx, &ev, &d))
                    .await;
                return Err(ApiError::from(e));
            }
            state_body("created", &[], None)
        }
    })
}

/// `POST /organizations/{org}/artifactbundle/assemble/`.
pub async fn assemble_bundle(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
    JsonBody(body): JsonBody<AssembleBody>,
) -> Result<Response, ApiError> {
    let req = body.into_request()?;
    answer(state, auth, org_slug, Task::ArtifactBundle, req).await
}

/// `POST /organizations/{org}/releases/{version}/assemble/` (legacy release bundles): the
/// release must exist; the bundle belongs to it and to its projects.
pub async fn assemble_release(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
    JsonBody(body): JsonBody<AssembleBody>,
) -> Result<Response, ApiError> {
    let mut req = body.into_request()?;
    let check = auth.clone();
    let (slug, v) = (org_slug.clone(), version.clone());
    let projects = state
        .store
        .read(move |conn| {
            let org = check.org(conn, &slug)?;
            let release = core::release::get(conn, &org, &v)?;
            let ids = releases::project_ids(conn, release.id)?;
            Ok::<_, CoreError>(ids.into_iter().map(|id| id.to_string()).collect::<Vec<_>>())
        })
        .await?;
    req.version = Some(version);
    req.projects = projects;
    answer(state, auth, org_slug, Task::ReleaseBundle, req).await
}

fn parse_headers(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!({}))
}

/// Sentry's release-file serializer.
pub(super) fn render_file(f: &Listed) -> Value {
    json!({
        "id": f.id.to_string(),
        "name": f.name,
        "dist": f.dist,
        "headers": parse_headers(&f.headers),
        "size": f.size,
        "sha1": f.sha1,
        "dateCreated": f.date_created,
    })
}

/// `?dist=` narrows to one dist; `?dist=` with an empty value means "no dist".
fn dist_filter(q: &QueryPairs) -> Option<Option<String>> {
    q.get("dist")
        .map(|d| (!d.is_empty()).then(|| d.to_string()))
}

/// The path of a release's files, organization- or project-scoped (`/projects/{org}/{project}/
/// releases/{version}/files/`, which sentry-cli 2.x calls with `-p`).
#[derive(Debug, Deserialize)]
pub struct FilesPath {
    pub org: String,
    pub project: Option<String>,
    pub version: String,
}

/// [`FilesPath`] plus a file id.
#[derive(Debug, Deserialize)]
pub struct FilePath {
    org: String,
    project: Option<String>,
    version: String,
    id: String,
}

/// `GET .../releases/{version}/files/`.
pub async fn list_files(
    State(state): State<AppState>,
    auth: Auth,
    Path(FilesPath {
        org: org_slug,
        project,
        version,
    }): Path<FilesPath>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let per_page = match q.get("per_page") {
        None => 100,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_request("per_page must be a number from 1 to 1000"))?,
    };
    let page = Cursor::page_number(q.get("cursor"))?;
    let dist = dist_filter(&q);
    let path = match &project {
        Some(p) => format!("/api/0/projects/{org_slug}/{p}/releases/{version}/files/"),
        None => format!("/api/0/organizations/{org_slug}/releases/{version}/files/"),
    };
    let mut items = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let release = core::release::get_in_project(conn, &org, project.as_deref(), &version)?;
            artifact::list(
                conn,
                &release,
                dist.as_ref().map(|d| d.as_deref()),
                per_page + 1,
                (page as usize).saturating_mul(per_page),
            )
        })
        .await?;
    let has_next = items.len() > per_page;
    items.truncate(per_page);
    let body: Vec<Value> = items.iter().map(render_file).collect();
    let (prev, next) = Cursor::around_page(per_page, page, has_next);
    let link = super::link_header(&state.public_url, &path, &q, prev, next);
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, v);
    }
    Ok(response)
}

/// A streamed download of an artifact's bytes.
fn download(state: &AppState, content: Content, name: &str, size: Option<u64>) -> Response {
    let rx = artifact::stream(&state.store, content);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(size) = size
        && let Ok(v) = HeaderValue::from_str(&size.to_string())
    {
        headers.insert(header::CONTENT_LENGTH, v);
    }
    let basename = name.rsplit('/').next().unwrap_or(name);
    let safe: String = basename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `GET .../releases/{version}/files/{id}/[?download=1]`.
pub async fn get_file(
    State(state): State<AppState>,
    auth: Auth,
    Path(FilePath {
        org: org_slug,
        project,
        version,
        id,
    }): Path<FilePath>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let id = artifact::parse_id(&id)?;
    let file = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let release = core::release::get_in_project(conn, &org, project.as_deref(), &version)?;
            artifact::get(conn, &release, id)
        })
        .await?;
    let wants_bytes = matches!(q.get("download"), Some(v) if v != "0" && v != "false");
    if wants_bytes {
        return Ok(download(
            &state,
            file.content.clone(),
            &file.name,
            Some(file.size),
        ));
    }
    Ok(Json(render_file(&file)).into_response())
}

/// `DELETE .../releases/{version}/files/{id}/`.
pub async fn delete_file(
    State(state): State<AppState>,
    auth: Auth,
    Path(FilePath {
        org: org_slug,
        project,
        version,
        id,
    }): Path<FilePath>,
) -> Result<Response, ApiError> {
    let id = artifact::parse_id(&id)?;
    state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &org_slug)?;
            let release = core::release::get_in_project(tx, &org, project.as_deref(), &version)?;
            artifact::delete(tx, &release, id)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn download_path(org: &str, found: &artifact::Found) -> String {
    match (&found.release, &found.artifact_id, &found.content) {
        (Some(release), Some(id), _) => format!(
            "/api/0/organizations/{org}/releases/{}/files/{id}/?download=1",
            percent(release)
        ),
        (
            _,
            _,
            Content::Bundle {
                bundle_id, path, ..
            },
        ) => format!(
            "/api/0/organizations/{org}/artifact-bundles/{bundle_id}/files/?path={}",
            percent(path)
        ),
        (_, _, Content::File { .. }) => String::new(),
    }
}

/// Percent-encodes everything but unreserved characters (a path segment or query value).
fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /organizations/{org}/artifacts/lookup/`.
pub async fn lookup(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
    q: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let debug_id = q
        .get("debug_id")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let url = q.get("url").filter(|v| !v.is_empty()).map(str::to_string);
    if debug_id.is_none() && url.is_none() {
        return Err(ApiError::bad_request(
            "Give debug_id=<uuid> and/or url=<url>&release=<version> to look artifacts up",
        ));
    }
    let release = q
        .get("release")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let dist = q.get("dist").filter(|v| !v.is_empty()).map(str::to_string);
    let slug = org_slug.clone();
    let found = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &slug)?;
            artifact::lookup(
                conn,
                &org,
                debug_id.as_deref(),
                url.as_deref(),
                release.as_deref(),
                dist.as_deref(),
            )
        })
        .await?;
    let list: Vec<Value> = found
        .iter()
        .map(|f| {
            let (bundle_id, path) = match &f.content {
                Content::Bundle {
                    bundle_id, path, ..
                } => (Some(bundle_id.clone()), Some(path.clone())),
                Content::File { .. } => (None, None),
            };
            json!({
                "matchedBy": f.matched_by,
                "url": f.url,
                "type": f.kind,
                "debugId": f.debug_id,
                "release": f.release,
                "dist": f.dist,
                "id": f.artifact_id.map(|i| i.to_string()),
                "size": f.size,
                "sha1": f.sha1,
                "headers": f.headers.as_deref().map(parse_headers),
                "bundleId": bundle_id,
                "path": path,
                "download": download_path(&org_slug, f),
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `GET /organizations/{org}/artifact-bundles/{bundle_id}/files/?path=P`.
pub async fn bundle_file(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, bundle_id)): Path<(String, String)>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let Some(path) = q.get("path").map(str::to_string) else {
        return Err(ApiError::bad_request(
            "Give path=<entry path inside the bundle>, e.g. files/_/_/app.min.js",
        ));
    };
    let p = path.clone();
    let bs = state.store.blob_store();
    let content = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let content = artifact::bundle_entry(conn, &org, &bundle_id, &p)?;
            if !artifact::content_exists(conn, &bs, &content)? {
                return Err(CoreError::NotFound(format!(
                    "The bundle has no entry {p:?}"
                )));
            }
            Ok(content)
        })
        .await?;
    Ok(download(&state, content, &path, None))
}
