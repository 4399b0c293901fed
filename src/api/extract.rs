//! Request extractors whose rejections are Sentry-shaped JSON errors, never plain text.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Parsed whatever the Content-Type says (sentry-cli always sends JSON); a body
/// over the route's limit is a 413, malformed JSON a 400 naming what is wrong.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    super::AppState: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = super::AppState::from_ref(state).max_json_body;
        let bytes = read_limited(req, limit).await?;
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

/// How much of a too-large body is still read (and thrown away) before answering 413. A
/// server that answers while the client is still sending and then closes the connection makes
/// the client's kernel see a reset, and most clients then report "connection reset" instead of
/// the 413 (nginx calls the cure lingering close). Past this, the connection is cut anyway.
const DRAIN_LIMIT: usize = 64 << 20;

/// Reads a body of at most `limit` bytes. A longer one is read to its end (up to
/// [`DRAIN_LIMIT`]) without being kept, then refused with 413, so its sender reads the answer.
async fn read_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body is larger than this endpoint accepts",
        )
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_large());
    }
    let mut stream = req.into_body().into_data_stream();
    let mut kept = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("Cannot read request body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen > DRAIN_LIMIT {
            return Err(too_large());
        }
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
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
