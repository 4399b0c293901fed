//! `/api/0/organizations/{org}/chunk-upload/`: the upload half of sentry-cli's chunk protocol
//! (sentry-cli-protocol.md §7.2–7.4).
//!
//! `GET` advertises the options sentry-cli chunks by. The chunk size is 1 MiB — a power of
//! two, as Sentry requires for old sentry-cli versions, and equal to the blob size at rest, so
//! every uploaded chunk is stored as it arrives and assembling a bundle copies nothing.
//! (Sentry's 8 MiB would have to be re-cut into 1 MiB blobs, and buffers eight times more per
//! chunk.) Smaller chunks only mean more parts per request: 32 fit the default 32 MiB
//! `maxRequestSize`, under the 64 `chunksPerRequest`.
//!
//! `POST` takes a multipart body with one part per chunk, named `file` (raw) or `file_gzip`
//! (each chunk its own gzip stream), whose filename is the sha1 of the uncompressed bytes. The
//! body is read part by part: at most one chunk is in memory, and each is written as soon as
//! it is checked. Errors are Sentry's, as 400 with `error` and `detail`: `Chunk size too
//! large`, `Request too large`, `Too many chunks`, `Checksum mismatch`. A body over
//! `limits.max_upload_body` is refused with 413 before it is read.

use std::io::Read;

use axum::Json;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use crate::core::artifact::{CHUNKS_PER_REQUEST, UPLOAD_CONCURRENCY};
use crate::core::{self, CoreError};
use crate::store::StoreError;
use crate::store::blobs::{self, BLOB_SIZE, BlobError};

/// The largest gzip stream accepted for one chunk: deflate can grow incompressible data a
/// little, never by an eighth.
const MAX_GZIP_CHUNK: usize = BLOB_SIZE + BLOB_SIZE / 8 + 1024;

/// What sentry-cli may ask the server to accept (Sentry's `accept` list).
const ACCEPT: &[&str] = &[
    "release_files",
    "sources",
    "artifact_bundles",
    "artifact_bundles_v2",
];

/// `GET`: the chunk-upload options.
pub async fn options(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let org = state
        .store
        .read(move |conn| auth.org(conn, &org_slug))
        .await?;
    let s = &state.artifacts;
    Ok(Json(json!({
        // Relative: sentry-cli joins it to the base URL it already uses for us.
        "url": format!("/api/0/organizations/{}/chunk-upload/", org.slug),
        "chunkSize": BLOB_SIZE,
        "chunksPerRequest": CHUNKS_PER_REQUEST,
        "maxFileSize": s.max_file_size,
        "maxRequestSize": s.max_request_size,
        "concurrency": UPLOAD_CONCURRENCY,
        "hashAlgorithm": "sha1",
        "compression": ["gzip"],
        "accept": ACCEPT,
    })))
}

/// A refused upload: Sentry's `{"error": ...}` plus `detail` for sentry-cli's message.
fn refuse(error: &str, specifics: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": error, "detail": format!("{error}: {specifics}") })),
    )
        .into_response()
}

/// A multipart failure as Sentry's JSON: 413 past `limits.max_upload_body`, else 400.
pub(super) fn multipart_error(e: MultipartError, limit: usize) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request body is larger than this endpoint accepts ({limit} bytes, limits.max_upload_body)"
            ),
        )
        .into_response()
    } else {
        ApiError::bad_request(format!("Malformed multipart body: {}", e.body_text()))
            .into_response()
    }
}

/// Reads one part, refusing it as soon as it grows past `cap`.
pub(super) async fn read_part(
    field: &mut Field<'_>,
    cap: usize,
) -> Result<Option<Vec<u8>>, MultipartError> {
    // A chunk is usually a whole blob: one allocation instead of a doubling series of copies.
    let mut out = Vec::with_capacity(cap.min(BLOB_SIZE));
    while let Some(bytes) = field.chunk().await? {
        if out.len() + bytes.len() > cap {
            return Ok(None);
        }
        out.extend_from_slice(&bytes);
    }
    Ok(Some(out))
}

fn gunzip(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(BLOB_SIZE.min(raw.len() * 4));
    flate2::read::MultiGzDecoder::new(raw)
        .take(BLOB_SIZE as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a gzip stream: {e}"))?;
    Ok(out)
}

/// `POST`: stores the chunks of a multipart body.
pub async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let org = state
        .store
        .read(move |conn| auth.org(conn, &org_slug))
        .await?;
    let limit = state.artifacts.max_upload_body;
    let max_request = state.artifacts.max_request_size;
    let mut count = 0usize;
    let mut total = 0u64;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Ok(multipart_error(e, limit)),
        };
        let gzip = match field.name() {
            Some("file") => false,
            Some("file_gzip") => true,
            // Sentry reads only these two fields.
            _ => continue,
        };
        let Some(name) = field.file_name().map(str::to_string) else {
            return Err(ApiError::bad_request(
                "Each chunk part needs a filename: the sha1 of its uncompressed bytes",
            ));
        };
        count += 1;
        if count > CHUNKS_PER_REQUEST {
            return Ok(refuse(
                "Too many chunks",
                format!("at most {CHUNKS_PER_REQUEST} chunks per request (chunksPerRequest)"),
            ));
        }
        let cap = if gzip { MAX_GZIP_CHUNK } else { BLOB_SIZE };
        let raw = match read_part(&mut field, cap).await {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                return Ok(refuse(
                    "Chunk size too large",
                    format!("chunk {name} is larger than chunkSize ({BLOB_SIZE} bytes)"),
                ));
            }
            Err(e) => return Ok(multipart_error(e, limit)),
        };
        drop(field);
        // Decompress and hash off the async threads, and before taking the writer.
        let checked = tokio::task::spawn_blocking(move || {
            let data = if gzip {
                gunzip(&raw).map_err(|e| (None, e))?
            } else {
                raw
            };
            if data.len() > BLOB_SIZE {
                return Err((Some("Chunk size too large"), format!(
                    "chunk {name} is larger than chunkSize ({BLOB_SIZE} bytes) once decompressed"
                )));
            }
            match blobs::verify(&name, &data) {
                Ok(sha1) => Ok((sha1, data)),
                Err(BlobError::Mismatch { expected, actual }) => Err((
                    Some("Checksum mismatch"),
                    format!("the chunk named {expected} has sha1 {actual}"),
                )),
                Err(e) => Err((None, e.to_string())),
            }
        })
        .await
        .map_err(|e| ApiError::from(StoreError::Task(e.to_string())))?;
        let (sha1, data) = match checked {
            Ok(ok) => ok,
            Err((Some(error), specifics)) => return Ok(refuse(error, specifics)),
            Err((None, message)) => return Err(ApiError::bad_request(message)),
        };
        total += data.len() as u64;
        // A request always holds at least one chunk (sentry-cli sends one even when a single
        // chunk is over maxRequestSize).
        if total > max_request && count > 1 {
            return Ok(refuse(
                "Request too large",
                format!(
                    "the chunks of one request add up to more than maxRequestSize ({max_request} bytes, artifacts.max_request_size)"
                ),
            ));
        }
        let org_id = org.id;
        let bs = state.store.blob_store();
        state
            .store
            .write(move |tx| {
                blobs::put_hashed(tx, &bs, org_id, &sha1, &data, &core::now())?;
                Ok::<_, CoreError>(())
            })
            .await?;
    }
    Ok(StatusCode::OK.into_response())
}
