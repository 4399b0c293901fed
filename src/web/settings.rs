//! Settings: API tokens (list, create — shown once — revoke) and the projects' DSNs.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::auth::{Session, check_form};
use super::releases::Nav;
use super::{PageError, render, util};
use crate::api::AppState;
use crate::core::{self, CoreError};
use crate::store::{orgs, tokens};

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub tail: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(askama::Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    tokens: Vec<TokenRow>,
    dsns: Vec<(String, String)>,
    created: Option<String>,
    message: Option<String>,
}

async fn page_with(
    state: &AppState,
    session: &Session,
    created: Option<String>,
    message: Option<String>,
) -> Result<Response, PageError> {
    let org_slug = session.session.org_slug.clone();
    let public_url = state.public_url.to_string();
    let (tokens, dsns) = state
        .store
        .read(move |conn| {
            let org = core::org::org(conn, &org_slug)?;
            let tokens = tokens::list(conn)?
                .into_iter()
                .filter(|t| t.org_id == org.id)
                .map(|t| TokenRow {
                    id: t.id,
                    name: t.name,
                    tail: t.token_tail,
                    created: util::when(&t.date_added),
                    last_used: t
                        .date_last_used
                        .as_deref()
                        .map(util::when)
                        .unwrap_or("never".into()),
                    revoked: t.date_revoked.is_some(),
                })
                .collect();
            let mut dsns = Vec::new();
            for p in orgs::list_projects(conn, org.id)? {
                let dsn = core::issue::dsn(conn, &p, &public_url).unwrap_or_else(|e| e.to_string());
                dsns.push((p.slug, dsn));
            }
            Ok::<_, CoreError>((tokens, dsns))
        })
        .await?;
    render(&SettingsPage {
        nav: Nav::new(session, "settings"),
        tokens,
        dsns,
        created,
        message,
    })
}

/// `GET /organizations/{org}/settings/`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(org_slug): Path<String>,
) -> Result<Response, PageError> {
    session.check_org(&org_slug)?;
    page_with(&state, &session, None, None).await
}

/// `POST /organizations/{org}/settings/`: `action=create` (with `name`) or `action=revoke`
/// (with `id`). A new token is shown once, in this response, and never again.
pub async fn action(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path(org_slug): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_org(&org_slug)?;
    check_form(&state, &session, &headers, &form)?;
    match form.get("action").map(String::as_str) {
        Some("create") => {
            let name = form
                .get("name")
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "web".into());
            let public_url = state.public_url.to_string();
            let now = chrono::Utc::now();
            let value = state
                .store
                .write(move |tx| {
                    let org = core::org::org(tx, &org_slug)?;
                    core::token::create(
                        tx,
                        &org,
                        &name,
                        &public_url,
                        now.timestamp_millis() as f64 / 1000.0,
                        &crate::model::time::format(now),
                    )
                    .map(|(_, v)| v)
                })
                .await?;
            let mut response = page_with(&state, &session, Some(value), None).await?;
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(response)
        }
        Some("revoke") => {
            let id: i64 = form
                .get("id")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| PageError::new(StatusCode::BAD_REQUEST, "No token id"))?;
            let done = state
                .store
                .write(move |tx| {
                    let org = core::org::org(tx, &org_slug)?;
                    // Only a token of this session's organization.
                    let mine = tokens::list(tx)?
                        .iter()
                        .any(|t| t.id == id && t.org_id == org.id);
                    if !mine {
                        return Ok(false);
                    }
                    Ok::<_, CoreError>(tokens::revoke(tx, id, &core::now())?)
                })
                .await?;
            let message = if done {
                format!("Token {id} revoked.")
            } else {
                format!("No active token {id}.")
            };
            page_with(&state, &session, None, Some(message)).await
        }
        _ => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Unknown action (expected create or revoke)",
        )),
    }
}
