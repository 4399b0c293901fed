//! Sentry's ingest endpoints: `POST /api/{project_id}/envelope/` (what SDKs and `sentry-cli
//! send-event` use) and the legacy `POST /api/{project_id}/store/`.
//!
//! They sit outside `/api/0/` and its bearer tokens: an SDK authenticates with the project's
//! DSN public key, sent as `X-Sentry-Auth: Sentry sentry_key=<key>, ...` (or `Authorization:
//! Sentry ...`), as the `sentry_key` query parameter, or as the envelope header's `dsn`
//! (sentry-cli-protocol.md §2.4, §9). The key must belong to the project in the path.
//!
//! A request is read whole (up to `limits.max_upload_body`, gzip and deflate bodies
//! decompressed within the same limit), parsed, and only then stored, in one transaction: a
//! malformed or oversized request changes nothing. Event items over 1 MiB (Relay's
//! `max_event_size`) are refused with 413. `session` and `sessions` items go to release health
//! (`core::health`): a refused session is counted, never an error of the request. Other item
//! types (attachments, client reports, transactions) are accepted and ignored.
//!
//! Each event is parsed, grouped and compressed here, on the request's own task, so the single
//! writer's (grouped) transaction only runs SQL. At most `limits.ingest_queue` requests are in
//! progress; one more is shed with 429 and `Retry-After` before its body is read.

use std::io::Read;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::QueryPairs;
use crate::core::CoreError;
use crate::core::health;
use crate::core::issue::{self, Ingested, PreparedEvent};
use crate::model::envelope;
use crate::store::issues as store;

/// Largest event item accepted (Relay's default `max_event_size`).
pub const MAX_EVENT_SIZE: usize = 1024 * 1024;

fn rejected(status: StatusCode, detail: impl Into<String>) -> ApiError {
    ApiError::new(status, detail)
}

/// The `sentry_key` of an `X-Sentry-Auth`/`Authorization: Sentry ...` header value.
pub fn sentry_key_of(value: &str) -> Option<String> {
    let value = value.trim();
    let rest = value
        .strip_prefix("Sentry ")
        .or_else(|| value.strip_prefix("sentry "))
        .unwrap_or(value);
    rest.split(',').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == "sentry_key").then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The public key of a DSN (`http://<key>@host/42`).
fn key_of_dsn(dsn: &str) -> Option<String> {
    let rest = dsn.split_once("://").map_or(dsn, |(_, r)| r);
    let (userinfo, _) = rest.split_once('@')?;
    let key = userinfo.split(':').next()?;
    (!key.is_empty()).then(|| key.to_string())
}

fn request_key(headers: &HeaderMap, query: &QueryPairs) -> Option<String> {
    for name in ["x-sentry-auth", "authorization"] {
        if let Some(key) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(sentry_key_of)
        {
            return Some(key);
        }
    }
    query.get("sentry_key").map(str::to_string)
}

fn too_large(limit: usize) -> ApiError {
    rejected(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds the {limit}-byte limit (limits.max_upload_body)"),
    )
}

/// Reads the body (up to `limit`) and undoes `Content-Encoding: gzip|deflate` within the same
/// limit.
async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let raw: Bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        // axum reports the limit only through the error's text ("length limit exceeded").
        let mut too_big = false;
        let mut cur: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = cur {
            too_big |= err.to_string().contains("length limit");
            cur = err.source();
        }
        if too_big {
            too_large(limit)
        } else {
            ApiError::bad_request(format!("cannot read request body: {e}"))
        }
    })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let decode = |reader: &mut dyn Read, name: &str| -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::new();
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::bad_request(format!("invalid {name} body: {e}")))?;
        if out.len() > limit {
            return Err(too_large(limit));
        }
        Ok(out)
    };
    match encoding.as_str() {
        "" | "identity" => Ok(raw.to_vec()),
        "gzip" | "x-gzip" => decode(&mut flate2::read::GzDecoder::new(&raw[..]), "gzip"),
        "deflate" => decode(&mut flate2::read::ZlibDecoder::new(&raw[..]), "deflate"),
        other => Err(rejected(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding \"{other}\" (use gzip or deflate)"),
        )),
    }
}

