//! Request extractors whose rejections are Sentry-shaped JSON errors, never plain text.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Parsed whatever the Content-Type says (sentry-cli always sends JSON); a body
/// over the route's limit is a 413, malformed JSON a 400 naming what is wrong.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "Request body is empty; expected a JSON object",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
    }
}

/// Maps a failure to read the body, telling a too-large body apart.
pub fn body_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body is larger than this endpoint accepts",
        )
    } else {
        ApiError::bad_request(format!("Cannot read request body: {e}"))
    }
}

/// Query parameters as ordered pairs, so repeated keys (`project=1&project=2`) survive.
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `project` parameters as ids or slugs; `-1` (all projects) and empty ones dropped.
    pub fn projects(&self) -> Vec<crate::core::org::ProjectRef> {
        use crate::core::org::ProjectRef;
        self.all("project")
            .into_iter()
            .filter(|p| !p.is_empty() && *p != "-1")
            .map(|p| match p.parse::<i64>() {
                Ok(id) => ProjectRef::Id(id),
                Err(_) => ProjectRef::Slug(p.to_string()),
            })
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|q| QueryPairs(q.0))
            .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))
    }
}
