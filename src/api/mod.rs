//! The HTTP layer: Sentry's web API subset that sentry-cli uses, plus health.
//!
//! Handlers only translate: they parse a wire struct, call `core` inside one store transaction,
//! and render Sentry's JSON. Errors leave as [`error::ApiError`], always JSON with `detail`.
//! One `router` builds every route; JSON routes get a small body limit.

pub mod artifacts;
pub mod auth;
pub mod chunks;
pub mod commits;
pub mod deploys;
pub mod error;
pub mod extract;
pub mod github;
pub mod health;
pub mod ingest;
pub mod issues;
pub mod limits;
pub mod meta;
pub mod project_issues;
pub mod release_files;
pub mod releases;
pub mod render;
pub mod telemetry;
pub mod unsupported;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use crate::core::release::Cursor;
use crate::pipeline::Pipeline;
use crate::store::Store;
use crate::store::tokens::Token;
use extract::QueryPairs;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Where adapters on the HTTP side (webhooks) submit events.
    pub pipeline: Pipeline,
    /// The externally reachable base URL (embedded in tokens, used in `Link` headers).
    pub public_url: Arc<str>,
    /// Largest JSON body accepted.
    pub max_json_body: usize,
    /// The GitHub webhook secret; without one, deliveries are refused.
    pub github_webhook_secret: Option<Arc<str>>,
    /// Upload limits (`limits.max_upload_body`, used by chunk uploads and envelopes) and the
    /// artifact rules (index_min_files, ...).
    pub artifacts: Arc<crate::core::artifact::Settings>,
    /// Who may read `/metrics` (`metrics:`).
    pub metrics: Arc<crate::config::MetricsConfig>,
    /// Release-health rules (`health:`).
    pub health: Arc<crate::core::health::Settings>,
    /// When each token last had its `date_last_used` written, to write it at most once a
    /// minute instead of on every request.
    token_touches: Arc<std::sync::Mutex<std::collections::HashMap<i64, Instant>>>,
    /// Slots of event-ingest requests in progress (`limits.ingest_queue`, see `ingest`).
    pub ingest_slots: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(store: Store, pipeline: Pipeline, public_url: String, max_json_body: usize) -> Self {
        AppState {
            store,
            pipeline,
            public_url: public_url.trim_end_matches('/').into(),
            max_json_body,
            github_webhook_secret: None,
            artifacts: Default::default(),
            metrics: Default::default(),
            health: Default::default(),
            token_touches: Default::default(),
            ingest_slots: Arc::new(tokio::sync::Semaphore::new(
                crate::config::LimitsConfig::default().ingest_queue,
            )),
        }
    }

    /// Sets how many event-ingest requests may be in progress (`limits.ingest_queue`).
    pub fn with_ingest_queue(mut self, slots: usize) -> Self {
        self.ingest_slots = Arc::new(tokio::sync::Semaphore::new(slots.max(1)));
        self
    }

    /// Sets the secret GitHub webhook deliveries are verified with.
    pub fn with_github_webhook_secret(mut self, secret: Option<String>) -> Self {
        self.github_webhook_secret = secret.filter(|s| !s.is_empty()).map(Into::into);
        self
    }

    /// Sets the artifact limits and rules (from the config's `artifacts:` and `limits:`).
    pub fn with_artifacts(mut self, settings: crate::core::artifact::Settings) -> Self {
        self.artifacts = Arc::new(settings);
        self
    }

    /// Sets who may read `/metrics`; an empty token counts as none.
    pub fn with_metrics(mut self, mut settings: crate::config::MetricsConfig) -> Self {
        settings.token = settings.token.filter(|t| !t.is_empty());
        self.metrics = Arc::new(settings);
        self
    }

    /// Sets the release-health rules (from the config's `health:`).
    pub fn with_health(mut self, settings: crate::core::health::Settings) -> Self {
        self.health = Arc::new(settings);
        self
    }

    /// Records that a token was used, off the request path and at most once a minute.
    pub fn note_token_use(&self, token: &Token) {
        let due = {
            let mut touches = self.token_touches.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            match touches.get(&token.id) {
                Some(last) if now.duration_since(*last) < Duration::from_secs(60) => false,
                _ => {
                    touches.insert(token.id, now);
                    true
                }
            }
        };
        if due {
            let store = self.store.clone();
            let id = token.id;
            tokio::spawn(async move {
                let now = chrono::Utc::now();
                let minute_ago = crate::model::time::format(now - chrono::Duration::seconds(60));
                let now = crate::model::time::format(now);
                let result = store
                    .write(move |tx| crate::store::tokens::touch(tx, id, &now, &minute_ago))
                    .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "could not record token use");
                }
            });
        }
    }
}

