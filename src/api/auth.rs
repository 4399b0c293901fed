//! Bearer-token authentication as an extractor: handlers receive an [`Auth`] or never run.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use rusqlite::Connection;

use super::AppState;
use super::error::ApiError;
use crate::core::{self, CoreError};
use crate::store::orgs::Org;
use crate::store::tokens::Token;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth {
    pub token: Token,
}

/// The bearer value of the request, if it has one.
pub fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        Some(rest.trim().to_string())
    } else {
        None
    }
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, detail)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = bearer(parts) else {
            return Err(unauthorized(
                "Authentication credentials were not provided. Send `Authorization: Bearer <token>`; create a token with `shiplog token create`",
            ));
        };
        if value.is_empty() {
            return Err(unauthorized("Invalid token: the bearer value is empty"));
        }
        let token = state
            .store
            .read(move |conn| core::token::authenticate(conn, &value))
            .await?
            .ok_or_else(|| unauthorized("Invalid token"))?;
        state.note_token_use(&token);
        Ok(Auth { token })
    }
}

impl Auth {
    /// The organization named in the path, if this token may act on it.
    pub fn org(&self, conn: &Connection, slug: &str) -> Result<Org, CoreError> {
        let org = core::org::org(conn, slug)?;
        if org.id != self.token.org_id {
            return Err(CoreError::Forbidden(format!(
                "This token belongs to organization '{}' and cannot access '{}'",
                self.token.org_slug, slug
            )));
        }
        Ok(org)
    }
}
