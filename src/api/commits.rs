//! Commits over HTTP: the `commits`, `refs` and `headCommits` fields of the release POST and
//! PUT bodies, a release's commit list, `previous-with-commits` (sentry-cli's `--local` mode)
//! and the organization's repositories (sentry-cli-protocol.md §5, sentry-semantics.md §2–§3).
//!
//! A body with refs is handled in three steps so nothing is half-written: the refs are planned
//! in a read and expanded through git outside any transaction ([`prepare`]), then the release
//! fields, the commit list and the head commits are written in the release's one transaction
//! ([`apply`]). An unknown repository or sha is a 400 before anything is stored.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rusqlite::Transaction;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::extract::QueryPairs;
use super::render;
use crate::core::commit::{self, ExpandedRef, RefSpec};
use crate::core::org::{ProjectRef, resolve_projects};
use crate::core::release::{self, Cursor};
use crate::core::{CoreError, repo};
use crate::model::commit::{ChangeKind, CommitData, FileChange};
use crate::model::time;
use crate::store::orgs::Org;
use crate::store::releases::{self, Release};

/// The commit fields of a release POST or PUT body, flattened into it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitFields {
    commits: Option<Vec<CommitWire>>,
    refs: Option<Vec<RefWire>>,
    head_commits: Option<Vec<HeadCommitWire>>,
}

/// One commit as sentry-cli's `--local` mode sends it (Sentry's CommitSerializer).
#[derive(Debug, Deserialize)]
pub struct CommitWire {
    id: Option<String>,
    repository: Option<String>,
    message: Option<String>,
    author_name: Option<String>,
    author_email: Option<String>,
    timestamp: Option<String>,
    patch_set: Option<Vec<PatchWire>>,
}

#[derive(Debug, Deserialize)]
pub struct PatchWire {
    path: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefWire {
    repository: Option<String>,
    commit: Option<String>,
    previous_commit: Option<String>,
}

/// The deprecated form of a ref.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadCommitWire {
    repository: Option<String>,
    current_id: Option<String>,
    previous_id: Option<String>,
}

fn too_long(at: &str, field: &str, max: usize) -> CoreError {
    CoreError::invalid(
        "commits",
        format!("{at}.{field}: Ensure this field has no more than {max} characters."),
    )
}

fn check_len(at: &str, field: &str, value: Option<&str>, max: usize) -> Result<(), CoreError> {
    match value {
        Some(v) if v.chars().count() > max => Err(too_long(at, field, max)),
        _ => Ok(()),
    }
}

impl CommitWire {
    /// Sentry's CommitSerializer rules. `repository` may be any name up to 64 characters:
    /// sentry-cli 3.x sends its git remote's name (`origin`), which is then auto-created.
    fn into_commit(self, index: usize) -> Result<CommitData, CoreError> {
        let at = format!("commits[{index}]");
        let id = self.id.filter(|id| !id.is_empty()).ok_or_else(|| {
            CoreError::invalid("commits", format!("{at}.id: This field is required."))
        })?;
        check_len(&at, "id", Some(&id), 64)?;
        check_len(&at, "repository", self.repository.as_deref(), 64)?;
        check_len(&at, "author_name", self.author_name.as_deref(), 128)?;
        check_len(&at, "author_email", self.author_email.as_deref(), 200)?;
        let timestamp = match self.timestamp.filter(|t| !t.is_empty()) {
            None => None,
            Some(t) if time::parse(&t).is_some() => Some(t),
            Some(t) => {
                return Err(CoreError::invalid(
                    "commits",
                    format!(
                        "{at}.timestamp: \"{t}\" is not an RFC 3339 timestamp (e.g. 2024-01-02T12:00:25+02:00)"
                    ),
                ));
            }
        };
        let mut patch_set = Vec::new();
        for (j, p) in self.patch_set.unwrap_or_default().into_iter().enumerate() {
            let path = p.path.filter(|p| !p.is_empty()).ok_or_else(|| {
                CoreError::invalid(
                    "commits",
                    format!("{at}.patch_set[{j}].path: This field is required."),
                )
            })?;
            check_len(&at, &format!("patch_set[{j}].path"), Some(&path), 510)?;
            let code = p.kind.unwrap_or_default();
            let kind = ChangeKind::from_code(&code).ok_or_else(|| {
                CoreError::invalid(
                    "commits",
                    format!("Commit patch_set type {code} is not supported."),
                )
            })?;
            patch_set.push(FileChange { path, kind });
        }
        Ok(CommitData {
            id,
            repository: self.repository,
            message: self.message,
            author_name: self.author_name,
            author_email: self.author_email,
            timestamp,
            patch_set,
        })
    }
}

