//! `GET /api/0/organizations/{org}/github/deliveries/` and `.../github/hooks/`: what GitHub
//! has sent and what shiplog did with it (shiplog's own endpoints; Sentry has none).

use axum::Json;
use axum::extract::{Path, State};

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::QueryPairs;
use crate::core::CoreError;
use crate::store::github::{self, DeliveryLog, Hook};

/// The newest delivery outcomes, newest first (`?per_page=`, default 50, at most 1000).
pub async fn deliveries(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
    query: QueryPairs,
) -> Result<Json<Vec<DeliveryLog>>, ApiError> {
    let limit = match query.get("per_page") {
        None => 50,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_request("per_page must be a number from 1 to 1000"))?,
    };
    let list = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org)?;
            Ok::<_, CoreError>(github::deliveries(conn, org.id, limit)?)
        })
        .await?;
    Ok(Json(list))
}

/// The webhooks that have pinged shiplog.
pub async fn hooks(
    State(state): State<AppState>,
    auth: Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<Hook>>, ApiError> {
    let list = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org)?;
            Ok::<_, CoreError>(github::hooks(conn, org.id)?)
        })
        .await?;
    Ok(Json(list))
}
