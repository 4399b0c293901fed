//! sentry-cli 2.x's legacy release files ([`crate::core::release_file`]):
//!
//! - `POST /organizations/{org}/releases/{version}/files/` and
//!   `POST /projects/{org}/{project}/releases/{version}/files/` — multipart with a `file` part,
//!   `name` (the URL; else the file name), optional `dist` and repeated `header` (`Key:Value`)
//!   fields; 201 with the release file, 409 when the release already has that name.
//! - `DELETE /organizations/{org}/files/source-maps/?name=VERSION` (and the project-scoped
//!   path) — every file of the release, 204 (`files delete --all`).
//!
//! Listing, reading and deleting one file are the artifact endpoints (`api::artifacts`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::artifacts::{FilesPath, render_file};
use super::auth::Auth;
use super::chunks::{multipart_error, read_part};
use super::error::ApiError;
use super::extract::QueryPairs;
use crate::core::release_file::{self, Upload};
use crate::core::{self, CoreError};

/// `POST .../releases/{version}/files/`: one file.
pub async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Path(path): Path<FilesPath>,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let limit = state.artifacts.max_upload_body;
    let mut file: Option<(Option<String>, Vec<u8>)> = None;
    let mut name: Option<String> = None;
    let mut dist: Option<String> = None;
    let mut headers = BTreeMap::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Ok(multipart_error(e, limit)),
        };
        let field_name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        let data = match read_part(&mut field, limit).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "File is larger than limits.max_upload_body",
                ));
            }
            Err(e) => return Ok(multipart_error(e, limit)),
        };
        let text = || String::from_utf8_lossy(&data).into_owned();
        match field_name.as_str() {
            "file" => file = Some((filename, data)),
            "name" => name = Some(text()),
            "dist" => dist = Some(text()).filter(|d| !d.is_empty()),
            "header" => {
                let (k, v) = release_file::parse_header(&text())?;
                headers.insert(k, v);
            }
            _ => {}
        }
    }
    let Some((filename, data)) = file else {
        return Err(ApiError::bad_request("Missing uploaded file"));
    };
    let name = name
        .filter(|n| !n.is_empty())
        .or(filename)
        .unwrap_or_default();
    let bs = state.store.blob_store();
    let listed = state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &path.org)?;
            let release =
                core::release::get_in_project(tx, &org, path.project.as_deref(), &path.version)?;
            let up = Upload {
                name: &name,
                dist: dist.as_deref(),
                headers,
                data: &data,
            };
            release_file::upload(tx, &bs, &org, &release, &up, &core::now())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(render_file(&listed))).into_response())
}

/// The path of the source-maps endpoint.
#[derive(Debug, Deserialize)]
pub struct SourceMapsPath {
    org: String,
    project: Option<String>,
}

/// `DELETE .../files/source-maps/?name=VERSION`: every file of a release.
pub async fn delete_all(
    State(state): State<AppState>,
    auth: Auth,
    Path(path): Path<SourceMapsPath>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let version = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Give the release as ?name=VERSION"))?
        .to_string();
    state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &path.org)?;
            let release =
                core::release::get_in_project(tx, &org, path.project.as_deref(), &version)?;
            release_file::delete_all(tx, &release)?;
            Ok::<_, CoreError>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