fn parse_project_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid project id \"{text}\" in the URL")))
}

fn event_object(payload: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if payload.len() > MAX_EVENT_SIZE {
        return Err(rejected(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "event of {} bytes exceeds the {MAX_EVENT_SIZE}-byte limit",
                payload.len()
            ),
        ));
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "invalid event: the payload is not a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!("invalid event JSON: {e}"))),
    }
}

/// One parsed request, ready to store: its events parsed, grouped and compressed here, off
/// the writer. An event that could not be prepared fails the request inside the write, after
/// the key was checked, as before (a wrong key answers 403 whatever the payload).
struct Submission {
    project_id: i64,
    key: String,
    events: Vec<Result<PreparedEvent, CoreError>>,
    envelope_event_id: Option<String>,
    sessions: health::Prepared,
}

/// Authenticates and stores the events of one request in one transaction.
async fn store_events(
    state: &AppState,
    sub: Submission,
    received: chrono::DateTime<chrono::Utc>,
) -> Result<Json<Value>, ApiError> {
    let header_id = sub.envelope_event_id.clone();
    let results: Vec<Ingested> = state
        .store
        .write(move |tx| {
            let (org, project) = match store::project_by_public_key(tx, &sub.key)? {
                Some(found) => found,
                None => {
                    return Err(CoreError::Forbidden(format!(
                        "event submission rejected: unknown DSN key \"{}\"; get the project's DSN with `shiplog projects dsn SLUG`",
                        sub.key
                    )));
                }
            };
            if project.id != sub.project_id {
                return Err(CoreError::Forbidden(format!(
                    "event submission rejected: the DSN key belongs to project {} ({}), not project {}",
                    project.id, project.slug, sub.project_id
                )));
            }
            let mut out = Vec::with_capacity(sub.events.len());
            for event in sub.events {
                out.push(issue::ingest_prepared(tx, &org, &project, &event?)?);
            }
            if !sub.sessions.is_empty() {
                health::record(tx, &org, &project, &sub.sessions, received)?;
            }
            Ok::<_, CoreError>(out)
        })
        .await?;
    let id = results
        .first()
        .map(|r| r.event_id.clone())
        .or_else(|| header_id.and_then(|h| crate::model::event::normalize_event_id(&h)));
    Ok(Json(match id {
        Some(id) => json!({ "id": id }),
        None => json!({}),
    }))
}

/// How long a shed client is asked to wait: the queue drains in well under a second at the
/// rates the writer sustains (BENCHMARKS.md "Event ingest").
const RETRY_AFTER_SECS: &str = "1";

/// A slot for one ingest request, or the 429 that sheds it: taken before the body is read,
/// so the requests in progress (and the bodies they hold) are bounded by
/// `limits.ingest_queue` and a burst past it waits at the client, not in the daemon.
fn admit(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, Box<Response>> {
    state.ingest_slots.clone().try_acquire_owned().map_err(|_| {
        crate::metrics::envelope_items(
            ["envelope"],
            Some(crate::metrics::refusal_reason(
                StatusCode::TOO_MANY_REQUESTS.as_u16(),
            )),
        );
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, RETRY_AFTER_SECS)],
            Json(json!({
                "detail": "too many events in progress (limits.ingest_queue); retry after the Retry-After delay"
            })),
        )
            .into_response()
            .into()
    })
}

/// `POST /api/{project_id}/envelope/`.
pub async fn envelope(
    State(state): State<AppState>,
    project_id: Path<String>,
    query: QueryPairs,
    request: Request,
) -> Response {
    match admit(&state) {
        Ok(_slot) => envelope_admitted(state, project_id, query, request)
            .await
            .into_response(),
        Err(shed) => *shed,
    }
}

