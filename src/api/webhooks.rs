//! `POST /webhooks/github`: GitHub's deliveries, verified, stored and answered at once.
//!
//! Outside `/api/0` and its token auth: GitHub authenticates with the HMAC signature instead
//! (`github::webhook` has the rules). The route has its own body limit, GitHub's 25 MB cap.
//! A verified delivery goes into the durable inbox under `hook_id:delivery` and the answer is
//! 202 (200 for a delivery already received); the pipeline worker applies it afterwards.
//! Refusals store nothing: 403 without a configured secret, 401 for a bad signature, 400 for
//! malformed JSON, 413 for an oversized body.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::body_rejection;
use crate::github::webhook::{self, IntakeError, Request};
use crate::pipeline::Submitted;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /webhooks/github`.
pub async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let secret = state.github_webhook_secret.clone();
    if secret.is_none() {
        return Err(refusal(IntakeError::NoSecret));
    }
    let body = body.map_err(|e| {
        let mut err = body_rejection(e);
        crate::metrics::webhook_delivery(crate::metrics::refusal_reason(err.status.as_u16()));
        if err.status == StatusCode::PAYLOAD_TOO_LARGE {
            err.detail = format!(
                "the delivery is larger than GitHub's {} MB payload cap",
                webhook::MAX_BODY / (1024 * 1024)
            );
        }
        err
    })?;
    let req = Request {
        event: header(&headers, "x-github-event"),
        delivery: header(&headers, "x-github-delivery"),
        hook_id: header(&headers, "x-github-hook-id"),
        signature_256: header(&headers, "x-hub-signature-256"),
        signature_1: headers.contains_key("x-hub-signature"),
        content_type: header(&headers, "content-type"),
        body: &body,
    };
    let delivery =
        webhook::intake(secret.as_deref(), &req, &crate::core::now()).map_err(refusal)?;
    let guid = delivery.delivery.clone();
    let submitted = state.pipeline.submit("github", &delivery).await?;
    crate::metrics::webhook_delivery(match submitted {
        Submitted::New(_) => "queued",
        Submitted::Duplicate => "duplicate",
    });
    Ok(match submitted {
        Submitted::New(_) => (
            StatusCode::ACCEPTED,
            Json(json!({"delivery": guid, "status": "queued"})),
        ),
        Submitted::Duplicate => (
            StatusCode::OK,
            Json(
                json!({"delivery": guid, "status": "duplicate", "detail": "this delivery was already received; it is processed once"}),
            ),
        ),
    })
}

fn refusal(e: IntakeError) -> ApiError {
    let (status, outcome) = match &e {
        IntakeError::NoSecret => (StatusCode::FORBIDDEN, "no_secret"),
        IntakeError::Signature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
        IntakeError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
    };
    crate::metrics::webhook_delivery(outcome);
    tracing::warn!(%status, reason = %e, "GitHub delivery refused");
    ApiError::new(status, e.to_string())
}
