//! The releases index and a release's details page.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use rusqlite::Connection;
use serde_json::Value;

use super::auth::{Session, check_form};
use super::{PageError, chart, render, util};
use crate::api::AppState;
use crate::api::extract::QueryPairs;
use crate::core::health::sessions::SessionsRequest;
use crate::core::health::{self, HealthRequest};
use crate::core::org::ProjectRef;
use crate::core::release::{self, ListRequest, ReleaseView, Status, UpdateRelease};
use crate::core::{self, CoreError};
use crate::store::Store;
use crate::store::orgs::{self, Org};

/// What the header of every signed-in page needs.
pub struct Nav {
    pub org: String,
    pub org_url: String,
    pub csrf: String,
    pub section: &'static str,
}

impl Nav {
    pub fn new(session: &Session, section: &'static str) -> Nav {
        Nav {
            org: session.session.org_slug.clone(),
            org_url: util::pct(&session.session.org_slug),
            csrf: session.csrf.clone(),
            section,
        }
    }
}

/// The index's page size.
const PER_PAGE: usize = 25;

/// The sorts the index offers, as the API names them.
const SORTS: &[(&str, &str)] = &[
    ("date", "Date created"),
    ("semver", "Semantic version"),
    ("adoption", "Adoption"),
    ("crash_free_sessions", "Crash-free sessions"),
    ("crash_free_users", "Crash-free users"),
    ("sessions", "Sessions"),
    ("users", "Users"),
];

/// One project of a release row with its health over the last 24 h.
pub struct ProjectHealth {
    pub slug: String,
    pub crash_free_sessions: String,
    pub crash_free_users: String,
    pub sessions: u64,
    pub adoption: String,
    pub stage: &'static str,
}

pub struct IndexRow {
    pub url: String,
    pub package: String,
    pub version: String,
    pub date: String,
    pub commits: i64,
    pub authors: String,
    pub new_issues: i64,
    pub last_deploy: Option<String>,
    pub archived: bool,
    pub finalized: bool,
    pub projects: Vec<ProjectHealth>,
}

#[derive(Default)]
pub struct Filters {
    pub project: String,
    pub environment: String,
    pub status: String,
    pub query: String,
    pub sort: String,
}

#[derive(askama::Template)]
#[template(path = "releases.html")]
struct IndexPage {
    nav: Nav,
    rows: Vec<IndexRow>,
    projects: Vec<String>,
    f: Filters,
    sorts: &'static [(&'static str, &'static str)],
    prev_url: Option<String>,
    next_url: Option<String>,
    error: Option<String>,
}