/// What a body asks of the release's refs.
#[derive(Debug)]
pub enum RefsAction {
    /// No refs (or an empty list in a POST, which Sentry ignores).
    Leave,
    /// `refs: []` in a PUT: clear the release's commits.
    Clear,
    /// Head commits to set, ranges already expanded.
    Set(Vec<ExpandedRef>),
}

/// The commit part of a body, validated and expanded, ready for [`apply`].
#[derive(Debug)]
pub struct Prepared {
    commits: Option<Commits>,
    refs: RefsAction,
}

/// The commits of a body: a short list is stored in the release's transaction; a long one is
/// stored beforehand in bounded transactions and only linked there.
#[derive(Debug)]
enum Commits {
    Given(Vec<CommitData>),
    Stored(Vec<commit::Listed>),
}

/// Validates the commit fields and expands refs, before the release's write transaction.
/// `put`: the request is a PUT on an existing release (a missing one is a 404; `refs: []`
/// clears), else a POST that may create it.
pub async fn prepare(
    state: &AppState,
    auth: &Auth,
    org_slug: &str,
    version: &str,
    projects: &[ProjectRef],
    fields: CommitFields,
    put: bool,
) -> Result<Prepared, ApiError> {
    let CommitFields {
        commits,
        refs,
        head_commits,
    } = fields;
    let commits = match commits {
        // An empty list changes nothing (Sentry tests `if commit_list`).
        Some(list) if !list.is_empty() => Some(
            list.into_iter()
                .enumerate()
                .map(|(i, c)| c.into_commit(i))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => None,
    };
    let commits = match commits {
        Some(list) if list.len() > commit::STORE_BATCH => Some(Commits::Stored(
            store_in_batches(state, auth, org_slug, list).await?,
        )),
        other => other.map(Commits::Given),
    };
    let explicit_empty = matches!(&refs, Some(r) if r.is_empty());
    let specs: Vec<RefSpec> = match refs {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|r| {
                RefSpec::parse(
                    r.repository.as_deref(),
                    r.commit.as_deref(),
                    r.previous_commit.as_deref(),
                )
            })
            .collect::<Result<_, _>>()?,
        _ => head_commits
            .unwrap_or_default()
            .iter()
            .map(|h| {
                RefSpec::parse(
                    h.repository.as_deref(),
                    h.current_id.as_deref(),
                    h.previous_id.as_deref(),
                )
            })
            .collect::<Result<_, _>>()?,
    };
    if specs.is_empty() {
        let refs = if put && explicit_empty {
            RefsAction::Clear
        } else {
            RefsAction::Leave
        };
        return Ok(Prepared { commits, refs });
    }
    let (auth, org_slug, version, projects) = (
        auth.clone(),
        org_slug.to_string(),
        version.to_string(),
        projects.to_vec(),
    );
    let planned = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let existing = releases::by_version(conn, org.id, &version)?;
            if put && existing.is_none() {
                return Err(release::not_found(&version));
            }
            let mut project_ids: Vec<i64> = match &existing {
                Some(r) => releases::project_ids(conn, r.id)?,
                None => Vec::new(),
            };
            for p in resolve_projects(conn, org.id, &projects)? {
                if !project_ids.contains(&p.id) {
                    project_ids.push(p.id);
                }
            }
            commit::plan_refs(conn, &org, &version, &project_ids, &specs)
        })
        .await?;
    let expanded = commit::expand_refs(planned).await?;
    Ok(Prepared {
        commits,
        refs: RefsAction::Set(expanded),
    })
}

/// Stores a long commit list [`commit::STORE_BATCH`] commits a transaction, in release order,
/// so other writers (a concurrent release create, the pipeline) get the database between
/// batches instead of waiting for the whole list.
async fn store_in_batches(
    state: &AppState,
    auth: &Auth,
    org_slug: &str,
    list: Vec<CommitData>,
) -> Result<Vec<commit::Listed>, ApiError> {
    let ordered: Vec<CommitData> = commit::release_order(&list).into_iter().cloned().collect();
    drop(list);
    let mut stored = Vec::with_capacity(ordered.len());
    let mut batches = ordered.into_iter().peekable();
    while batches.peek().is_some() {
        let batch: Vec<CommitData> = batches.by_ref().take(commit::STORE_BATCH).collect();
        let (auth, org_slug) = (auth.clone(), org_slug.to_owned());
        let ids = state
            .store
            .write(move |tx| {
                let org = auth.org(tx, &org_slug)?;
                let refs: Vec<&CommitData> = batch.iter().collect();
                commit::store_listed(tx, &org, &refs)
            })
            .await?;
        stored.extend(ids);
    }
    Ok(stored)
}

