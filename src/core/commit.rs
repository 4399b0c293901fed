//! Commits and releases: which commits a release has (sentry-semantics.md §3).
//!
//! Every source of commits ends here. [`record_commits`] stores commits without a release (a
//! post-commit hook, a GitHub push); [`set_commits`] replaces a release's whole commit list the
//! way Sentry's `Release.set_commits` does (§3.2); [`clear_commits`] empties it (`refs: []`).
//!
//! Associating a release with *refs* (`{repository, commit, previousCommit}`, what
//! `sentry-cli releases set-commits --auto|--commit` sends) takes three steps, because expanding
//! a range reads a git repository and that must never happen inside a store transaction:
//!
//! 1. [`plan_refs`] (a read): checks the repository names and finds where each range starts:
//!    the given `previousCommit`, else the previous release's head commit for that repository
//!    (Sentry's `prev_release` rule, §3.3), else none (the newest `initial_depth` commits);
//! 2. [`expand_refs`] (no store): resolves the shas and walks each range, through git for a
//!    repository with a local path, through [`remote_range`] for one reached only through
//!    GitHub (filled in by the GitHub integration);
//! 3. [`apply_refs`] (in the write): sets the head commits and the commit list.
//!
//! Unknown repositories and unknown shas are refused in steps 1 and 2, before anything is
//! written.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, Transaction};
use serde_json::{Value, json};

use super::CoreError;
use crate::git::{self, GitError, RangeOptions};
use crate::model::commit::CommitData;
use crate::model::time;
use crate::store::commits::{self, Author, CommitRow, StoredCommit};
use crate::store::orgs::Org;
use crate::store::releases::{self, Release};
use crate::store::repos::{self, Repository};

/// A commit whose message contains this is left out of releases (Sentry's
/// `should_ignore_commit`).
pub const SKIP_MARKER: &str = "#skipsentry";

/// Commits a range without a start gets when nothing else says how many (sentry-cli's and
/// Sentry's GitHub fallback: 20).
pub const DEFAULT_INITIAL_DEPTH: usize = 20;

/// Sentry truncates author emails to this many characters (`truncatechars(email, 75)`).
const MAX_EMAIL: usize = 75;

/// Django's `truncatechars`: at most `max` characters, the last one an ellipsis when cut.
fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The email an author is filed under: the commit's, else `<name>@localhost` from the name's
/// letters, digits, `-`, `_` and `.` (Sentry's fallback), truncated to 75 characters and
/// lowercased. An empty email counts as none. `None` when there is neither.
pub fn author_email(commit: &CommitData) -> Option<String> {
    let email = match commit.author_email.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => e.to_string(),
        None => {
            let name = commit.author_name.as_deref().filter(|n| !n.is_empty())?;
            let kept: String = name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            format!("{}@localhost", kept.to_lowercase())
        }
    };
    Some(truncate_chars(&email, MAX_EMAIL).to_lowercase())
}

/// Authors already looked up in this operation, by email (Sentry keeps the same cache, so an
/// author's name is taken from the first commit that names them).
#[derive(Default)]
struct Authors(HashMap<String, i64>);

fn store_commit(
    conn: &Connection,
    org: &Org,
    repository_id: i64,
    commit: &CommitData,
    authors: &mut Authors,
    now: &str,
) -> Result<i64, CoreError> {
    let author_id = match author_email(commit) {
        None => None,
        Some(email) => match authors.0.get(&email) {
            Some(id) => Some(*id),
            None => {
                let name = commit.author_name.as_deref().filter(|n| !n.is_empty());
                let id = commits::author_get_or_create(conn, org.id, &email, name)?;
                authors.0.insert(email, id);
                Some(id)
            }
        },
    };
    let date_added = commit.timestamp.as_deref().and_then(time::normalize);
    let id = commits::commit_upsert(
        conn,
        &CommitRow {
            org_id: org.id,
            repository_id,
            key: &commit.id,
            author_id,
            message: commit.message.as_deref(),
            date_added: date_added.as_deref(),
            timestamp: commit.timestamp.as_deref().filter(|_| date_added.is_some()),
            now,
        },
    )?;
    commits::add_file_changes(conn, id, &commit.patch_set)?;
    Ok(id)
}

/// Stores commits of one repository without attaching them to a release: upserts the commits,
/// their authors and file changes. `CommitData::repository` is ignored; `repository` is where
/// they belong. Returns the commit row ids in the order given.
pub fn record_commits(
    tx: &Transaction<'_>,
    org: &Org,
    repository: &Repository,
    commits: &[CommitData],
) -> Result<Vec<i64>, CoreError> {
    let now = super::now();
    let mut authors = Authors::default();
    commits
        .iter()
        .map(|c| store_commit(tx, org, repository.id, c, &mut authors, &now))
        .collect()
}

