//! The web pages: the releases index, a release's details, issues, settings — served by the
//! daemon on the API's listener, at Sentry's own paths (`/organizations/{org}/releases/`), so
//! links, bookmarks and `Fixes <issue URL>` land on them.
//!
//! Like `api/`, this layer only translates: each handler reads through the same `core`
//! functions the API handlers call and fills a template. Templates are askama's (compiled into
//! the binary, escaping HTML by default), the one stylesheet is embedded with `include_str!`,
//! charts are SVG drawn here: no JavaScript, no build step, nothing fetched from elsewhere.
//!
//! The pages are not public. [`auth`] signs a browser in (a one-time link from
//! `shiplog open`, or an API token pasted on the sign-in page) with an HttpOnly session cookie,
//! and guards every form against cross-site posts (a per-session token and the `Origin`).

pub mod auth;
mod chart;
mod issues;
mod notes;
mod releases;
mod repos;
mod settings;
mod util;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::api::AppState;
use crate::core::CoreError;

/// The stylesheet, embedded.
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The web routes, merged into the API's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/style.css", get(style))
        .route(
            "/auth/signin",
            get(auth::signin_page).post(auth::signin_token),
        )
        .route("/auth/open", get(auth::open_link))
        .route("/auth/signout", axum::routing::post(auth::signout))
        .route("/organizations/{org}/", get(org_home))
        .route("/organizations/{org}/releases/", get(releases::index))
        .route(
            "/organizations/{org}/releases/{version}/",
            get(releases::details).post(releases::action),
        )
        .route("/organizations/{org}/issues/", get(issues::list))
        .route(
            "/organizations/{org}/issues/{id}/",
            get(issues::details).post(issues::action),
        )
        .route("/organizations/{org}/repos/", get(repos::page))
        .route(
            "/organizations/{org}/settings/",
            get(settings::page).post(settings::action),
        )
}

/// `/`: the releases of the signed-in organization.
async fn home(session: auth::Session) -> Redirect {
    Redirect::to(&format!(
        "/organizations/{}/releases/",
        util::pct(&session.session.org_slug)
    ))
}

async fn org_home(session: auth::Session) -> Redirect {
    home(session).await
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE_CSS,
    )
        .into_response()
}

/// A page that could not be shown, rendered as a small HTML page with the right status.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError {
            status,
            message: message.into(),
        }
    }
}

impl From<CoreError> for PageError {
    fn from(e: CoreError) -> Self {
        let status = match &e {
            CoreError::NotFound(_) => StatusCode::NOT_FOUND,
            CoreError::Invalid { .. } => StatusCode::BAD_REQUEST,
            CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            CoreError::Conflict(_) => StatusCode::CONFLICT,
            CoreError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Database text stays in the log, as in the API.
            tracing::error!(error = %e, "web page failed");
            "Internal error; see the daemon's log".to_string()
        } else {
            e.to_string()
        };
        PageError { status, message }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        CoreError::from(e).into()
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "template failed");
        PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            status: self.status.as_u16(),
            reason: self.status.canonical_reason().unwrap_or(""),
            message: &self.message,
        };
        let body = askama::Template::render(&page).unwrap_or_else(|_| self.message.clone());
        (self.status, Html(body)).into_response()
    }
}

/// Renders a template as an HTML response.
pub(crate) fn render(t: &impl askama::Template) -> Result<Response, PageError> {
    Ok(Html(t.render()?).into_response())
}
