//! Repositories: each one's hooks, spool backlog and last reconcile; whether commits are
//! pending; recent GitHub deliveries with their outcome.

use axum::extract::{Path, State};
use axum::response::Response;

use super::auth::Session;
use super::releases::Nav;
use super::{PageError, render, util};
use crate::api::AppState;
use crate::core::{self, CoreError};
use crate::store::{github, refs, repos};

pub struct RepoRow {
    pub name: String,
    pub source: String,
    pub hooks: String,
    pub spool_backlog: String,
    pub reconciled: String,
}

pub struct DeliveryRow {
    pub event: String,
    pub repository: String,
    pub received: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(askama::Template)]
#[template(path = "repos.html")]
struct ReposPage {
    nav: Nav,
    repos: Vec<RepoRow>,
    commits_pending: bool,
    deliveries: Vec<DeliveryRow>,
}

/// `GET /organizations/{org}/repos/`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(org_slug): Path<String>,
) -> Result<Response, PageError> {
    session.check_org(&org_slug)?;
    let (repos, commits_pending, deliveries) = state
        .store
        .read(move |conn| {
            let org = core::org::org(conn, &org_slug)?;
            let mut rows = Vec::new();
            for r in repos::list(conn, org.id)? {
                // The hooks and spool of a repository on this disk (hooks::status reads the
                // files, as `shiplog hooks status` does).
                let local = r
                    .path
                    .as_deref()
                    .and_then(|p| crate::hooks::locate(std::path::Path::new(p)).ok())
                    .map(|loc| crate::hooks::status(&loc));
                let (hooks, spool_backlog) = match &local {
                    Some(s) => {
                        let installed: Vec<String> = s
                            .hooks
                            .iter()
                            .filter(|h| h.state != "missing")
                            .map(|h| {
                                if h.state == "installed" {
                                    h.name.to_string()
                                } else {
                                    format!("{} ({})", h.name, h.state)
                                }
                            })
                            .collect();
                        (
                            if installed.is_empty() {
                                "none installed".to_string()
                            } else {
                                installed.join(", ")
                            },
                            s.spool_backlog.to_string(),
                        )
                    }
                    None => ("—".into(), "—".into()),
                };
                rows.push(RepoRow {
                    source: r
                        .path
                        .clone()
                        .or(r.url.clone())
                        .unwrap_or_else(|| r.provider.clone()),
                    reconciled: refs::reconciled_at(conn, r.id)?
                        .as_deref()
                        .map(util::when)
                        .unwrap_or_else(|| "never".into()),
                    name: r.name,
                    hooks,
                    spool_backlog,
                });
            }
            let pending = github::any_commits_pending(conn, org.id)?;
            let deliveries = github::deliveries(conn, org.id, 20)?
                .into_iter()
                .map(|d| DeliveryRow {
                    event: match &d.action {
                        Some(a) => format!("{} ({a})", d.event),
                        None => d.event.clone(),
                    },
                    repository: d.repository.unwrap_or_default(),
                    received: util::when(&d.received_at),
                    outcome: d.outcome,
                    detail: d.detail,
                })
                .collect();
            Ok::<_, CoreError>((rows, pending, deliveries))
        })
        .await?;
    render(&ReposPage {
        nav: Nav::new(&session, "repos"),
        repos,
        commits_pending,
        deliveries,
    })
}