/// Sentry's `set_commits` (§3.2): sorts by timestamp, newest first (a missing one counts as
/// the epoch); drops `#skipsentry` commits; replaces the release's commit list; sets
/// `commit_count`, `last_commit_id` (the newest) and `authors`; and makes each repository's
/// newest commit the release's head commit for that repository unless one is set already.
///
/// Each commit goes to the repository named by `CommitData::repository` (created with
/// provider `none` if unknown, as Sentry does), or `organization-<id>` when unnamed; sources
/// that know their repository must fill it in.
pub fn set_commits(
    tx: &Transaction<'_>,
    org: &Org,
    release: &Release,
    commits: &[CommitData],
) -> Result<(), CoreError> {
    let list = release_order(commits);
    let stored = store_listed(tx, org, &list)?;
    attach_commits(tx, org, release, &stored)
}

/// How many commits one write transaction stores when a long list is stored ahead of the
/// release's own transaction (see [`store_listed`]).
pub const STORE_BATCH: usize = 1000;

/// The commits [`set_commits`] attaches, in its order: newest first (a missing timestamp counts
/// as the epoch; equal ones keep the order given, like Python's stable sort), `#skipsentry`
/// ones dropped.
pub fn release_order(commits: &[CommitData]) -> Vec<&CommitData> {
    let mut list: Vec<(i64, &CommitData)> = commits
        .iter()
        .map(|c| {
            let ts = c
                .timestamp
                .as_deref()
                .and_then(time::parse)
                .map_or(0, |t| t.timestamp_micros());
            (ts, c)
        })
        .collect();
    list.sort_by_key(|(ts, _)| std::cmp::Reverse(*ts));
    list.into_iter()
        .map(|(_, c)| c)
        .filter(|c| !c.message.as_deref().unwrap_or("").contains(SKIP_MARKER))
        .collect()
}

/// A commit stored for a release: its row id and its repository's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub commit_id: i64,
    pub repository_id: i64,
}

/// Stores commits (their repositories, authors and file changes) without attaching them to a
/// release, in the order given, and links the issues their messages fix (`Fixes X`). A commit
/// list of any length can be stored this way in bounded transactions of [`STORE_BATCH`]
/// commits, so that one huge set-commits does not hold the database writer while every other
/// write waits; [`attach_commits`] then attaches them.
pub fn store_listed(
    conn: &Transaction<'_>,
    org: &Org,
    list: &[&CommitData],
) -> Result<Vec<Listed>, CoreError> {
    let now = super::now();
    let mut repositories: HashMap<String, i64> = HashMap::new();
    let mut authors = Authors::default();
    let mut out = Vec::with_capacity(list.len());
    for commit in list {
        let name = commit
            .repository
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("organization-{}", org.id));
        let repository_id = match repositories.get(&name) {
            Some(id) => *id,
            None => {
                let repo = repos::get_or_create(conn, org.id, &name, &now)?;
                repositories.insert(name, repo.id);
                repo.id
            }
        };
        let commit_id = store_commit(conn, org, repository_id, commit, &mut authors, &now)?;
        out.push(Listed {
            commit_id,
            repository_id,
        });
    }
    let ids: Vec<i64> = out.iter().map(|c| c.commit_id).collect();
    super::issue::link_commits(conn, org, &ids)?;
    Ok(out)
}

/// Replaces the release's commit list with commits already stored (in [`release_order`]) and
/// sets what follows from it: the counts, the newest commit, the authors, head commits and the
/// issues the commits fix. The rest of [`set_commits`].
pub fn attach_commits(
    tx: &Transaction<'_>,
    org: &Org,
    release: &Release,
    list: &[Listed],
) -> Result<(), CoreError> {
    commits::clear_release_commits(tx, release.id)?;
    let mut heads: Vec<(i64, i64)> = Vec::new();
    for (idx, c) in list.iter().enumerate() {
        // A commit listed twice keeps its first (newest) position.
        commits::add_release_commit(tx, release.id, c.commit_id, idx as i64)?;
        if !heads.iter().any(|(repo, _)| *repo == c.repository_id) {
            heads.push((c.repository_id, c.commit_id));
        }
    }
    let last_commit_id = list.first().map(|c| c.commit_id);
    let author_ids: Vec<String> = commits::release_author_ids(tx, release.id)?
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    commits::set_release_commit_fields(
        tx,
        release.id,
        list.len() as i64,
        last_commit_id,
        &serde_json::to_string(&author_ids).unwrap_or_else(|_| "[]".into()),
    )?;
    for (repository_id, commit_id) in heads {
        commits::insert_head_commit_if_absent(tx, release.id, repository_id, commit_id)?;
    }
    // The commits' `Fixes` links were made as they were stored: only their resolutions remain.
    super::issue::resolve_linked(tx, org, release)?;
    Ok(())
}

