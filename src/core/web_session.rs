//! Signing in to the web pages: one-time sign-in links (`shiplog open`), sessions made from a
//! link or an API token, and the per-session CSRF token of every form.
//!
//! Secrets are 32 random bytes, hex; the store keeps only their SHA-256. A session's CSRF
//! token is derived from the session's secret (not from its stored hash), so it needs no column
//! and cannot be computed from a copy of the database.

use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::CoreError;
use crate::model::time;
use crate::store::orgs::Org;
use crate::store::web_sessions::{self, WebSession};

/// How long a sign-in link stays usable.
pub const LINK_TTL: Duration = Duration::minutes(10);
/// How long a browser session lasts (from sign-in; no sliding renewal).
pub const SESSION_TTL: Duration = Duration::days(14);

fn secret() -> Result<String, CoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CoreError::Conflict(format!("cannot read randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of the session whose secret is `session_secret`.
pub fn csrf_token(session_secret: &str) -> String {
    hex::encode(Sha256::digest(
        format!("shiplog-csrf:{session_secret}").as_bytes(),
    ))
}

/// Makes a one-time sign-in link's secret for `org`.
pub fn create_link(conn: &Connection, org: &Org, now: DateTime<Utc>) -> Result<String, CoreError> {
    let secret = secret()?;
    web_sessions::insert_link(
        conn,
        org.id,
        &hash(&secret),
        &time::format(now),
        &time::format(now + LINK_TTL),
    )?;
    Ok(secret)
}

/// Uses a sign-in link: a new session's secret, or `None` if the link is unknown, already used
/// or expired.
pub fn redeem_link(
    conn: &Connection,
    link_secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, CoreError> {
    let Some(org_id) = web_sessions::consume_link(conn, &hash(link_secret), &time::format(now))?
    else {
        return Ok(None);
    };
    Ok(Some(new_session(conn, org_id, "link", now)?))
}

/// Signs in with an API token: a new session's secret for the token's organization, or `None`
/// if the token is not a live one.
pub fn sign_in_with_token(
    conn: &Connection,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, CoreError> {
    let Some(token) = super::token::authenticate(conn, token.trim())? else {
        return Ok(None);
    };
    let origin = format!("token:{}", token.name);
    Ok(Some(new_session(conn, token.org_id, &origin, now)?))
}

fn new_session(
    conn: &Connection,
    org_id: i64,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<String, CoreError> {
    let secret = secret()?;
    let stamp = time::format(now);
    // Expired rows go whenever a session is made: sign-ins are rare, so this stays cheap.
    web_sessions::prune(conn, &stamp)?;
    web_sessions::insert_session(
        conn,
        org_id,
        &hash(&secret),
        origin,
        &stamp,
        &time::format(now + SESSION_TTL),
    )?;
    Ok(secret)
}

/// The live session behind a cookie's secret.
pub fn session(
    conn: &Connection,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Option<WebSession>, CoreError> {
    Ok(web_sessions::session_by_hash(
        conn,
        &hash(secret),
        &time::format(now),
    )?)
}

/// Ends a session.
pub fn sign_out(conn: &Connection, secret: &str) -> Result<(), CoreError> {
    web_sessions::delete_session(conn, &hash(secret))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_link_works_once_and_not_after_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let now = Utc::now();
        store
            .write_blocking(|tx| {
                let org = crate::store::orgs::ensure_org(tx, "acme", &time::format(now))?;
                let link = create_link(tx, &org, now)?;
                let session = redeem_link(tx, &link, now)?.expect("first use signs in");
                assert!(redeem_link(tx, &link, now)?.is_none(), "second use refused");
                let found = super::session(tx, &session, now)?.expect("session is live");
                assert_eq!(found.org_slug, "acme");
                assert!(super::session(tx, &session, now + SESSION_TTL)?.is_none());

                let late = create_link(tx, &org, now)?;
                assert!(redeem_link(tx, &late, now + LINK_TTL)?.is_none());

                sign_out(tx, &session)?;
                assert!(super::session(tx, &session, now)?.is_none());
                assert_ne!(csrf_token(&session), csrf_token(&link));
                Ok::<_, CoreError>(())
            })
            .unwrap();
    }
}
