//! `/api/0/organizations/{org}/releases/{version}/deploys/`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::JsonBody;
use super::releases::{ProjectRefWire, project_refs};
use super::render;
use crate::core::deploy::{self, CreateDeploy};
use crate::core::{self, CoreError};

/// The POST body (Sentry's DeploySerializer).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployBody {
    environment: Option<String>,
    name: Option<String>,
    url: Option<String>,
    date_started: Option<String>,
    date_finished: Option<String>,
    projects: Option<Vec<ProjectRefWire>>,
}

/// POST: record a deploy (201).
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
    JsonBody(body): JsonBody<DeployBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let environment = body
        .environment
        .ok_or_else(|| CoreError::invalid("environment", "environment: This field is required."))?;
    if matches!(&body.projects, Some(p) if p.is_empty()) {
        return Err(CoreError::invalid("projects", "projects: This list may not be empty.").into());
    }
    let req = CreateDeploy {
        environment,
        name: body.name.filter(|s| !s.is_empty()),
        url: body.url.filter(|s| !s.is_empty()),
        date_started: body.date_started,
        date_finished: body.date_finished,
        projects: project_refs(body.projects),
    };
    let d = state
        .store
        .write(move |tx| {
            let org = auth.org(tx, &org_slug)?;
            deploy::create(tx, &org, &version, &req, &core::now())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(render::deploy(&d))))
}

/// GET: the latest deploy per (project, environment), newest first.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let list = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            deploy::list(conn, &org, &version)
        })
        .await?;
    Ok(Json(list.iter().map(render::deploy).collect()))
}
