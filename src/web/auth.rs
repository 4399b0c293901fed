//! Browser sign-in for the pages, and the cross-site request guard of every form.
//!
//! A session is a random secret in an HttpOnly, SameSite=Lax cookie (`Secure` when
//! `public_url` is https); the store keeps its hash (`core::web_session`). A page asked for
//! without a live session answers a redirect to the sign-in page and nothing else. A form post
//! must carry the session's CSRF token and, when the browser says where it came from, come from
//! this site (`Origin`, `Sec-Fetch-Site`): SameSite=Lax already keeps the cookie off
//! cross-site posts, the token and the origin check make that independent of the browser.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::{PageError, render, util};
use crate::api::AppState;
use crate::core::web_session;
use crate::store::web_sessions::WebSession;

/// The session cookie's name.
pub const COOKIE: &str = "shiplog_session";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub session: WebSession,
    /// The cookie's secret (never stored); the CSRF token derives from it.
    secret: String,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl Session {
    /// The organization of the path, if it is this session's; a 404 otherwise, as for an
    /// organization that does not exist.
    pub fn check_org(&self, org: &str) -> Result<(), PageError> {
        if org == self.session.org_slug {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::NOT_FOUND,
                "This page does not exist, or belongs to an organization you are not signed in to",
            ))
        }
    }
}

/// The value of one cookie of the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// Where a signed-out visitor is sent: the sign-in page, remembering a local path to return to.
fn to_signin(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    Redirect::to(&format!("/auth/signin{}", util::query(&[("next", next)]))).into_response()
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(secret) = cookie(&parts.headers, COOKIE).filter(|s| !s.is_empty()) else {
            return Err(to_signin(parts));
        };
        let lookup = secret.clone();
        let found = state
            .store
            .read(move |conn| web_session::session(conn, &lookup, chrono::Utc::now()))
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        match found {
            Some(session) => Ok(Session {
                session,
                csrf: web_session::csrf_token(&secret),
                secret,
            }),
            None => Err(to_signin(parts)),
        }
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    let end = rest.find('/').unwrap_or(rest.len());
    &url[..scheme.len() + 3 + end]
}

/// Refuses a request a browser sent from another site: `Sec-Fetch-Site: cross-site`, or an
/// `Origin` that is neither this request's host nor `public_url`'s.
fn check_same_site(state: &AppState, headers: &HeaderMap) -> Result<(), PageError> {
    let refused = || {
        PageError::new(
            StatusCode::FORBIDDEN,
            "Cross-site request refused: submit the form from shiplog's own pages",
        )
    };
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site.eq_ignore_ascii_case("cross-site")
    {
        return Err(refused());
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| refused())?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = origin.eq_ignore_ascii_case(origin_of(&state.public_url))
        || (!host.is_empty()
            && (origin.eq_ignore_ascii_case(&format!("http://{host}"))
                || origin.eq_ignore_ascii_case(&format!("https://{host}"))));
    if ok { Ok(()) } else { Err(refused()) }
}

/// The guard of every state-changing form: same site, and the session's CSRF token.
pub fn check_form(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), PageError> {
    check_same_site(state, headers)?;
    let sent = form.get("csrf").map(String::as_str).unwrap_or("");
    if !constant_eq(sent.as_bytes(), session.csrf.as_bytes()) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "The form's security token is missing or stale: reload the page and try again",
        ));
    }
    Ok(())
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn session_cookie(public_url: &str, secret: &str, max_age: i64) -> String {
    let secure = if public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// Where to go after signing in: a local path only (never another site).
fn next_path(next: Option<&String>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") => p.clone(),
        _ => "/".into(),
    }
}

fn signed_in(state: &AppState, secret: &str, next: &str) -> Response {
    let cookie = session_cookie(
        &state.public_url,
        secret,
        web_session::SESSION_TTL.num_seconds(),
    );
    (
        [
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Redirect::to(next),
    )
        .into_response()
}

#[derive(askama::Template)]
#[template(path = "signin.html")]
struct SigninPage {
    next: String,
    error: Option<String>,
}

/// `GET /auth/signin`.
pub async fn signin_page(Query(q): Query<HashMap<String, String>>) -> Result<Response, PageError> {
    let error = match q.get("error").map(String::as_str) {
        Some("link") => Some(
            "That sign-in link is unknown, expired or already used. Run `shiplog open` for a new one."
                .to_string(),
        ),
        _ => None,
    };
    render(&SigninPage {
        next: next_path(q.get("next")),
        error,
    })
}

/// `POST /auth/signin`: signs in with an API token.
pub async fn signin_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    // No session yet, so no CSRF token: the origin check keeps other sites from signing a
    // browser in to an account of theirs.
    check_same_site(&state, &headers)?;
    let next = next_path(form.get("next"));
    let token = form.get("token").cloned().unwrap_or_default();
    let secret = state
        .store
        .write(move |tx| web_session::sign_in_with_token(tx, &token, chrono::Utc::now()))
        .await?;
    match secret {
        Some(secret) => Ok(signed_in(&state, &secret, &next)),
        None => {
            let page = SigninPage {
                next,
                error: Some("That token is not valid (unknown or revoked).".into()),
            };
            let mut response = render(&page)?;
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(response)
        }
    }
}

/// `GET /auth/open?token=`: a one-time sign-in link from `shiplog open`.
pub async fn open_link(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let link = q.get("token").cloned().unwrap_or_default();
    let secret = state
        .store
        .write(move |tx| web_session::redeem_link(tx, &link, chrono::Utc::now()))
        .await?;
    Ok(match secret {
        Some(secret) => signed_in(&state, &secret, "/"),
        None => Redirect::to("/auth/signin?error=link").into_response(),
    })
}

/// `POST /auth/signout`.
pub async fn signout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    check_form(&state, &session, &headers, &form)?;
    let secret = session.secret.clone();
    state
        .store
        .write(move |tx| web_session::sign_out(tx, &secret))
        .await?;
    Ok((
        [(header::SET_COOKIE, session_cookie(&state.public_url, "", 0))],
        Redirect::to("/auth/signin"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_next_paths() {
        assert_eq!(
            origin_of("https://a.example:8443/x/y"),
            "https://a.example:8443"
        );
        assert_eq!(origin_of("http://127.0.0.1:8740"), "http://127.0.0.1:8740");
        assert_eq!(next_path(Some(&"//evil.example/".to_string())), "/");
        assert_eq!(next_path(Some(&"https://evil.example/".to_string())), "/");
        assert_eq!(
            next_path(Some(&"/organizations/acme/issues/".to_string())),
            "/organizations/acme/issues/"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; shiplog_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        // Secure only behind https (a plain-http loopback daemon would never get it back).
        let c = session_cookie("https://shiplog.example", "s", 60);
        assert!(
            c.ends_with("; Secure") && c.contains("HttpOnly; SameSite=Lax"),
            "{c}"
        );
        assert!(!session_cookie("http://127.0.0.1:8740", "s", 60).contains("Secure"));
    }
}