fn author_names(view: &ReleaseView) -> String {
    let names: Vec<String> = view
        .authors
        .iter()
        .map(|a| {
            a["name"]
                .as_str()
                .or(a["email"].as_str())
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    match names.len() {
        0..=3 => names.join(", "),
        n => format!("{} +{}", names[..3].join(", "), n - 3),
    }
}

/// An adoption stage's CSS class and label.
fn stage_name(stage: &str) -> &'static str {
    match stage {
        "adopted" => "adopted",
        "replaced" => "replaced",
        _ => "low-adoption",
    }
}

/// Health per (release, project) over the last 24 h with adoption stages, for release rows.
fn project_health(
    conn: &Connection,
    reads: &Store,
    org: &Org,
    views: &[(ReleaseView, Option<i64>)],
    environments: &[String],
) -> Result<Vec<Vec<ProjectHealth>>, CoreError> {
    let mut pairs = Vec::new();
    for (view, only) in views {
        for (p, _) in &view.projects {
            if only.is_none_or(|id| id == p.id) {
                pairs.push((view.release.id, p.id));
            }
        }
    }
    let now = chrono::Utc::now().timestamp();
    let request = HealthRequest {
        environments: environments.to_vec(),
        summary_secs: 86400,
        stats: None,
        stat_users: false,
        now,
    };
    let data = health::health_data(conn, reads, org.id, &pairs, &request)?;
    let stages = health::stages(conn, &pairs, environments)?;
    Ok(views
        .iter()
        .map(|(view, only)| {
            view.projects
                .iter()
                .filter(|(p, _)| only.is_none_or(|id| id == p.id))
                .map(|(p, _)| {
                    let key = (view.release.id, p.id);
                    let h = data.get(&key).cloned().unwrap_or_default();
                    ProjectHealth {
                        slug: p.slug.clone(),
                        crash_free_sessions: util::percent(h.crash_free_sessions),
                        crash_free_users: util::percent(h.crash_free_users),
                        sessions: h.total_sessions_24h.max(h.total_sessions),
                        adoption: util::percent(h.adoption),
                        stage: stage_name(stages.get(&key).map_or("", |s| s.stage)),
                    }
                })
                .collect()
        })
        .collect())
}

fn index_row(view: &ReleaseView, projects: Vec<ProjectHealth>, org_url: &str) -> IndexRow {
    let r = &view.release;
    let parsed = crate::model::version::parse(&r.version);
    IndexRow {
        url: format!(
            "/organizations/{org_url}/releases/{}/",
            util::pct(&r.version)
        ),
        package: parsed.package.clone(),
        version: if parsed.package.is_empty() {
            r.version.clone()
        } else {
            parsed.version_raw.clone()
        },
        date: util::when(r.date_released.as_deref().unwrap_or(&r.date_added)),
        commits: r.commit_count,
        authors: author_names(view),
        new_issues: view.new_groups(),
        last_deploy: view
            .last_deploy
            .as_ref()
            .map(|d| format!("{}, {}", d.environment, util::when(&d.date_finished))),
        archived: r.status == Status::Archived.code(),
        finalized: r.date_released.is_some(),
        projects,
    }
}

/// `GET /organizations/{org}/releases/`.
pub async fn index(
    State(state): State<AppState>,
    session: Session,
    Path(org_slug): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    session.check_org(&org_slug)?;
    let q = QueryPairs(pairs);
    let get = |k: &str| q.get(k).unwrap_or("").trim().to_string();
    let f = Filters {
        project: get("project"),
        environment: get("environment"),
        status: get("status"),
        query: get("query"),
        sort: get("sort"),
    };
    let environments: Vec<String> = if f.environment.is_empty() {
        Vec::new()
    } else {
        vec![f.environment.clone()]
    };
    let is_health_sort = health::HealthSort::parse(&f.sort).is_some();
    let req = ListRequest {
        projects: if f.project.is_empty() {
            Vec::new()
        } else {
            vec![ProjectRef::Slug(f.project.clone())]
        },
        query: Some(f.query.clone()).filter(|s| !s.is_empty()),
        status: Some(f.status.clone()).filter(|s| !s.is_empty()),
        sort: Some(f.sort.clone()).filter(|s| !s.is_empty()),
        per_page: Some(PER_PAGE.to_string()),
        cursor: q.get("cursor").map(str::to_string),
        // The session sorts order (release, project) pairs, as the API's flatten=1 does.
        flatten: is_health_sort,
        environments: environments.clone(),
        summary_secs: 86400,
        now: chrono::Utc::now().timestamp(),
    };
    let nav = Nav::new(&session, "releases");
    let org_url = nav.org_url.clone();
    let reads = state.store.clone();
    let (rows, projects, cursors, error) = state
        .store
        .read(move |conn| {
            let org = core::org::org(conn, &org_slug)?;
            let projects: Vec<String> = orgs::list_projects(conn, org.id)?
                .into_iter()
                .map(|p| p.slug)
                .collect();
            let page = match release::list(conn, &org, &req) {
                Ok(page) => page,
                Err(CoreError::Invalid { detail, .. }) => {
                    return Ok((Vec::new(), projects, None, Some(detail)));
                }
                Err(e) => return Err(e),
            };
            let list: Vec<_> = page.items.iter().map(|r| r.release.clone()).collect();
            let views: Vec<(ReleaseView, Option<i64>)> = release::views(conn, list)?
                .into_iter()
                .zip(page.items.iter().map(|r| r.project_id))
                .collect();
            let health = project_health(conn, &reads, &org, &views, &environments)?;
            let rows = views
                .iter()
                .zip(health)
                .map(|((view, _), h)| index_row(view, h, &org_url))
                .collect::<Vec<_>>();
            Ok::<_, CoreError>((rows, projects, Some((page.prev, page.next)), None))
        })
        .await?;
    let link = |cursor: &release::Cursor| {
        cursor.has_results.then(|| {
            let c = cursor.to_string();
            util::query(&[
                ("project", &f.project),
                ("environment", &f.environment),
                ("status", &f.status),
                ("query", &f.query),
                ("sort", &f.sort),
                ("cursor", &c),
            ])
        })
    };
    let (prev_url, next_url) = match &cursors {
        Some((prev, next)) => (link(prev), link(next)),
        None => (None, None),
    };
    render(&IndexPage {
        nav,
        rows,
        projects,
        f,
        sorts: SORTS,
        prev_url,
        next_url,
        error,
    })
}

// ---------------------------------------------------------------------------------------------
// Details

/// The chart periods offered, with the bucket each is drawn in.
const PERIODS: &[(&str, &str)] = &[
    ("24h", "1h"),
    ("7d", "6h"),
    ("14d", "1d"),
    ("30d", "1d"),
    ("90d", "1d"),
];

/// Releases with more commits than this show their notes on request.
const NOTES_INLINE_COMMITS: i64 = 500;

/// Commits shown per page of the commit list.
const COMMITS_PER_PAGE: usize = 100;

pub struct IssueRow {
    pub url: String,
    pub short_id: String,
    pub title: String,
    pub culprit: String,
    pub status: &'static str,
    pub events: i64,
    pub users: i64,
    pub last_seen: String,
}

pub struct CommitRow {
    pub sha: String,
    pub short_sha: String,
    pub message: String,
    pub repository: String,
    pub date: String,
    pub files: Vec<(String, String)>,
}

pub struct AuthorGroup {
    pub author: String,
    pub commits: Vec<CommitRow>,
}

pub struct DeployRow {
    pub environment: String,
    pub name: String,
    pub finished: String,
    pub url: Option<String>,
}

pub struct ArtifactRow {
    pub name: String,
    pub dist: String,
    pub size: String,
}

#[derive(askama::Template)]
#[template(path = "release.html")]
struct DetailsPage {
    nav: Nav,
    package: String,
    version: String,
    full_version: String,
    status: &'static str,
    archived: bool,
    finalized: bool,
    date_created: String,
    date_released: String,
    first_event: String,
    last_event: String,
    commit_count: i64,
    commits_pending: bool,
    new_issues: i64,
    projects: Vec<ProjectHealth>,
    period: String,
    periods: Vec<(&'static str, String)>,
    sessions_svg: String,
    adoption_svg: String,
    has_sessions: bool,
    resolved: Vec<IssueRow>,
    tab: String,
    tabs: Vec<(&'static str, &'static str, String)>,
    tab_issues: Vec<IssueRow>,
    tab_note: Option<&'static str>,
    authors: Vec<AuthorGroup>,
    commits_prev: Option<String>,
    commits_next: Option<String>,
    deploys: Vec<DeployRow>,
    artifacts: Vec<ArtifactRow>,
    artifacts_more: bool,
    notes: String,
    notes_inline: bool,
    notes_url: String,
    message: Option<String>,
}

pub fn issue_rows(issues: Vec<crate::store::issues::Issue>, org_url: &str) -> Vec<IssueRow> {
    use crate::store::issues::{STATUS_IGNORED, STATUS_RESOLVED};
    issues
        .into_iter()
        .map(|i| IssueRow {
            url: format!("/organizations/{org_url}/issues/{}/", i.id),
            short_id: i.qualified_short_id(),
            status: match i.status {
                STATUS_RESOLVED => "resolved",
                STATUS_IGNORED => "ignored",
                _ if i.substatus.as_deref() == Some("regressed") => "regressed",
                _ => "unresolved",
            },
            title: i.title,
            culprit: i.culprit.unwrap_or_default(),
            events: i.times_seen,
            users: i.user_count,
            last_seen: util::when(&i.last_seen),
        })
        .collect()
}

/// Sessions per bucket, with the crash-free rate per bucket, and the release's share of its
/// projects' sessions per bucket (adoption), from the sessions API's own query.
struct Series {
    labels: Vec<String>,
    sessions: Vec<u64>,
    crash_free: Vec<Option<f64>>,
    adoption: Vec<Option<f64>>,
}

fn series(
    conn: &Connection,
    org: &Org,
    view: &ReleaseView,
    period: &str,
    interval: &str,
) -> Result<Series, CoreError> {
    let project_ids: Vec<i64> = view.projects.iter().map(|(p, _)| p.id).collect();
    let base = SessionsRequest {
        fields: vec!["sum(session)".into()],
        stats_period: Some(period.into()),
        interval: Some(interval.into()),
        project_ids,
        ..Default::default()
    };
    let now = chrono::Utc::now();
    let by_status = health::sessions::query(
        conn,
        org.id,
        &SessionsRequest {
            group_by: vec!["session.status".into()],
            query: Some(format!("release:\"{}\"", view.release.version)),
            ..base.clone()
        },
        now,
    )?;
    let all = health::sessions::query(conn, org.id, &base, now)?;
    let series_of = |group: &Value| -> Vec<u64> {
        group["series"]["sum(session)"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(0)).collect())
            .unwrap_or_default()
    };
    let labels: Vec<String> = by_status["intervals"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let t = t.as_str().unwrap_or("");
                    if interval.ends_with('h') {
                        t.get(5..13).unwrap_or(t).replace('T', " ") + "h"
                    } else {
                        t.get(5..10).unwrap_or(t).to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let n = labels.len();
    let mut sessions = vec![0u64; n];
    let mut crashed = vec![0u64; n];
    for group in by_status["groups"].as_array().into_iter().flatten() {
        let values = series_of(group);
        let is_crash = group["by"]["session.status"].as_str() == Some("crashed");
        for (i, v) in values.iter().enumerate().take(n) {
            sessions[i] += v;
            if is_crash {
                crashed[i] += v;
            }
        }
    }
    let totals: Vec<u64> = all["groups"]
        .as_array()
        .and_then(|g| g.first())
        .map(series_of)
        .unwrap_or_default();
    let crash_free = sessions
        .iter()
        .zip(&crashed)
        .map(|(s, c)| (*s > 0).then(|| 100.0 * (1.0 - *c as f64 / *s as f64)))
        .collect();
    let adoption = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let t = totals.get(i).copied().unwrap_or(0);
            (t > 0).then(|| 100.0 * *s as f64 / t as f64)
        })
        .collect();
    Ok(Series {
        labels,
        sessions,
        crash_free,
        adoption,
    })
}

fn commit_groups(
    conn: &Connection,
    release: &crate::store::releases::Release,
    cursor: Option<&str>,
) -> Result<(Vec<AuthorGroup>, release::Cursor, release::Cursor), CoreError> {
    use crate::store::{commits, repos};
    let page = core::commit::release_commit_page(conn, release, cursor, COMMITS_PER_PAGE)?;
    let author_ids: Vec<i64> = page.items.iter().filter_map(|c| c.author_id).collect();
    let authors = commits::authors_by_ids(conn, &author_ids)?;
    let repo_ids: Vec<i64> = page.items.iter().map(|c| c.repository_id).collect();
    let repositories = repos::by_ids(conn, &repo_ids)?;
    let mut groups: Vec<AuthorGroup> = Vec::new();
    for c in &page.items {
        let author = c
            .author_id
            .and_then(|id| authors.get(&id))
            .map(|a| match &a.name {
                Some(name) => format!("{name} <{}>", a.email),
                None => a.email.clone(),
            })
            .unwrap_or_else(|| "Unknown author".into());
        let row = CommitRow {
            short_sha: c.key.chars().take(12).collect(),
            sha: c.key.clone(),
            message: util::first_line(c.message.as_deref().unwrap_or("")),
            repository: repositories
                .get(&c.repository_id)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            date: util::when(c.timestamp.as_deref().unwrap_or(&c.date_added)),
            files: commits::file_changes(conn, c.id)?,
        };
        match groups.iter_mut().find(|g| g.author == author) {
            Some(g) => g.commits.push(row),
            None => groups.push(AuthorGroup {
                author,
                commits: vec![row],
            }),
        }
    }
    Ok((groups, page.prev, page.next))
}

/// `GET /organizations/{org}/releases/{version}/`.
pub async fn details(
    State(state): State<AppState>,
    session: Session,
    Path((org_slug, version)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    session.check_org(&org_slug)?;
    let q = QueryPairs(pairs);
    let period = q
        .get("period")
        .filter(|p| PERIODS.iter().any(|(name, _)| name == p))
        .unwrap_or("24h")
        .to_string();
    let interval = PERIODS
        .iter()
        .find(|(name, _)| *name == period)
        .map_or("1h", |(_, i)| *i);
    let tab = match q.get("tab") {
        Some(t @ ("resolved" | "regressed" | "unhandled" | "all")) => t.to_string(),
        _ => "new".to_string(),
    };
    let cursor = q.get("commits").map(str::to_string);
    let show_notes = q.get("notes") == Some("1");
    let message = q.get("done").map(|d| format!("Release {d}."));
    let nav = Nav::new(&session, "releases");
    let org_url = nav.org_url.clone();
    let reads = state.store.clone();
    let page = state
        .store
        .read(move |conn| {
            let org = core::org::org(conn, &org_slug)?;
            let r = release::get(conn, &org, &version)?;
            let view = release::view(conn, r)?;
            let r = &view.release;
            let url = format!("/organizations/{org_url}/releases/{}/", util::pct(&r.version));
            let parsed = crate::model::version::parse(&r.version);
            let projects = project_health(conn, &reads, &org, &[(view.clone(), None)], &[])?
                .pop()
                .unwrap_or_default();
            let s = series(conn, &org, &view, &period, interval)?;
            let resolved = issue_rows(
                core::issue::resolved_in_release(conn, &org, &r.version)?,
                &org_url,
            );
            let quoted = format!("\"{}\"", r.version);
            let (tab_issues, tab_note) = match tab.as_str() {
                "resolved" => (Vec::new(), None),
                "unhandled" => (
                    Vec::new(),
                    Some("Not available yet: the issue search cannot filter on the events' handled tag."),
                ),
                other => {
                    let query = match other {
                        "regressed" => format!("is:regressed release:{quoted}"),
                        "all" => format!("release:{quoted}"),
                        _ => format!("firstRelease:{quoted}"),
                    };
                    let list = core::issue::list(
                        conn,
                        &org,
                        &core::issue::ListRequest {
                            // Without `is:`, every status: an issue new in the release may
                            // be resolved since.
                            query: Some(query),
                            per_page: Some("50".into()),
                            ..Default::default()
                        },
                    )?;
                    (issue_rows(list.items, &org_url), None)
                }
            };
            let (authors, prev, next) = commit_groups(conn, r, cursor.as_deref())?;
            let commit_link = |c: &release::Cursor| {
                c.has_results
                    .then(|| format!("{url}{}#commits", util::query(&[("commits", &c.to_string())])))
            };
            let deploys = core::deploy::list(conn, &org, &r.version)?
                .into_iter()
                .map(|d| DeployRow {
                    environment: d.environment,
                    name: d.name.unwrap_or_default(),
                    finished: util::when(&d.date_finished),
                    url: d.url,
                })
                .collect();
            let listed = core::artifact::list(conn, r, None, 101, 0)?;
            let artifacts_more = listed.len() > 100;
            let artifacts = listed
                .into_iter()
                .take(100)
                .map(|a| ArtifactRow {
                    name: a.name,
                    dist: a.dist.unwrap_or_default(),
                    size: util::size(a.size),
                })
                .collect();
            // The notes list up to 1000 commits: inline for an ordinary release, one click away
            // for a huge one, so its page stays fast.
            let notes_inline = show_notes || r.commit_count <= NOTES_INLINE_COMMITS;
            let notes = if notes_inline {
                super::notes::to_html(&core::notes::markdown(&core::notes::notes(
                    conn, &org, &r.version,
                )?))
            } else {
                String::new()
            };
            let notes_url = format!("{url}{}#notes", util::query(&[("notes", "1")]));
            let commits_pending = crate::store::github::commits_pending(conn, r.id)?;
            let tabs = [
                ("new", "New issues"),
                ("resolved", "Resolved"),
                ("regressed", "Regressed"),
                ("unhandled", "Unhandled"),
                ("all", "All seen"),
            ]
            .into_iter()
            .map(|(k, label)| {
                (
                    k,
                    label,
                    format!("{url}{}#issues", util::query(&[("period", &period), ("tab", k)])),
                )
            })
            .collect();
            let periods = PERIODS
                .iter()
                .map(|(p, _)| (*p, format!("{url}{}#health", util::query(&[("period", p), ("tab", &tab)]))))
                .collect();
            Ok::<_, CoreError>(DetailsPage {
                package: parsed.package.clone(),
                version: if parsed.package.is_empty() {
                    r.version.clone()
                } else {
                    parsed.version_raw.clone()
                },
                full_version: r.version.clone(),
                status: if r.status == Status::Archived.code() {
                    "archived"
                } else if r.date_released.is_some() {
                    "finalized"
                } else {
                    "open (not finalized)"
                },
                archived: r.status == Status::Archived.code(),
                finalized: r.date_released.is_some(),
                date_created: util::when(&r.date_added),
                date_released: r.date_released.as_deref().map(util::when).unwrap_or_default(),
                first_event: view.first_event.as_deref().map(util::when).unwrap_or_default(),
                last_event: view.last_event.as_deref().map(util::when).unwrap_or_default(),
                commit_count: r.commit_count,
                commits_pending,
                new_issues: view.new_groups(),
                projects,
                has_sessions: s.sessions.iter().any(|n| *n > 0),
                sessions_svg: chart::sessions(&s.labels, &s.sessions, &s.crash_free),
                adoption_svg: chart::percent(
                    &s.labels,
                    &s.adoption,
                    "Adoption: this release's share of its projects' sessions",
                ),
                period: period.clone(),
                periods,
                resolved,
                tab: tab.clone(),
                tabs,
                tab_issues,
                tab_note,
                authors,
                commits_prev: commit_link(&prev),
                commits_next: commit_link(&next),
                deploys,
                artifacts,
                artifacts_more,
                notes,
                notes_inline,
                notes_url,
                message,
                nav,
            })
        })
        .await?;
    render(&page)
}

/// `POST /organizations/{org}/releases/{version}/`: finalize, archive or restore.
pub async fn action(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path((org_slug, version)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_org(&org_slug)?;
    check_form(&state, &session, &headers, &form)?;
    let (req, done) = match form.get("action").map(String::as_str) {
        Some("finalize") => (
            UpdateRelease {
                date_released: Some(core::now()),
                ..Default::default()
            },
            "finalized",
        ),
        Some("archive") => (
            UpdateRelease {
                status: Some(Status::Archived),
                ..Default::default()
            },
            "archived",
        ),
        Some("restore") => (
            UpdateRelease {
                status: Some(Status::Open),
                ..Default::default()
            },
            "restored",
        ),
        _ => {
            return Err(PageError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Unknown action (expected finalize, archive or restore)",
            ));
        }
    };
    let v = version.clone();
    state
        .store
        .write(move |tx| {
            let org = core::org::org(tx, &org_slug)?;
            release::update(tx, &org, &v, &req)
        })
        .await?;
    let url = format!(
        "/organizations/{}/releases/{}/?done={done}",
        util::pct(&session.session.org_slug),
        util::pct(&version)
    );
    Ok(Redirect::to(&url).into_response())
}