/// Sets (or moves) the head commit of `repository` in a release: where the next release's
/// range starts. The commit is created with only its sha if shiplog has not seen it.
pub fn set_head_commit(
    tx: &Transaction<'_>,
    release: &Release,
    repository: &Repository,
    sha: &str,
) -> Result<(), CoreError> {
    let commit_id =
        commits::commit_get_or_create_key(tx, release.org_id, repository.id, sha, &super::now())?;
    commits::set_head_commit(tx, release.id, repository.id, commit_id)?;
    Ok(())
}

/// The sha of a release's head commit for a repository.
pub fn head_commit(
    conn: &Connection,
    release_id: i64,
    repository_id: i64,
) -> Result<Option<String>, CoreError> {
    Ok(commits::head_commit_key(conn, release_id, repository_id)?)
}

/// Empties a release's commits and head commits (`PUT` with `refs: []`, `set-commits --clear`).
/// Sentry's own version fails unless the release has exactly one head commit; this one clears
/// any number. The commits themselves stay.
pub fn clear_commits(tx: &Transaction<'_>, release: &Release) -> Result<(), CoreError> {
    commits::clear_release_commits(tx, release.id)?;
    commits::clear_head_commits(tx, release.id)?;
    commits::set_release_commit_fields(tx, release.id, 0, None, "[]")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// refs
// ---------------------------------------------------------------------------------------------

/// One ref of a set-commits request, its `a..b` form already split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSpec {
    pub repository: String,
    pub commit: String,
    pub previous_commit: Option<String>,
}

impl RefSpec {
    /// Sentry's ref serializer: `repository` (≤ 200) and `commit` are required; `commit` may be
    /// a range `a..b`, which sets `previousCommit`; each sha is at most 64 characters.
    pub fn parse(
        repository: Option<&str>,
        commit: Option<&str>,
        previous_commit: Option<&str>,
    ) -> Result<RefSpec, CoreError> {
        let repository = repository.filter(|r| !r.is_empty()).ok_or_else(|| {
            CoreError::invalid("refs", "refs: repository: This field is required.")
        })?;
        if repository.chars().count() > 200 {
            return Err(CoreError::invalid(
                "refs",
                "refs: repository: Ensure this field has no more than 200 characters.",
            ));
        }
        let commit = commit
            .filter(|c| !c.is_empty())
            .ok_or_else(|| CoreError::invalid("refs", "refs: commit: This field is required."))?;
        let mut previous = previous_commit
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        if previous.as_ref().is_some_and(|p| p.chars().count() > 64) {
            return Err(CoreError::invalid(
                "refs",
                "refs: previousCommit: Ensure this field has no more than 64 characters.",
            ));
        }
        let commit = if commit.contains("..") {
            let (start, end) = commit.split_once("..").unwrap_or((commit, ""));
            if start.is_empty() || end.is_empty() {
                return Err(CoreError::invalid(
                    "refs",
                    "Commit cannot begin or end with ..",
                ));
            }
            if start.chars().count() > 64 || end.chars().count() > 64 {
                return Err(CoreError::invalid(
                    "refs",
                    "Start or end commit too long - max is 64 chars each",
                ));
            }
            previous = Some(start.to_string());
            end.to_string()
        } else {
            if commit.chars().count() > 64 {
                return Err(CoreError::invalid(
                    "refs",
                    "Commit too long - max is 64 chars",
                ));
            }
            commit.to_string()
        };
        Ok(RefSpec {
            repository: repository.to_string(),
            commit,
            previous_commit: previous,
        })
    }
}

/// A ref checked against the store, ready to be expanded.
#[derive(Debug, Clone)]
pub struct PlannedRef {
    pub repository: Repository,
    /// The new head, as the client named it.
    pub commit: String,
    /// Where the range starts: the client's `previousCommit`, else the previous release's head
    /// commit for this repository, else none.
    pub start: Option<String>,
    /// `true` when `start` came from the client (an unknown one is then an error, not a
    /// fallback to `initial_depth`).
    pub explicit_start: bool,
    /// Commits a range without a start gets.
    pub initial_depth: usize,
}

