//! GitHub's REST API, through octocrab: the commits of a range, a commit's files, tags.
//!
//! This is how a repository that lives only on GitHub gets the same commit data a local clone
//! gives through git2 ([`CommitData`], newest first, with patch sets). octocrab supplies the
//! HTTP client, TLS, the `github.api_url` base (GitHub Enterprise, or a local fake in tests)
//! and the token; requests go through [`GithubClient::get`], which owns the parts GitHub's
//! documentation asks of a well-behaved client and that octocrab's high-level builders hide:
//!
//! - **Paging.** Compare returns at most 250 commits unless paged, so it is always paged at 100
//!   a page until `total_commits` are in. A commit's files are cut at 300 per response, the rest
//!   behind `Link: rel="next"` (up to 3000), which is followed. Tags are paged the same way.
//! - **Rate limits and outages.** A 403/429 that carries `Retry-After` or
//!   `x-ratelimit-remaining: 0` is waited out when the wait is short ([`RetryPolicy::max_wait`])
//!   and reported as [`GithubError::RateLimited`] otherwise, so the pipeline retries the event
//!   later instead of blocking every other event. 5xx replies and transport errors are retried
//!   with exponential backoff a bounded number of times. octocrab's own retry layer is off so
//!   these rules are the only ones.
//! - **File statuses** map to Sentry's patch set as Sentry's GitHub integration does
//!   (sentry-semantics.md §3.4): `added` A, `modified` M, `removed` D, `renamed` D of the old
//!   path plus A of the new; other statuses are not recorded.

use std::time::Duration;

use axum::http;
use futures_util::{StreamExt, TryStreamExt};
use octocrab::Octocrab;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::GithubConfig;
use crate::model::commit::{ChangeKind, CommitData, FileChange};
use crate::pipeline::HandlerError;

/// Commits per compare/list page (GitHub's maximum).
const PER_PAGE: usize = 100;
/// Compare pages followed at most (Sentry's limit: 20 000 commits).
const MAX_COMPARE_PAGES: usize = 200;
/// File pages of one commit followed at most (GitHub stops at 3000 files anyway).
const MAX_FILE_PAGES: usize = 40;
/// Commits whose files are fetched at the same time.
const CONCURRENT_COMMITS: usize = 4;

/// Why a GitHub API call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GithubError {
    /// The client could not be built (bad `github.api_url`, TLS setup).
    #[error("cannot set up the GitHub client: {0}")]
    Setup(String),
    /// Rate-limited for longer than we wait in place; retry after `retry_after`.
    #[error("GitHub rate limit reached ({detail}); retry in {}s", retry_after.as_secs())]
    RateLimited {
        retry_after: Duration,
        detail: String,
    },
    /// GitHub failed (5xx) or could not be reached, every attempt.
    #[error("GitHub is unavailable after {attempts} attempts: {detail}")]
    Unavailable { attempts: u32, detail: String },
    /// 404: the repository, commit or tag does not exist (or the token cannot see it).
    #[error("not found on GitHub: {0}")]
    NotFound(String),
    /// Any other refusal (401 bad token, 403 no access, 422 ...).
    #[error("GitHub answered {status} for {url}: {detail}")]
    Refused {
        status: u16,
        url: String,
        detail: String,
    },
    /// The reply was not the JSON GitHub documents.
    #[error("unexpected reply from GitHub for {url}: {detail}")]
    Decode { url: String, detail: String },
}

impl GithubError {
    /// Whether trying again later can help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GithubError::RateLimited { .. } | GithubError::Unavailable { .. }
        )
    }
}

impl From<GithubError> for HandlerError {
    fn from(e: GithubError) -> Self {
        if e.is_transient() {
            HandlerError::Retry(e.to_string())
        } else {
            HandlerError::Permanent(e.to_string())
        }
    }
}

/// How hard a request is retried before the error goes back to the caller.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// The first backoff after a 5xx or transport error; doubled each time.
    pub base_delay: Duration,
    /// The longest rate-limit wait done in place; a longer one fails with
    /// [`GithubError::RateLimited`].
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(500),
            max_wait: Duration::from_secs(10),
        }
    }
}