async fn envelope_admitted(
    state: AppState,
    Path(project_id): Path<String>,
    query: QueryPairs,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let received = chrono::Utc::now();
    let project_id = parse_project_id(&project_id)?;
    let (parts, body) = request.into_parts();
    let mut key = request_key(&parts.headers, &query);
    let body = read_body(&parts.headers, body, state.artifacts.max_upload_body)
        .await
        .inspect_err(count_unread_envelope)?;
    let env = envelope::parse(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid envelope: {e}")))
        .inspect_err(count_unread_envelope)?;
    let result = async {
        if key.is_none() {
            key = env.dsn().and_then(key_of_dsn);
        }
        let key = key.ok_or_else(missing_auth)?;
        let items: Vec<_> = env.items.iter().filter(|i| i.ty == "event").collect();
        // The envelope's event id names the event only when it carries one.
        let header_id = env.event_id().filter(|_| items.len() == 1);
        let mut events = Vec::with_capacity(items.len());
        for item in items {
            let object = event_object(&item.payload)?;
            events.push(issue::prepare_event(
                &object,
                Some(&item.payload),
                header_id,
                received,
            ));
        }
        let sub = Submission {
            project_id,
            key,
            events,
            envelope_event_id: env.event_id().map(str::to_string),
            sessions: health::prepare(&env, received, &state.health),
        };
        store_events(&state, sub, received).await
    }
    .await;
    let refused = result.as_ref().err();
    crate::metrics::envelope_items(
        env.items.iter().map(|i| i.ty.as_str()),
        refused.map(|e| crate::metrics::refusal_reason(e.status.as_u16())),
    );
    result
}

/// Counts an envelope refused before its items could be read as one refused `envelope` item.
fn count_unread_envelope(e: &ApiError) {
    crate::metrics::envelope_items(
        ["envelope"],
        Some(crate::metrics::refusal_reason(e.status.as_u16())),
    );
}

fn missing_auth() -> ApiError {
    rejected(
        StatusCode::UNAUTHORIZED,
        "missing authorization information: send `X-Sentry-Auth: Sentry sentry_key=<public key>` or `?sentry_key=` (the key is the user part of the project's DSN)",
    )
}

/// `POST /api/{project_id}/store/`: one event per request, as JSON (older SDKs send it
/// base64-encoded and zlib-compressed, which is accepted too).
pub async fn store(
    State(state): State<AppState>,
    project_id: Path<String>,
    query: QueryPairs,
    request: Request,
) -> Response {
    match admit(&state) {
        Ok(_slot) => store_admitted(state, project_id, query, request)
            .await
            .into_response(),
        Err(shed) => *shed,
    }
}

async fn store_admitted(
    state: AppState,
    Path(project_id): Path<String>,
    query: QueryPairs,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let project_id = parse_project_id(&project_id)?;
    let (parts, body) = request.into_parts();
    let key = request_key(&parts.headers, &query).ok_or_else(missing_auth)?;
    let mut body = read_body(&parts.headers, body, state.artifacts.max_upload_body).await?;
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first.is_some() && first != Some(b'{') {
        body = legacy_decode(&body, state.artifacts.max_upload_body)?;
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "empty request body: expected an event",
        ));
    }
    let received = chrono::Utc::now();
    let event = event_object(&body)?;
    let sub = Submission {
        project_id,
        key,
        events: vec![issue::prepare_event(&event, Some(&body), None, received)],
        envelope_event_id: None,
        sessions: health::Prepared::default(),
    };
    store_events(&state, sub, received).await
}

fn legacy_decode(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|_| ApiError::bad_request("invalid event: expected a JSON object"))?;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("invalid compressed event: {e}")))?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sentry_keys() {
        assert_eq!(
            sentry_key_of("Sentry sentry_key=abc123pub, sentry_version=7, sentry_timestamp=1.5, sentry_client=sentry-cli/x86_64").as_deref(),
            Some("abc123pub")
        );
        assert_eq!(
            sentry_key_of("Sentry sentry_version=7,sentry_key=k").as_deref(),
            Some("k")
        );
        assert_eq!(sentry_key_of("Bearer xyz"), None);
        assert_eq!(
            key_of_dsn("http://abc@127.0.0.1:9/42").as_deref(),
            Some("abc")
        );
        assert_eq!(key_of_dsn("https://pub:secret@h/1").as_deref(), Some("pub"));
        assert_eq!(key_of_dsn("http://h/1"), None);
    }
}