/// Step 1 of set_refs: every repository must exist (Sentry's `Invalid repository names: a,b`),
/// and each range gets its start. `project_ids` are the release's projects (after this
/// request), which decide the previous release (§3.3: the most recent other release sharing a
/// project, by `COALESCE(date_released, date_added)`).
pub fn plan_refs(
    conn: &Connection,
    org: &Org,
    version: &str,
    project_ids: &[i64],
    refs: &[RefSpec],
) -> Result<Vec<PlannedRef>, CoreError> {
    let mut found = Vec::with_capacity(refs.len());
    let mut unknown: Vec<&str> = Vec::new();
    for r in refs {
        match repos::by_name(conn, org.id, &r.repository)? {
            Some(repo) if repo.status == repos::STATUS_ACTIVE => found.push((r, repo)),
            _ => {
                if !unknown.contains(&r.repository.as_str()) {
                    unknown.push(&r.repository);
                }
            }
        }
    }
    if !unknown.is_empty() {
        return Err(CoreError::invalid(
            "refs",
            format!("Invalid repository names: {}", unknown.join(",")),
        ));
    }
    let previous = commits::prev_release_sharing_projects(conn, org.id, version, project_ids)?;
    let mut planned = Vec::with_capacity(found.len());
    for (r, repository) in found {
        let (start, explicit_start) = match &r.previous_commit {
            Some(p) => (Some(p.clone()), true),
            None => match previous {
                Some(prev_id) => (
                    commits::head_commit_key(conn, prev_id, repository.id)?,
                    false,
                ),
                None => (None, false),
            },
        };
        let initial_depth =
            repos::initial_depth(conn, repository.id)?.unwrap_or(DEFAULT_INITIAL_DEPTH);
        planned.push(PlannedRef {
            repository,
            commit: r.commit.clone(),
            start,
            explicit_start,
            initial_depth,
        });
    }
    Ok(planned)
}

/// A ref after expansion.
#[derive(Debug, Clone)]
pub struct ExpandedRef {
    pub repository: Repository,
    /// The head commit to record: the full sha when the repository could resolve it.
    pub head: String,
    /// The range's commits, newest first, or `None` when they could not be fetched (yet): the
    /// release then keeps only the head commit.
    pub commits: Option<Vec<CommitData>>,
}

/// Step 2 of set_refs: expands each range. Reads repositories; never call it inside a store
/// transaction.
pub async fn expand_refs(planned: Vec<PlannedRef>) -> Result<Vec<ExpandedRef>, CoreError> {
    let mut out = Vec::with_capacity(planned.len());
    for p in planned {
        let expanded = if p.repository.path.is_some() {
            tokio::task::spawn_blocking(move || expand_local(&p))
                .await
                .map_err(|e| CoreError::Store(crate::store::StoreError::Task(e.to_string())))??
        } else {
            let commits = remote_range(
                &p.repository,
                p.start.as_deref(),
                &p.commit,
                p.initial_depth,
            )
            .await?;
            ExpandedRef {
                head: p.commit.clone(),
                repository: p.repository,
                commits,
            }
        };
        out.push(expanded);
    }
    Ok(out)
}