/// Builds every route.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/organizations/", get(meta::organizations))
        .route("/organizations/{org}/", get(meta::organization))
        .route("/organizations/{org}/projects/", get(meta::projects))
        .route(
            "/organizations/{org}/releases/",
            get(releases::list).post(releases::create),
        )
        .route(
            "/organizations/{org}/releases/{version}/",
            get(releases::get)
                .put(releases::update)
                .delete(releases::delete),
        )
        .route(
            "/organizations/{org}/releases/{version}/deploys/",
            get(deploys::list).post(deploys::create),
        )
        .route(
            "/projects/{org}/{project}/releases/",
            get(releases::list_for_project).post(releases::create_for_project),
        )
        .route(
            "/projects/{org}/{project}/releases/{version}/",
            get(releases::get_in_project)
                .put(releases::update_in_project)
                .delete(releases::delete_in_project),
        )
        .route(
            "/projects/{org}/{project}/releases/{version}/commits/",
            get(commits::list_in_project),
        )
        .route(
            "/organizations/{org}/github/deliveries/",
            get(github::deliveries),
        )
        .route("/organizations/{org}/github/hooks/", get(github::hooks))
        .route("/organizations/{org}/issues/", get(issues::list))
        .route(
            "/organizations/{org}/issues/{id}/",
            get(issues::get).put(issues::update),
        )
        .route(
            "/organizations/{org}/issues/{id}/events/",
            get(issues::events),
        )
        .route(
            "/organizations/{org}/releases/{version}/resolved/",
            get(issues::resolved_in_release),
        )
        .route(
            "/organizations/{org}/releases/{version}/notes/",
            get(issues::release_notes),
        )
        .route(
            "/projects/{org}/{project}/issues/",
            get(project_issues::list).put(project_issues::bulk_update),
        )
        .route(
            "/projects/{org}/{project}/events/",
            get(project_issues::events),
        )
        .route(
            "/projects/{org}/{project}/events/{event_id}/committers/",
            get(issues::committers),
        )
        .route(
            "/organizations/{org}/releases/{version}/commits/",
            get(commits::list),
        )
        .route(
            "/organizations/{org}/releases/{version}/previous-with-commits/",
            get(commits::previous_with_commits),
        )
        .route("/organizations/{org}/repos/", get(commits::repos))
        .route("/organizations/{org}/sessions/", get(health::sessions))
        .route(
            "/organizations/{org}/sessions/refusals/",
            get(health::refusals),
        )
        .layer(DefaultBodyLimit::max(state.max_json_body))
        .merge(artifacts::routes(
            state.max_json_body,
            state.artifacts.max_upload_body,
        ))
        .merge(unsupported::routes());
    Router::new()
        .route("/healthz", get(meta::healthz))
        // Prometheus scrapers: outside the token auth, guarded by `metrics:` (api::telemetry).
        .route("/metrics", get(telemetry::metrics))
        // GitHub authenticates with its signature, not a token; its own body limit.
        .route(
            "/webhooks/github",
            post(webhooks::github).layer(DefaultBodyLimit::max(crate::github::webhook::MAX_BODY)),
        )
        // sentry-cli's token check; outside `nest` because a nested "/" would not match the
        // trailing slash.
        .route("/api/0/", get(meta::index))
        .nest("/api/0", api)
        // Sentry's ingest endpoints: DSN-key auth, outside /api/0/ (api::ingest).
        .route("/api/{project_id}/envelope/", post(ingest::envelope))
        .route("/api/{project_id}/envelope", post(ingest::envelope))
        .route("/api/{project_id}/store/", post(ingest::store))
        .route("/api/{project_id}/store", post(ingest::store))
        // The web pages (browser sessions, not tokens).
        .merge(crate::web::routes())
        .fallback(error::fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(telemetry::observe))
        .with_state(state)
}

/// Sentry's `Link` header for a page: the CLI reads only `rel="next"`'s `results` and `cursor`.
pub fn link_header(
    public_url: &str,
    path: &str,
    query: &QueryPairs,
    prev: Cursor,
    next: Cursor,
) -> String {
    let rest: Vec<String> = query
        .0
        .iter()
        .filter(|(k, _)| k != "cursor")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let base = format!("{public_url}{path}?{}", rest.join("&"));
    let part = |c: Cursor, rel: &str| {
        format!(
            "<{base}&cursor={c}>; rel=\"{rel}\"; results=\"{}\"; cursor=\"{c}\"",
            c.has_results
        )
    };
    format!("{}, {}", part(prev, "previous"), part(next, "next"))
}

/// A JSON page with its `Link` header ([`link_header`]).
pub fn paged_json(
    body: impl serde::Serialize,
    public_url: &str,
    path: &str,
    query: &QueryPairs,
    prev: Cursor,
    next: Cursor,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let link = link_header(public_url, path, query, prev, next);
    let mut response = axum::Json(body).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&link) {
        response.headers_mut().insert(axum::http::header::LINK, v);
    }
    response
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
