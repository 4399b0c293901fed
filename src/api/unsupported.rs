//! Sentry routes that sentry-cli (or a script) calls for features shiplog does not have: debug
//! files, ProGuard and other symbol files, cron monitors, logs, replays, builds and
//! snapshots, code mappings.
//!
//! Each answers `400 {"detail": "shiplog does not ..."}` for any method. Not a 404: sentry-cli
//! rewrites a 404 into its own guesses ("Project not found", "organization not found"), which
//! send a user looking for a typo that is not there; the `detail` of any other error it prints
//! as is (`sentry reported an error: <detail> (http status: 400)`).

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;

use super::AppState;
use super::error::ApiError;

const DEBUG_FILES: &str = "shiplog does not store debug files (debug-files, ProGuard mappings, \
     Dart symbol maps): it keeps releases, commits, deploys, issues and source maps only";
const MONITORS: &str = "shiplog does not have cron monitors (check-ins sent to it are accepted \
     and ignored)";
const LOGS: &str = "shiplog does not store logs or other event datasets (use `sentry-cli events \
     list` or `shiplog issues` for errors)";
const REPLAYS: &str = "shiplog does not store session replays";
const BUILDS: &str = "shiplog does not store mobile builds or snapshots";
const CODE_MAPPINGS: &str = "shiplog does not have code mappings: it matches stack frames to \
     commit file paths itself";

/// The routes, below `/api/0`.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    let table: &[(&str, &'static str)] = &[
        (
            "/projects/{org}/{project}/files/difs/assemble/",
            DEBUG_FILES,
        ),
        ("/projects/{org}/{project}/files/dsyms/", DEBUG_FILES),
        ("/projects/{org}/{project}/files/dsyms/{*rest}", DEBUG_FILES),
        (
            "/projects/{org}/{project}/files/proguard-artifact-releases/",
            DEBUG_FILES,
        ),
        ("/projects/{org}/{project}/reprocessing/", DEBUG_FILES),
        ("/organizations/{org}/monitors/", MONITORS),
        ("/organizations/{org}/monitors/{*rest}", MONITORS),
        ("/projects/{org}/{project}/monitors/{*rest}", MONITORS),
        ("/organizations/{org}/events/", LOGS),
        ("/organizations/{org}/replays/", REPLAYS),
        ("/organizations/{org}/replays/{*rest}", REPLAYS),
        ("/projects/{org}/{project}/replays/{*rest}", REPLAYS),
        (
            "/projects/{org}/{project}/files/preprodartifacts/assemble/",
            BUILDS,
        ),
        ("/projects/{org}/{project}/preprodartifacts/{*rest}", BUILDS),
        ("/organizations/{org}/preprodartifacts/{*rest}", BUILDS),
        ("/organizations/{org}/code-mappings/{*rest}", CODE_MAPPINGS),
    ];
    for (path, detail) in table {
        let detail: &'static str = detail;
        router = router.route(
            path,
            any(move || async move { ApiError::new(StatusCode::BAD_REQUEST, detail) }),
        );
    }
    router
}