fn unknown_commit(repository: &Repository, spec: &str, e: &GitError) -> CoreError {
    let reason = match e {
        GitError::UnknownRevision { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    CoreError::invalid(
        "refs",
        format!(
            "Unknown commit \"{spec}\" in repository {}: {reason}",
            repository.name
        ),
    )
}

/// Expands a ref through the repository's local clone (blocking).
pub fn expand_local(p: &PlannedRef) -> Result<ExpandedRef, CoreError> {
    let path = p.repository.path.as_deref().unwrap_or_default();
    let repo = git::open(std::path::Path::new(path)).map_err(|e| {
        CoreError::invalid(
            "refs",
            format!("Cannot read repository {}: {e}", p.repository.name),
        )
    })?;
    let head = git::resolve_commit(&repo, &p.commit)
        .map_err(|e| unknown_commit(&p.repository, &p.commit, &e))?;
    let start = match &p.start {
        None => None,
        Some(s) => match git::resolve_commit(&repo, s) {
            Ok(sha) => Some(sha),
            Err(e) if p.explicit_start => return Err(unknown_commit(&p.repository, s, &e)),
            Err(e) => {
                // The previous release's head is not in this clone (history rewritten, or set
                // from elsewhere): fall back to the newest commits rather than refuse.
                tracing::warn!(
                    repository = %p.repository.name,
                    previous_head = %s,
                    error = %e,
                    "previous release's head commit is not in the repository; using the newest {} commits",
                    p.initial_depth
                );
                None
            }
        },
    };
    let opts = RangeOptions {
        paths: Vec::new(),
        initial_depth: p.initial_depth,
    };
    let mut commits = git::collect_range(&repo, start.as_deref(), &head, &opts).map_err(|e| {
        CoreError::invalid(
            "refs",
            format!("Cannot read commits of {}: {e}", p.repository.name),
        )
    })?;
    for c in &mut commits {
        c.repository = Some(p.repository.name.clone());
    }
    Ok(ExpandedRef {
        repository: p.repository.clone(),
        head,
        commits: Some(commits),
    })
}

/// The commits of `from..to` (or the newest `initial_depth` up to `to`) of a repository that
/// has no local path, i.e. one reached through GitHub's API.
///
/// Through the GitHub client the daemon installed (`github::remote`): the compare API, at most
/// 20 000 commits, renames as D + A, the last `initial_depth` commits without a start. Without
/// a client, or while GitHub is rate-limited or down, it returns `Ok(None)`: the release keeps
/// the head commit the client sent and no commit list, and the request succeeds.
pub async fn remote_range(
    repository: &Repository,
    from: Option<&str>,
    to: &str,
    initial_depth: usize,
) -> Result<Option<Vec<CommitData>>, CoreError> {
    crate::github::remote::range(repository, from, to, initial_depth).await
}

/// Step 3 of set_refs, inside the write: sets each repository's head commit, then (when
/// `fetch`, i.e. the request had no raw `commits`) replaces the commit list with the expanded
/// ranges. With no range expanded (GitHub-only repositories) the commit list is left alone.
pub fn apply_refs(
    tx: &Transaction<'_>,
    org: &Org,
    release: &Release,
    expanded: &[ExpandedRef],
    fetch: bool,
) -> Result<(), CoreError> {
    for r in expanded {
        set_head_commit(tx, release, &r.repository, &r.head)?;
    }
    if !fetch {
        return Ok(());
    }
    let fetched: Vec<&Vec<CommitData>> =
        expanded.iter().filter_map(|r| r.commits.as_ref()).collect();
    if fetched.is_empty() {
        return Ok(());
    }
    let all: Vec<CommitData> = fetched.into_iter().flatten().cloned().collect();
    set_commits(tx, org, release, &all)
}

// ---------------------------------------------------------------------------------------------
// reading
// ---------------------------------------------------------------------------------------------

/// Sentry's commit JSON: `{id, message, dateCreated, repository, author}` with the full sha.
pub fn commit_json(
    commit: &StoredCommit,
    repository: Option<&Repository>,
    author: Option<&Author>,
) -> Value {
    json!({
        "id": commit.key,
        "message": commit.message,
        "dateCreated": commit.date_added,
        "pullRequest": null,
        "suspectCommitType": "",
        "repository": repository.map(super::repo::repo_json),
        "author": author.map(author_json),
    })
}

/// An unmatched commit author as Sentry shows one: `{name, email}`.
pub fn author_json(author: &Author) -> Value {
    json!({ "name": author.name, "email": author.email })
}

/// Per release id: its `lastCommit` JSON, and its `authors` JSON.
pub type ReleaseParts = (HashMap<i64, Value>, HashMap<i64, Vec<Value>>);

/// `lastCommit` and `authors` of several releases in a few batched queries.
pub fn release_parts(conn: &Connection, list: &[Release]) -> Result<ReleaseParts, CoreError> {
    let last_ids: Vec<i64> = list.iter().filter_map(|r| r.last_commit_id).collect();
    let last = commits::by_ids(conn, &last_ids)?;
    let author_lists: HashMap<i64, Vec<i64>> = list
        .iter()
        .map(|r| {
            let ids: Vec<i64> = serde_json::from_str::<Vec<Value>>(&r.authors)
                .unwrap_or_default()
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => s.parse().ok(),
                    Value::Number(n) => n.as_i64(),
                    _ => None,
                })
                .collect();
            (r.id, ids)
        })
        .collect();
    let mut wanted: HashSet<i64> = author_lists.values().flatten().copied().collect();
    wanted.extend(last.values().filter_map(|c| c.author_id));
    let authors = commits::authors_by_ids(conn, &wanted.into_iter().collect::<Vec<_>>())?;
    let repo_ids: Vec<i64> = last.values().map(|c| c.repository_id).collect();
    let repositories = repos::by_ids(conn, &repo_ids)?;

    let mut last_commits = HashMap::new();
    for r in list {
        if let Some(c) = r.last_commit_id.and_then(|id| last.get(&id)) {
            let author = c.author_id.and_then(|id| authors.get(&id));
            last_commits.insert(
                r.id,
                commit_json(c, repositories.get(&c.repository_id), author),
            );
        }
    }
    let mut release_authors = HashMap::new();
    for (release_id, ids) in author_lists {
        let mut seen = HashSet::new();
        let values: Vec<Value> = ids
            .iter()
            .filter_map(|id| authors.get(id))
            .filter(|a| seen.insert(a.email.clone()))
            .map(author_json)
            .collect();
        release_authors.insert(release_id, values);
    }
    Ok((last_commits, release_authors))
}

