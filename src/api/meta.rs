//! Health, the token check sentry-cli makes, organizations and projects.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Auth, bearer};
use super::error::ApiError;
use super::render;
use crate::core::CoreError;
use crate::store::orgs;

/// `GET /healthz`: 200 once the daemon serves requests.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /api/0/`: the token check of `sentry-cli info` and `login`. Without a token it answers
/// like Sentry does for anonymous callers; with a bad one, 401.
pub async fn index(State(state): State<AppState>, parts: Parts) -> Result<Json<Value>, ApiError> {
    if bearer(&parts).is_none() {
        return Ok(Json(json!({"version": "0", "auth": null, "user": null})));
    }
    let mut parts = parts;
    let auth =
        <Auth as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state)
            .await?;
    // Org tokens have no user in Sentry either; sentry-cli prints "Valid org token".
    Ok(Json(json!({
        "version": "0",
        "auth": {"scopes": auth.token.scopes},
        "user": null,
    })))
}

/// `GET /api/0/organizations/`: the token's organization.
pub async fn organizations(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<Value>>, ApiError> {
    let public_url = state.public_url.clone();
    let org = state
        .store
        .read(move |conn| {
            orgs::org_by_id(conn, auth.token.org_id)?
                .ok_or_else(|| CoreError::NotFound("Organization not found".into()))
        })
        .await?;
    Ok(Json(vec![render::organization(&org, &public_url)]))
}

/// `GET /api/0/organizations/{org}/`.
pub async fn organization(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let public_url = state.public_url.clone();
    let org = state
        .store
        .read(move |conn| auth.org(conn, &org_slug))
        .await?;
    Ok(Json(render::organization(&org, &public_url)))
}

/// `GET /api/0/organizations/{org}/projects/`.
pub async fn projects(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let (org, list) = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let list = orgs::list_projects(conn, org.id)?;
            Ok::<_, CoreError>((org, list))
        })
        .await?;
    Ok(Json(
        list.iter().map(|p| render::project(p, &org)).collect(),
    ))
}