/// Writes the commit part of a body into the release's transaction (after its fields, as
/// Sentry does) and returns the release as it now is.
pub fn apply(
    tx: &Transaction<'_>,
    org: &Org,
    release: Release,
    prepared: Prepared,
) -> Result<Release, CoreError> {
    if prepared.commits.is_none() && matches!(prepared.refs, RefsAction::Leave) {
        return Ok(release);
    }
    match &prepared.commits {
        Some(Commits::Given(list)) => commit::set_commits(tx, org, &release, list)?,
        Some(Commits::Stored(list)) => commit::attach_commits(tx, org, &release, list)?,
        None => {}
    }
    match &prepared.refs {
        RefsAction::Leave => {}
        RefsAction::Clear => commit::clear_commits(tx, &release)?,
        RefsAction::Set(expanded) => {
            commit::apply_refs(tx, org, &release, expanded, prepared.commits.is_none())?
        }
    }
    releases::by_id(tx, release.id)?.ok_or_else(|| release::not_found(&release.version))
}

fn with_link(body: Value, link: String) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, v);
    }
    response
}

/// `GET /organizations/{org}/releases/{version}/commits/`: newest first, 100 a page.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let cursor = q.get("cursor").map(str::to_string);
    let per_page = release::parse_per_page(q.get("per_page"))?;
    let path = format!(
        "/api/0/organizations/{org_slug}/releases/{}/commits/",
        super::encode(&version)
    );
    let page = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let r = release::get(conn, &org, &version)?;
            commit::release_commits(conn, &r, cursor.as_deref(), per_page)
        })
        .await?;
    let link = super::link_header(&state.public_url, &path, &q, page.prev, page.next);
    Ok(with_link(Value::Array(page.items), link))
}

/// `GET /organizations/{org}/releases/{version}/previous-with-commits/`: the previous release
/// that has commits, or exactly `{}` (sentry-cli accepts nothing else for "none").
pub async fn previous_with_commits(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, version)): Path<(String, String)>,
    q: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    let projects: Vec<ProjectRef> = q
        .all("project")
        .into_iter()
        .filter(|p| !p.is_empty() && *p != "-1")
        .map(|p| match p.parse::<i64>() {
            Ok(id) => ProjectRef::Id(id),
            Err(_) => ProjectRef::Slug(p.to_string()),
        })
        .collect();
    let view = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            let r = release::get(conn, &org, &version)?;
            let project_ids: Vec<i64> = if projects.is_empty() {
                Vec::new()
            } else {
                match resolve_projects(conn, org.id, &projects) {
                    Ok(ps) => ps.iter().map(|p| p.id).collect(),
                    // Sentry answers `{}` when the project filter matches nothing.
                    Err(CoreError::Invalid { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                }
            };
            match commit::previous_with_commits(conn, &org, &r, &project_ids)? {
                Some(prev) => Ok(Some(release::view(conn, prev)?)),
                None => Ok(None),
            }
        })
        .await?;
    Ok(Json(match view {
        Some(v) => render::release(&v),
        None => json!({}),
    }))
}

/// `GET /organizations/{org}/repos/`: active repositories by name, 100 a page, with the
/// `Link` header sentry-cli follows (cursor `0:<offset>:<is_prev>`).
pub async fn repos(
    State(state): State<AppState>,
    auth: Auth,
    Path(org_slug): Path<String>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let req = repo::ListRequest {
        status: q.get("status").map(str::to_string),
        query: q.get("query").map(str::to_string),
        cursor: q.get("cursor").map(str::to_string),
    };
    let path = format!("/api/0/organizations/{org_slug}/repos/");
    let page = state
        .store
        .read(move |conn| {
            let org = auth.org(conn, &org_slug)?;
            repo::page(conn, &org, &req)
        })
        .await?;
    let offset = page.offset as i64;
    let per_page = repo::PER_PAGE as i64;
    let prev = Cursor {
        value: 0,
        offset: (offset - per_page).max(0),
        is_prev: true,
        has_results: offset > 0,
    };
    let next = Cursor {
        value: 0,
        offset: offset + per_page,
        is_prev: false,
        has_results: page.has_next,
    };
    let body: Vec<Value> = page.items.iter().map(repo::repo_json).collect();
    let link = super::link_header(&state.public_url, &path, &q, prev, next);
    Ok(with_link(Value::Array(body), link))
}

/// GET `/projects/{org}/{project}/releases/{version}/commits/` (sentry-cli 2.x `releases info
/// -C` with a project).
pub async fn list_in_project(
    State(state): State<AppState>,
    auth: Auth,
    Path((org_slug, project, version)): Path<(String, String, String)>,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    super::releases::check_in_project(&state, &auth, &org_slug, project, &version).await?;
    list(State(state), auth, Path((org_slug, version)), q).await
}