/// Page size of a release's commit list.
pub const COMMITS_PER_PAGE: usize = 100;

/// A page of a release's commits, newest first, with Sentry's cursors around it. The cursor
/// value is a list position: `p:1:0` continues after position `p`, `p:0:1` goes back from it.
pub fn release_commits(
    conn: &Connection,
    release: &Release,
    cursor: Option<&str>,
    per_page: usize,
) -> Result<super::release::Page<Value>, CoreError> {
    let page = release_commit_page(conn, release, cursor, per_page)?;
    let author_ids: Vec<i64> = page.items.iter().filter_map(|c| c.author_id).collect();
    let authors = commits::authors_by_ids(conn, &author_ids)?;
    let repo_ids: Vec<i64> = page.items.iter().map(|c| c.repository_id).collect();
    let repositories = repos::by_ids(conn, &repo_ids)?;
    let items = page
        .items
        .iter()
        .map(|c| {
            commit_json(
                c,
                repositories.get(&c.repository_id),
                c.author_id.and_then(|id| authors.get(&id)),
            )
        })
        .collect();
    Ok(super::release::Page {
        items,
        prev: page.prev,
        next: page.next,
    })
}

/// The stored commits of one page of a release's commit list (see [`release_commits`]), for
/// callers that show more than Sentry's JSON (the web page's files changed).
pub fn release_commit_page(
    conn: &Connection,
    release: &Release,
    cursor: Option<&str>,
    per_page: usize,
) -> Result<super::release::Page<commits::StoredCommit>, CoreError> {
    use super::release::Cursor;
    let cursor = Cursor::parse(cursor.unwrap_or(""))?;
    let (from, offset, backward) = match cursor {
        None => (0, 0, false),
        Some(c) if c.offset < 0 || c.value < 0 => {
            return Err(CoreError::invalid("cursor", "Invalid cursor parameter."));
        }
        Some(c) => (c.value, c.offset as usize, c.is_prev),
    };
    let mut rows =
        commits::release_commits_page(conn, release.id, from, offset, per_page, backward)?;
    let more = rows.len() > per_page;
    if more {
        if backward {
            rows.remove(0);
        } else {
            rows.truncate(per_page);
        }
    }
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f.0, l.0),
        _ => (from, from),
    };
    let has_prev = if backward {
        more
    } else {
        commits::has_commit_before(conn, release.id, first)?
    };
    let has_next = if backward {
        commits::has_commit_after(conn, release.id, last)?
    } else {
        more
    };
    Ok(super::release::Page {
        items: rows.into_iter().map(|(_, c)| c).collect(),
        prev: Cursor {
            value: first,
            offset: 0,
            is_prev: true,
            has_results: has_prev,
        },
        next: Cursor {
            value: last,
            offset: 1,
            is_prev: false,
            has_results: has_next,
        },
    })
}

