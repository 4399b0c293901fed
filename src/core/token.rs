//! API tokens: minting, authenticating, revoking.

use rusqlite::Connection;

use super::CoreError;
use crate::model::token::{self, Payload};
use crate::store::orgs::Org;
use crate::store::tokens::{self, Token};

/// The scopes every shiplog token carries; sentry-cli shows them in `info`.
pub const SCOPES: &[&str] = &[
    "org:read",
    "project:read",
    "project:write",
    "project:releases",
    "event:write",
];

/// Mints a token for `org`, embedding `public_url`, stores its hash and returns the token.
/// The token is shown once; it cannot be recovered from the database.
pub fn create(
    conn: &Connection,
    org: &Org,
    name: &str,
    public_url: &str,
    now_unix: f64,
    now: &str,
) -> Result<(i64, String), CoreError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| {
        CoreError::Conflict(format!("cannot read randomness for the token secret: {e}"))
    })?;
    let url = public_url.trim_end_matches('/').to_string();
    let value = token::mint(
        &Payload {
            iat: now_unix,
            url: Some(url.clone()),
            region_url: Some(url),
            org: org.slug.clone(),
        },
        &secret,
    );
    let tail: String = value
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let scopes: Vec<String> = SCOPES.iter().map(|s| s.to_string()).collect();
    let id = tokens::insert(
        conn,
        org.id,
        name,
        &token::hash(&value),
        &tail,
        &scopes,
        now,
    )?;
    Ok((id, value))
}

/// The live token behind a bearer value, or `None`.
pub fn authenticate(conn: &Connection, bearer: &str) -> Result<Option<Token>, CoreError> {
    Ok(tokens::active_by_hash(conn, &token::hash(bearer))?)
}