/// A file of a commit as the API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiFile {
    pub filename: String,
    pub status: String,
    #[serde(default)]
    pub previous_filename: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct ApiPerson {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct ApiCommitInfo {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub author: Option<ApiPerson>,
    #[serde(default)]
    pub committer: Option<ApiPerson>,
}

/// A commit as compare, list-commits and get-a-commit return it.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiCommit {
    pub sha: String,
    #[serde(default)]
    pub commit: ApiCommitInfo,
    /// Only get-a-commit has files (one page of them).
    #[serde(default)]
    pub files: Option<Vec<ApiFile>>,
}

#[derive(Debug, Deserialize)]
struct Comparison {
    #[serde(default)]
    total_commits: Option<usize>,
    #[serde(default)]
    commits: Vec<ApiCommit>,
}

/// A tag as the tags list returns it: the commit is already peeled.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiTag {
    pub name: String,
    pub commit: ApiObjectRef,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiObjectRef {
    pub sha: String,
}

#[derive(Debug, Deserialize)]
struct GitObject {
    #[serde(rename = "type")]
    type_: String,
    sha: String,
}

#[derive(Debug, Deserialize)]
struct GitRef {
    object: GitObject,
}

#[derive(Debug, Deserialize)]
struct GitTag {
    object: GitObject,
    #[serde(default)]
    tagger: Option<ApiPerson>,
}

/// Maps GitHub file statuses to Sentry's patch set (sentry-semantics.md §3.4).
pub fn patch_set(files: &[ApiFile]) -> Vec<FileChange> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let change = |path: &str, kind| FileChange {
            path: path.to_owned(),
            kind,
        };
        match f.status.as_str() {
            "added" => out.push(change(&f.filename, ChangeKind::Added)),
            "modified" => out.push(change(&f.filename, ChangeKind::Modified)),
            "removed" => out.push(change(&f.filename, ChangeKind::Deleted)),
            "renamed" => {
                if let Some(prev) = &f.previous_filename {
                    out.push(change(prev, ChangeKind::Deleted));
                }
                out.push(change(&f.filename, ChangeKind::Added));
            }
            // copied, changed (mode only), unchanged: Sentry records nothing for them.
            _ => {}
        }
    }
    out
}

impl ApiCommit {
    /// The commit in the one shape every source produces.
    pub fn to_commit_data(&self, repository: &str, files: &[ApiFile]) -> CommitData {
        let author = self.commit.author.clone().unwrap_or_default();
        CommitData {
            id: self.sha.clone(),
            repository: Some(repository.to_owned()),
            message: self.commit.message.clone(),
            author_name: author.name.filter(|n| !n.is_empty()),
            author_email: author.email.filter(|e| !e.is_empty()),
            timestamp: author.date,
            patch_set: patch_set(files),
        }
    }
}

/// The `rel="next"` URL of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| url.to_owned())
    })
}

/// Percent-encodes a ref or sha for a URL path, keeping `/` (tag names may contain it).
fn path_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `owner/name` checked and escaped for a URL path.
fn repo_path(repo: &str) -> Result<String, GithubError> {
    match repo.split_once('/') {
        Some((o, r)) if !o.is_empty() && !r.is_empty() && !r.contains('/') => {
            Ok(format!("/repos/{}/{}", path_escape(o), path_escape(r)))
        }
        _ => Err(GithubError::Setup(format!(
            "{repo:?} is not owner/name as on GitHub"
        ))),
    }
}