/// `previous-with-commits`: the newest release (in `project_ids`, or in any project when
/// empty) that has commits and is not later than this one by `COALESCE(date_released,
/// date_added)`, or `None`.
///
/// Sentry's query does not exclude the release itself, so re-running `sentry-cli
/// releases set-commits --local` on a release that already has commits finds that release,
/// takes its own newest commit as the previous one and sends zero commits. Excluding it
/// here makes a re-run send the same commits again.
pub fn previous_with_commits(
    conn: &Connection,
    org: &Org,
    release: &Release,
    project_ids: &[i64],
) -> Result<Option<Release>, CoreError> {
    let date = release
        .date_released
        .clone()
        .unwrap_or_else(|| release.date_added.clone());
    let id = commits::previous_with_commits(conn, org.id, release.id, &date, project_ids)?;
    match id {
        Some(id) => Ok(releases::by_id(conn, id)?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::org::ProjectRef;
    use crate::core::release::{self, CreateRelease};
    use crate::model::commit::{ChangeKind, FileChange};
    use crate::store::{Store, orgs};

    fn setup() -> (tempfile::TempDir, Store, Org) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let org = store
            .write_blocking(|tx| {
                let org = orgs::ensure_org(tx, "acme", "2024-01-01T00:00:00.000000Z")?;
                orgs::upsert_project(
                    tx,
                    org.id,
                    "web",
                    "Web",
                    None,
                    "2024-01-01T00:00:00.000000Z",
                )?;
                Ok::<_, CoreError>(org)
            })
            .unwrap();
        (dir, store, org)
    }

    fn new_release(store: &Store, org: &Org, version: &str) -> Release {
        let org = org.clone();
        let version = version.to_string();
        store
            .write_blocking(move |tx| {
                let req = CreateRelease {
                    version,
                    projects: vec![ProjectRef::Slug("web".into())],
                    ..Default::default()
                };
                Ok::<_, CoreError>(release::upsert(tx, &org, &req, &super::super::now())?.release)
            })
            .unwrap()
    }

    fn commit(id: &str, ts: &str, email: &str, message: &str) -> CommitData {
        CommitData {
            id: id.into(),
            repository: Some("acme/web".into()),
            message: Some(message.into()),
            author_name: Some(format!("Name {email}")),
            author_email: Some(email.into()),
            timestamp: Some(ts.into()),
            patch_set: vec![FileChange {
                path: format!("{id}.txt"),
                kind: ChangeKind::Added,
            }],
        }
    }

    fn set(store: &Store, org: &Org, release: &Release, list: Vec<CommitData>) -> Release {
        let (org, release) = (org.clone(), release.clone());
        store
            .write_blocking(move |tx| {
                set_commits(tx, &org, &release, &list)?;
                Ok::<_, CoreError>(releases::by_id(tx, release.id)?.unwrap())
            })
            .unwrap()
    }

    fn keys(store: &Store, release: &Release) -> Vec<String> {
        let id = release.id;
        store
            .read_blocking(move |c| {
                let mut stmt = c.prepare(
                    "SELECT c.key FROM release_commits rc JOIN commits c ON c.id = rc.commit_id
                     WHERE rc.release_id = ?1 ORDER BY rc.position",
                )?;
                let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
                Ok::<_, CoreError>(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .unwrap()
    }

    #[test]
    fn author_emails_follow_sentry() {
        let mut c = CommitData {
            author_name: Some("Jane O'Doe (CI)".into()),
            ..Default::default()
        };
        assert_eq!(author_email(&c).as_deref(), Some("janeodoeci@localhost"));
        c.author_email = Some(String::new());
        assert_eq!(author_email(&c).as_deref(), Some("janeodoeci@localhost"));
        c.author_email = Some("Jane@Example.COM".into());
        assert_eq!(author_email(&c).as_deref(), Some("jane@example.com"));
        c.author_email = Some(format!("{}@x.io", "a".repeat(80)));
        let e = author_email(&c).unwrap();
        assert_eq!(e.chars().count(), 75);
        assert!(e.ends_with('…'));
        let none = CommitData::default();
        assert_eq!(author_email(&none), None);
    }

    #[test]
    fn set_commits_sorts_filters_counts_and_replaces() {
        let (_dir, store, org) = setup();
        let r = new_release(&store, &org, "1.0.0");
        let list = vec![
            commit(
                "aaa",
                "2024-01-01T10:00:00+02:00",
                "One@acme.test",
                "oldest",
            ),
            commit(
                "ccc",
                "2024-01-01T12:00:00+02:00",
                "two@acme.test",
                "newest",
            ),
            commit("bbb", "2024-01-01T09:30:00Z", "one@acme.test", "middle"),
            commit(
                "skip",
                "2024-01-01T13:00:00Z",
                "one@acme.test",
                "wip #skipsentry",
            ),
            commit(
                "ccc",
                "2024-01-01T12:00:00+02:00",
                "two@acme.test",
                "newest",
            ),
        ];
        let r = set(&store, &org, &r, list);
        // Sorted by timestamp, newest first; the duplicate keeps its first position.
        assert_eq!(keys(&store, &r), ["ccc", "bbb", "aaa"]);
        // Sentry counts the list after filtering, duplicates included.
        assert_eq!(r.commit_count, 4);
        let last = r.last_commit_id.unwrap();
        let (head, last_key, authors, repo_provider) = {
            let id = r.id;
            store
                .read_blocking(move |c| {
                    let repo = repos::by_name(c, org.id, "acme/web")?.unwrap();
                    let head = head_commit(c, id, repo.id)?;
                    let last_key: String =
                        c.query_row("SELECT key FROM commits WHERE id = ?1", [last], |r| {
                            r.get(0)
                        })?;
                    let authors: i64 =
                        c.query_row("SELECT count(*) FROM commit_authors", [], |r| r.get(0))?;
                    Ok::<_, CoreError>((head, last_key, authors, repo.provider))
                })
                .unwrap()
        };
        assert_eq!(last_key, "ccc");
        assert_eq!(head.as_deref(), Some("ccc"));
        assert_eq!(authors, 2, "emails are lowercased before dedup");
        assert_eq!(repo_provider, "none", "auto-created like Sentry");
        let ids: Vec<String> = serde_json::from_str(&r.authors).unwrap();
        assert_eq!(ids.len(), 2);

        // A re-set replaces the list; the head commit set first stays (Sentry).
        let r = set(
            &store,
            &org,
            &r,
            vec![commit(
                "ddd",
                "2024-01-02T00:00:00Z",
                "three@acme.test",
                "later",
            )],
        );
        assert_eq!(keys(&store, &r), ["ddd"]);
        assert_eq!(r.commit_count, 1);
        let id = r.id;
        let head = store
            .read_blocking(move |c| {
                let repo = repos::by_name(c, org.id, "acme/web")?.unwrap();
                head_commit(c, id, repo.id)
            })
            .unwrap();
        assert_eq!(head.as_deref(), Some("ccc"));

        // Clear.
        let release = r.clone();
        let r = store
            .write_blocking(move |tx| {
                clear_commits(tx, &release)?;
                Ok::<_, CoreError>(releases::by_id(tx, release.id)?.unwrap())
            })
            .unwrap();
        assert_eq!(r.commit_count, 0);
        assert_eq!(r.last_commit_id, None);
        assert_eq!(r.authors, "[]");
        assert!(keys(&store, &r).is_empty());
    }

    #[test]
    fn release_views_show_last_commit_and_authors() {
        let (_dir, store, org) = setup();
        let r = new_release(&store, &org, "1.0.0");
        let sha = "d98df54ebbcb5bf9debdbf96cb2d277ff0fff4e1";
        let mut c1 = commit(
            sha,
            "2024-01-02T12:00:25+02:00",
            "dev@acme.test",
            "fix it\n",
        );
        c1.author_name = Some("Dev One".into());
        let c2 = commit(
            "b".repeat(40).as_str(),
            "2024-01-02T12:00:00+02:00",
            "Dev@ACME.test",
            "older",
        );
        let r = set(&store, &org, &r, vec![c2, c1]);
        let view = store.read_blocking(move |c| release::view(c, r)).unwrap();
        let last = view.last_commit.unwrap();
        assert_eq!(last["id"], sha);
        assert_eq!(last["message"], "fix it\n");
        assert_eq!(last["dateCreated"], "2024-01-02T10:00:25.000000Z");
        assert_eq!(last["author"]["email"], "dev@acme.test");
        assert_eq!(last["author"]["name"], "Dev One");
        assert_eq!(last["repository"]["name"], "acme/web");
        assert_eq!(
            last["repository"]["id"],
            last["repository"]["id"].as_str().unwrap()
        );
        assert_eq!(
            view.authors,
            vec![json!({"name": "Dev One", "email": "dev@acme.test"})]
        );
    }

    #[test]
    fn ref_specs_follow_sentrys_serializer() {
        let r = RefSpec::parse(Some("acme/web"), Some("a..b"), None).unwrap();
        assert_eq!(r.commit, "b");
        assert_eq!(r.previous_commit.as_deref(), Some("a"));
        let r = RefSpec::parse(Some("acme/web"), Some("b"), Some("")).unwrap();
        assert_eq!(r.previous_commit, None);
        for (repo, commit, want) in [
            (None, Some("a"), "repository: This field is required."),
            (Some("r"), None, "commit: This field is required."),
            (Some("r"), Some("..b"), "Commit cannot begin or end with .."),
            (Some("r"), Some("a.."), "Commit cannot begin or end with .."),
        ] {
            let err = RefSpec::parse(repo, commit, None).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
        let long = "f".repeat(65);
        let err = RefSpec::parse(Some("r"), Some(&long), None).unwrap_err();
        assert_eq!(err.to_string(), "Commit too long - max is 64 chars");
        let err = RefSpec::parse(Some("r"), Some(&format!("a..{long}")), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Start or end commit too long - max is 64 chars each"
        );
    }
}
