//! What the HTTP layer tells operators: a request id and a metrics sample per request, and the
//! `GET /metrics` endpoint.
//!
//! [`observe`] wraps every route (it runs after routing, so it knows the matched route
//! template). It takes the client's `X-Request-Id` when it is a sane token, else makes one,
//! opens a `request` span carrying it — so every log line written while the request is handled
//! names it, in human and JSON logs alike — returns it as `X-Request-Id`, and records the
//! request's route, method, status and latency ([`crate::metrics::http_request`]).
//!
//! `/metrics` is outside the API's token auth: scrapers do not hold API tokens. It admits
//! loopback clients (unless `metrics.allow_loopback: false`) and any client sending
//! `metrics.token` as a bearer token; others get 403, and `metrics.enabled: false` makes it 404.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;
use super::error::ApiError;

/// The header a request id arrives and leaves in.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

/// A client's request id is kept when it is 1 to 64 characters of `[A-Za-z0-9._-]`.
fn client_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let sane = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    sane.then(|| text.to_owned())
}

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
}

/// The middleware around every route: request id, span, metrics.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = client_request_id(request.headers().get(&REQUEST_ID)).unwrap_or_else(new_request_id);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| tracing::debug!(status, ms = elapsed.as_millis() as u64, "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    crate::metrics::http_request(&route, method.as_str(), status, elapsed);
    response
}

/// `GET /metrics`: every metric in Prometheus' text format.
pub async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    let settings = &state.metrics;
    if !settings.enabled {
        return ApiError::not_found().into_response();
    }
    let loopback = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| c.0.ip().is_loopback());
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = match (settings.token.as_deref(), bearer) {
        // Comparing digests: how long the comparison takes says nothing about the token.
        (Some(want), Some(got)) => {
            use sha2::{Digest, Sha256};
            Sha256::digest(want.as_bytes()) == Sha256::digest(got.trim().as_bytes())
        }
        _ => false,
    };
    if !(token_ok || (loopback && settings.allow_loopback)) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "metrics are served to loopback clients, or to others with `Authorization: Bearer <metrics.token>`",
        )
        .into_response();
    }
    crate::metrics::refresh_store_gauges(&state.store).await;
    match crate::metrics::render() {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder is installed in this process",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request_ids_are_kept_only_when_sane() {
        let ok = HeaderValue::from_static("abc-123_x.y");
        assert_eq!(client_request_id(Some(&ok)).as_deref(), Some("abc-123_x.y"));
        let spaced = HeaderValue::from_static("a b");
        assert_eq!(client_request_id(Some(&spaced)), None);
        let long = HeaderValue::from_str(&"a".repeat(65)).unwrap();
        assert_eq!(client_request_id(Some(&long)), None);
        assert_eq!(client_request_id(None), None);
        assert_eq!(new_request_id().len(), 16);
    }
}