/// A GitHub API client for one `github:` configuration; cheap to clone.
#[derive(Clone)]
pub struct GithubClient {
    gh: Octocrab,
    retry: RetryPolicy,
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl GithubClient {
    /// Builds the client for `config`. Must run inside a tokio runtime (octocrab spawns its
    /// request buffer there).
    pub fn new(config: &GithubConfig) -> Result<GithubClient, GithubError> {
        let base = config.api_url.trim_end_matches('/').to_owned();
        let mut builder = Octocrab::builder()
            .base_uri(base.as_str())
            .map_err(|e| GithubError::Setup(format!("github.api_url {base:?}: {e}")))?
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)));
        if let Some(token) = &config.token {
            builder = builder.personal_token(token.clone());
        }
        let gh = builder
            .build()
            .map_err(|e| GithubError::Setup(e.to_string()))?;
        Ok(GithubClient {
            gh,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> GithubClient {
        self.retry = retry;
        self
    }

    /// GETs `url` (a path below the API base, or an absolute `Link` URL) and decodes the JSON,
    /// retrying as [`RetryPolicy`] says. Returns the value and the `rel="next"` link.
    pub async fn get<T: DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(T, Option<String>), GithubError> {
        self.request(url, None).await
    }

    /// [`GithubClient::get`], or a PATCH of `patch` when given (PATCHes are idempotent, so
    /// they are retried the same way).
    async fn request<T: DeserializeOwned>(
        &self,
        url: &str,
        patch: Option<&serde_json::Value>,
    ) -> Result<(T, Option<String>), GithubError> {
        let mut attempt = 0u32;
        let mut delay = self.retry.base_delay;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts.max(1);
            let sent = match patch {
                None => self.gh._get(url).await,
                Some(body) => self.gh._patch(url, Some(body)).await,
            };
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    let detail = format!("request to {url} failed: {e}");
                    if last {
                        return Err(GithubError::Unavailable {
                            attempts: attempt,
                            detail,
                        });
                    }
                    tracing::warn!(url, attempt, error = %e, "GitHub request failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    continue;
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let next = headers
                .get(http_link())
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body =
                self.gh
                    .body_to_string(response)
                    .await
                    .map_err(|e| GithubError::Unavailable {
                        attempts: attempt,
                        detail: format!("reading the reply of {url}: {e}"),
                    });
            let body = match body {
                Ok(b) => b,
                Err(e) if last => return Err(e),
                Err(e) => {
                    tracing::warn!(url, attempt, error = %e, "GitHub reply cut short, retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    continue;
                }
            };
            if status.is_success() {
                let value = serde_json::from_str(&body).map_err(|e| GithubError::Decode {
                    url: url.to_owned(),
                    detail: e.to_string(),
                })?;
                return Ok((value, next));
            }
            let detail = github_message(&body);
            if let Some(wait) = rate_limit_wait(status.as_u16(), &headers) {
                if wait > self.retry.max_wait || last {
                    return Err(GithubError::RateLimited {
                        retry_after: wait,
                        detail,
                    });
                }
                tracing::warn!(
                    url,
                    wait_secs = wait.as_secs_f64(),
                    "GitHub rate limit, waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() {
                if last {
                    return Err(GithubError::Unavailable {
                        attempts: attempt,
                        detail: format!("{status} for {url}: {detail}"),
                    });
                }
                tracing::warn!(url, attempt, %status, "GitHub server error, retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                continue;
            }
            if status.as_u16() == 404 {
                return Err(GithubError::NotFound(format!("{url}: {detail}")));
            }
            return Err(GithubError::Refused {
                status: status.as_u16(),
                url: url.to_owned(),
                detail,
            });
        }
    }

    /// The commits in `base...head`, oldest first (GitHub's order), every page.
    pub async fn compare(
        &self,
        repo: &str,
        base: &str,
        head: &str,
    ) -> Result<Vec<ApiCommit>, GithubError> {
        let path = format!(
            "{}/compare/{}...{}",
            repo_path(repo)?,
            path_escape(base),
            path_escape(head)
        );
        let mut commits = Vec::new();
        for page in 1..=MAX_COMPARE_PAGES {
            let url = format!("{path}?per_page={PER_PAGE}&page={page}");
            let (cmp, _next): (Comparison, _) = self.get(&url).await?;
            let got = cmp.commits.len();
            commits.extend(cmp.commits);
            let total = cmp.total_commits.unwrap_or(commits.len());
            if got == 0 || commits.len() >= total || got < PER_PAGE {
                return Ok(commits);
            }
            if page == MAX_COMPARE_PAGES {
                tracing::warn!(
                    repo,
                    base,
                    head,
                    total,
                    "compare has more commits than shiplog follows; keeping the first {}",
                    commits.len()
                );
            }
        }
        Ok(commits)
    }

    /// The newest `limit` commits reachable from `head`, newest first; only those touching
    /// `path` when given.
    pub async fn list_commits(
        &self,
        repo: &str,
        head: &str,
        path: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ApiCommit>, GithubError> {
        let per_page = limit.clamp(1, PER_PAGE);
        let mut url = format!(
            "{}/commits?sha={}&per_page={per_page}",
            repo_path(repo)?,
            query_escape(head)
        );
        if let Some(p) = path {
            url.push_str(&format!("&path={}", query_escape(p)));
        }
        let mut out = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            if out.len() >= limit {
                break;
            }
            let (page, link): (Vec<ApiCommit>, _) = self.get(&url).await?;
            if page.is_empty() {
                break;
            }
            out.extend(page);
            next = link;
        }
        out.truncate(limit);
        Ok(out)
    }

    /// One commit with every changed file: the first response has up to 300 files, the rest
    /// follow through `Link: rel="next"` pages.
    pub async fn commit(&self, repo: &str, sha: &str) -> Result<CommitData, GithubError> {
        let mut url = Some(format!(
            "{}/commits/{}?per_page={PER_PAGE}&page=1",
            repo_path(repo)?,
            path_escape(sha)
        ));
        let mut first: Option<ApiCommit> = None;
        let mut files = Vec::new();
        let mut pages = 0;
        while let Some(u) = url.take() {
            let (c, next): (ApiCommit, _) = self.get(&u).await?;
            files.extend(c.files.clone().unwrap_or_default());
            first.get_or_insert(c);
            pages += 1;
            if pages < MAX_FILE_PAGES {
                url = next;
            }
        }
        let Some(c) = first else {
            return Err(GithubError::NotFound(format!("commit {sha} in {repo}")));
        };
        Ok(c.to_commit_data(repo, &files))
    }

    /// Every tag of the repository (all pages), each with its peeled commit.
    pub async fn tags(&self, repo: &str) -> Result<Vec<ApiTag>, GithubError> {
        let mut next = Some(format!("{}/tags?per_page={PER_PAGE}", repo_path(repo)?));
        let mut out = Vec::new();
        while let Some(url) = next.take() {
            let (page, link): (Vec<ApiTag>, _) = self.get(&url).await?;
            if page.is_empty() {
                break;
            }
            out.extend(page);
            next = link;
        }
        Ok(out)
    }

    /// The commit a tag points to, peeling annotated tag objects.
    pub async fn peel_tag(&self, repo: &str, tag: &str) -> Result<String, GithubError> {
        let base = repo_path(repo)?;
        let (r, _): (GitRef, _) = self
            .get(&format!("{base}/git/ref/tags/{}", path_escape(tag)))
            .await?;
        let mut object = r.object;
        // A tag of a tag of a commit is legal; a few levels is plenty.
        for _ in 0..8 {
            if object.type_ != "tag" {
                return Ok(object.sha);
            }
            let (t, _): (GitTag, _) = self
                .get(&format!("{base}/git/tags/{}", path_escape(&object.sha)))
                .await?;
            object = t.object;
        }
        Err(GithubError::Decode {
            url: format!("{base}/git/ref/tags/{tag}"),
            detail: "tag objects nested too deeply".into(),
        })
    }

    /// When a tag was made: the tagger date of an annotated tag (its tag object), else the
    /// committer date of `commit`, the commit it peels to.
    pub async fn tag_date(
        &self,
        repo: &str,
        tag: &str,
        commit: &str,
    ) -> Result<String, GithubError> {
        let base = repo_path(repo)?;
        let (r, _): (GitRef, _) = self
            .get(&format!("{base}/git/ref/tags/{}", path_escape(tag)))
            .await?;
        if r.object.type_ == "tag" {
            let (t, _): (GitTag, _) = self
                .get(&format!("{base}/git/tags/{}", path_escape(&r.object.sha)))
                .await?;
            if let Some(date) = t.tagger.and_then(|p| p.date) {
                return Ok(date);
            }
        }
        // One file is enough: only the commit's dates are wanted.
        let (c, _): (ApiCommit, _) = self
            .get(&format!(
                "{base}/commits/{}?per_page=1&page=1",
                path_escape(commit)
            ))
            .await?;
        let info = c.commit;
        info.committer
            .and_then(|p| p.date)
            .or_else(|| info.author.and_then(|p| p.date))
            .ok_or_else(|| GithubError::Decode {
                url: format!("{base}/commits/{commit}"),
                detail: "the commit has no date".into(),
            })
    }

    /// The description of a GitHub release.
    pub async fn release_body(&self, repo: &str, release_id: i64) -> Result<String, GithubError> {
        #[derive(Deserialize)]
        struct GithubRelease {
            #[serde(default)]
            body: Option<String>,
        }
        let (r, _): (GithubRelease, _) = self
            .get(&format!("{}/releases/{release_id}", repo_path(repo)?))
            .await?;
        Ok(r.body.unwrap_or_default())
    }

    /// Replaces the description of a GitHub release.
    pub async fn set_release_body(
        &self,
        repo: &str,
        release_id: i64,
        body: &str,
    ) -> Result<(), GithubError> {
        let patch = serde_json::json!({ "body": body });
        let _: (serde_json::Value, _) = self
            .request(
                &format!("{}/releases/{release_id}", repo_path(repo)?),
                Some(&patch),
            )
            .await?;
        Ok(())
    }

    /// The commits of a release range, newest first, with their files — what git2's
    /// `collect_range` gives for a local clone. `from: None` takes the newest `initial_depth`
    /// commits; a `from` GitHub no longer knows (force-pushed away) does the same. With
    /// `paths`, only commits touching one of them are kept.
    pub async fn range(
        &self,
        repo: &str,
        from: Option<&str>,
        to: &str,
        paths: &[String],
        initial_depth: usize,
    ) -> Result<Vec<CommitData>, GithubError> {
        if from == Some(to) {
            return Ok(Vec::new());
        }
        let listed = match from {
            Some(from) => match self.compare(repo, from, to).await {
                Ok(mut commits) => {
                    commits.reverse();
                    Some(commits)
                }
                Err(GithubError::NotFound(detail)) => {
                    tracing::warn!(repo, from, to, %detail, "previous head unknown to GitHub; taking the newest commits instead");
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let shas: Vec<String> = match listed {
            Some(commits) => commits.into_iter().map(|c| c.sha).collect(),
            None => self.recent(repo, to, paths, initial_depth).await?,
        };
        let mut commits: Vec<CommitData> = futures_util::stream::iter(shas)
            .map(|sha| async move { self.commit(repo, &sha).await })
            .buffered(CONCURRENT_COMMITS)
            .try_collect()
            .await?;
        if !paths.is_empty() {
            commits.retain(|c| touches(c, paths));
        }
        Ok(commits)
    }

    /// The newest `depth` commits up to `to` (touching `paths` when given), newest first.
    async fn recent(
        &self,
        repo: &str,
        to: &str,
        paths: &[String],
        depth: usize,
    ) -> Result<Vec<String>, GithubError> {
        if paths.is_empty() {
            let list = self.list_commits(repo, to, None, depth).await?;
            return Ok(list.into_iter().map(|c| c.sha).collect());
        }
        // One list per path, merged newest first by author date.
        let mut all: Vec<ApiCommit> = Vec::new();
        for p in paths {
            for c in self.list_commits(repo, to, Some(p), depth).await? {
                if !all.iter().any(|a| a.sha == c.sha) {
                    all.push(c);
                }
            }
        }
        let date = |c: &ApiCommit| {
            c.commit
                .author
                .as_ref()
                .and_then(|a| a.date.as_deref())
                .and_then(crate::model::time::parse)
        };
        all.sort_by_key(|c| std::cmp::Reverse(date(c)));
        all.truncate(depth);
        Ok(all.into_iter().map(|c| c.sha).collect())
    }
}

/// Where shiplog's notes start and end in a release description.
pub const NOTES_START: &str = "<!-- shiplog:release-notes -->";
pub const NOTES_END: &str = "<!-- /shiplog:release-notes -->";

/// `existing` with shiplog's notes block put in (replacing an earlier one, else appended), so
/// whatever the author wrote stays.
pub fn with_notes(existing: &str, notes: &str) -> String {
    let block = format!("{NOTES_START}\n{}\n{NOTES_END}", notes.trim_end());
    if let (Some(a), Some(b)) = (existing.find(NOTES_START), existing.find(NOTES_END))
        && a < b
    {
        return format!(
            "{}{block}{}",
            &existing[..a],
            &existing[b + NOTES_END.len()..]
        );
    }
    if existing.trim().is_empty() {
        block
    } else {
        format!("{}\n\n{block}", existing.trim_end())
    }
}

/// Whether a commit touches one of `paths` (a path or a directory prefix of one).
fn touches(c: &CommitData, paths: &[String]) -> bool {
    c.patch_set.iter().any(|f| {
        paths.iter().any(|p| {
            let p = p.trim_end_matches('/');
            f.path == p || f.path.starts_with(&format!("{p}/"))
        })
    })
}

fn query_escape(text: &str) -> String {
    path_escape(text).replace('/', "%2F")
}

fn http_link() -> http::header::HeaderName {
    http::header::LINK
}

/// GitHub's error `message`, or the body itself.
fn github_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// How long a rate-limited reply asks us to wait, if it is one (GitHub's rules: 429 always;
/// 403 when it carries `Retry-After` or `x-ratelimit-remaining: 0`).
fn rate_limit_wait(status: u16, headers: &http::HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    if status != 429 && !(status == 403 && (retry_after.is_some() || exhausted)) {
        return None;
    }
    if let Some(secs) = retry_after {
        return Some(Duration::from_secs(secs));
    }
    if exhausted
        && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok())
    {
        let now = chrono::Utc::now().timestamp();
        return Some(Duration::from_secs((reset - now).max(1) as u64));
    }
    // A secondary limit without a hint: GitHub asks for at least a minute.
    Some(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_added_once_and_keep_the_authors_text() {
        let first = with_notes("", "# 1.0\n");
        assert_eq!(first, format!("{NOTES_START}\n# 1.0\n{NOTES_END}"));
        let mine = with_notes("Hand-written intro.\n", "# 1.0");
        assert_eq!(
            mine,
            format!("Hand-written intro.\n\n{NOTES_START}\n# 1.0\n{NOTES_END}")
        );
        let again = with_notes(&format!("{mine}\nFooter"), "# 1.0 (2 commits)");
        assert_eq!(
            again,
            format!("Hand-written intro.\n\n{NOTES_START}\n# 1.0 (2 commits)\n{NOTES_END}\nFooter")
        );
    }

    #[test]
    fn renamed_files_become_delete_plus_add() {
        let files: Vec<ApiFile> = serde_json::from_value(serde_json::json!([
            {"filename": "a.rs", "status": "added"},
            {"filename": "b.rs", "status": "modified"},
            {"filename": "c.rs", "status": "removed"},
            {"filename": "new.rs", "status": "renamed", "previous_filename": "old.rs"},
            {"filename": "d.rs", "status": "copied"},
        ]))
        .unwrap();
        let got: Vec<(String, &str)> = patch_set(&files)
            .into_iter()
            .map(|f| (f.path, f.kind.code()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.rs".into(), "A"),
                ("b.rs".into(), "M"),
                ("c.rs".into(), "D"),
                ("old.rs".into(), "D"),
                ("new.rs".into(), "A"),
            ]
        );
    }

    #[test]
    fn link_header_next_is_found() {
        let h = r#"<http://127.0.0.1:9/repos/a/b/tags?page=2>; rel="next", <http://127.0.0.1:9/repos/a/b/tags?page=5>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("http://127.0.0.1:9/repos/a/b/tags?page=2")
        );
        let last_only = r#"<http://x/?page=1>; rel="first", <http://x/?page=5>; rel="prev""#;
        assert_eq!(next_link(last_only), None);
    }

    #[test]
    fn rate_limit_replies_are_recognised() {
        let mut h = http::HeaderMap::new();
        assert_eq!(rate_limit_wait(403, &h), None, "a plain 403 is a refusal");
        assert_eq!(rate_limit_wait(429, &h), Some(Duration::from_secs(60)));
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(rate_limit_wait(403, &h), Some(Duration::from_secs(3)));
        let mut h = http::HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        let reset = chrono::Utc::now().timestamp() + 120;
        h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let wait = rate_limit_wait(403, &h).unwrap();
        assert!((118..=120).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(rate_limit_wait(500, &h), None);
    }

    #[test]
    fn repo_paths_are_checked_and_escaped() {
        assert_eq!(repo_path("acme/web").unwrap(), "/repos/acme/web");
        assert!(repo_path("acme").is_err());
        assert!(repo_path("a/b/c").is_err());
        assert_eq!(path_escape("release/v1 #2"), "release/v1%20%232");
        assert_eq!(query_escape("feature/x"), "feature%2Fx");
    }

    #[test]
    fn path_filter_matches_files_and_directories() {
        let c = CommitData {
            patch_set: vec![FileChange {
                path: "packages/ui/src/a.ts".into(),
                kind: ChangeKind::Modified,
            }],
            ..Default::default()
        };
        assert!(touches(&c, &["packages/ui".into()]));
        assert!(touches(&c, &["packages/ui/".into()]));
        assert!(!touches(&c, &["packages/u".into()]));
        assert!(!touches(&c, &["docs".into()]));
    }
}
