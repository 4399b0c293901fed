//! A fake of GitHub's REST API on 127.0.0.1, answering as GitHub's documentation says it does,
//! so the GitHub client and the daemon can be tested with no call leaving the machine.
//!
//! It holds repositories with a linear history of commits (each with its changed files) and
//! tags, and serves the endpoints shiplog uses, with GitHub's shapes and limits:
//!
//! - `GET /repos/{o}/{r}/compare/{base}...{head}`: 250 commits at most unless paged with
//!   `page`/`per_page` (max 100), oldest first, `total_commits`, `files` on the first page only;
//! - `GET /repos/{o}/{r}/commits/{ref}`: one commit with at most 300 files (or `per_page`), the
//!   rest behind `Link: rel="next"` pages, up to 3000;
//! - `GET /repos/{o}/{r}/commits?sha=&path=&per_page=`: newest first, `Link` paged;
//! - `GET /repos/{o}/{r}/tags`: `Link` paged (30 a page by default);
//! - `GET /repos/{o}/{r}/git/ref/tags/{tag}`, `GET /repos/{o}/{r}/git/tags/{sha}`: refs and
//!   annotated tag objects;
//! - `GET`/`PATCH /repos/{o}/{r}/releases/{id}`: a GitHub release and its description.
//!
//! `Link` URLs use the fake's own host:port, as GitHub's use its own, so a client that follows
//! them keeps its token. Faults can be queued per path: a primary or secondary rate-limit 403,
//! a 502, any status. Every request is logged with its `Authorization` header.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

/// A changed file of a fake commit.
#[derive(Debug, Clone)]
pub struct FakeFile {
    pub filename: String,
    /// added | modified | removed | renamed
    pub status: String,
    pub previous_filename: Option<String>,
}

impl FakeFile {
    pub fn new(filename: &str, status: &str) -> FakeFile {
        FakeFile {
            filename: filename.into(),
            status: status.into(),
            previous_filename: None,
        }
    }

    pub fn renamed(from: &str, to: &str) -> FakeFile {
        FakeFile {
            filename: to.into(),
            status: "renamed".into(),
            previous_filename: Some(from.into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FakeCommit {
    pub sha: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    pub date: String,
    pub files: Vec<FakeFile>,
}

#[derive(Debug, Clone)]
pub struct FakeTag {
    pub name: String,
    pub commit: String,
    /// The tag object's sha when the tag is annotated.
    pub object: Option<String>,
    /// The tagger date of an annotated tag: the fake's clock when it was made.
    pub date: String,
}

#[derive(Debug, Default)]
struct FakeRepo {
    /// Oldest first; a linear history.
    commits: Vec<FakeCommit>,
    /// In creation order.
    tags: Vec<FakeTag>,
    /// GitHub releases: id -> (tag, description).
    releases: HashMap<i64, (String, String)>,
}

/// A queued failure: the next `times` requests whose path contains `path` get this reply.
#[derive(Debug, Clone)]
pub enum Fault {
    /// A primary rate limit: 403, `x-ratelimit-remaining: 0`, reset `reset_in` seconds away.
    RateLimited { reset_in: i64 },
    /// A secondary rate limit: 403 with `Retry-After`.
    SecondaryRateLimit { retry_after: u64 },
    /// Any status with GitHub's JSON error body (502, 500, 404, ...).
    Status(u16),
}

#[derive(Debug, Clone)]
struct QueuedFault {
    path: String,
    times: usize,
    fault: Fault,
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub authorization: Option<String>,
    pub status: u16,
}

#[derive(Debug, Default)]
struct State {
    repos: HashMap<String, FakeRepo>,
    faults: Vec<QueuedFault>,
    seen: Vec<Seen>,
    base: String,
    clock: i64,
}

/// The running fake; stops when dropped.
pub struct FakeGithub {
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A deterministic 40-hex sha for generated objects.
pub fn fake_sha(seed: &str) -> String {
    hex::encode(Sha1::digest(seed.as_bytes()))
}

impl FakeGithub {
    /// Starts the fake on 127.0.0.1 with a free port.
    pub fn start() -> FakeGithub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake github");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(State {
            base: url.clone(),
            clock: 1_500_000_000,
            ..Default::default()
        }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(
                    move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
                        let shared = shared.clone();
                        async move { handle(&shared, &method, &uri, &headers, &body) }
                    },
                );
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        FakeGithub {
            url,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Adds a commit on top of `repo`'s history (creating the repository).
    pub fn add_commit(&self, repo: &str, commit: FakeCommit) -> String {
        let sha = commit.sha.clone();
        self.with(|s| s.repos.entry(repo.into()).or_default().commits.push(commit));
        sha
    }

    /// Adds `n` generated commits, each changing `files_each` files; returns their shas,
    /// oldest first.
    pub fn add_commits(&self, repo: &str, n: usize, files_each: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let (i, date) = self.with(|s| {
                    s.clock += 60;
                    let r = s.repos.entry(repo.into()).or_default();
                    (r.commits.len(), s.clock)
                });
                let date = chrono::DateTime::from_timestamp(date, 0)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let files = (0..files_each)
                    .map(|f| {
                        let status = if f == 0 && i == 0 {
                            "added"
                        } else {
                            "modified"
                        };
                        FakeFile::new(&format!("src/c{i}/f{f}.rs"), status)
                    })
                    .collect();
                self.add_commit(
                    repo,
                    FakeCommit {
                        sha: fake_sha(&format!("{repo}:{i}")),
                        message: format!("Commit {i} of {repo}\n"),
                        author_name: "Jane Doe".into(),
                        author_email: "jane@example.com".into(),
                        date,
                        files,
                    },
                )
            })
            .collect()
    }

    /// Tags `commit` as `name`; `annotated` adds a tag object, as `git tag -a` does.
    pub fn tag(&self, repo: &str, name: &str, commit: &str, annotated: bool) {
        let object = annotated.then(|| fake_sha(&format!("tag:{repo}:{name}")));
        self.with(|s| {
            s.clock += 60;
            let date = chrono::DateTime::from_timestamp(s.clock, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let r = s.repos.entry(repo.into()).or_default();
            r.tags.retain(|t| t.name != name);
            r.tags.push(FakeTag {
                name: name.into(),
                commit: commit.into(),
                object,
                date,
            })
        });
    }

    /// Deletes a tag.
    pub fn untag(&self, repo: &str, name: &str) {
        self.with(|s| {
            if let Some(r) = s.repos.get_mut(repo) {
                r.tags.retain(|t| t.name != name);
            }
        });
    }

    /// The tag object sha of an annotated tag.
    pub fn tag_object(&self, repo: &str, name: &str) -> Option<String> {
        self.with(|s| {
            s.repos
                .get(repo)?
                .tags
                .iter()
                .find(|t| t.name == name)?
                .object
                .clone()
        })
    }

    /// A GitHub release `id` of `tag` with description `body`.
    pub fn add_release(&self, repo: &str, id: i64, tag: &str, body: &str) {
        self.with(|s| {
            s.repos
                .entry(repo.into())
                .or_default()
                .releases
                .insert(id, (tag.into(), body.into()))
        });
    }

    /// A GitHub release's description now.
    pub fn release_body(&self, repo: &str, id: i64) -> Option<String> {
        self.with(|s| Some(s.repos.get(repo)?.releases.get(&id)?.1.clone()))
    }

    /// The next `times` requests whose path contains `path` fail with `fault`.
    pub fn fail(&self, path: &str, times: usize, fault: Fault) {
        self.with(|s| {
            s.faults.push(QueuedFault {
                path: path.into(),
                times,
                fault,
            })
        });
    }

    /// Drops queued faults.
    pub fn clear_faults(&self) {
        self.with(|s| s.faults.clear());
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.with(|s| s.seen.clone())
    }

    /// Requests whose path and query contain `part`.
    pub fn requests_to(&self, part: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|r| r.uri.contains(part))
            .collect()
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn json_response(status: StatusCode, headers: Vec<(String, String)>, body: Value) -> Response {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-github-media-type", "github.v3; format=json")
        .header("x-ratelimit-limit", "5000")
        .header("x-ratelimit-remaining", "4999");
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        vec![],
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}

fn fault_response(fault: &Fault) -> Response {
    match fault {
        Fault::RateLimited { reset_in } => {
            let reset = chrono::Utc::now().timestamp() + reset_in;
            let mut r = json_response(
                StatusCode::FORBIDDEN,
                vec![
                    ("x-ratelimit-used".into(), "5000".into()),
                    ("x-ratelimit-reset".into(), reset.to_string()),
                    ("x-ratelimit-resource".into(), "core".into()),
                ],
                json!({
                    "message": "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    "status": "403"
                }),
            );
            r.headers_mut()
                .insert("x-ratelimit-remaining", "0".parse().unwrap());
            r
        }
        Fault::SecondaryRateLimit { retry_after } => json_response(
            StatusCode::FORBIDDEN,
            vec![("retry-after".into(), retry_after.to_string())],
            json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
                "status": "403"
            }),
        ),
        Fault::Status(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
            json_response(
                status,
                vec![],
                json!({"message": status.canonical_reason().unwrap_or("Server Error"), "status": code.to_string()}),
            )
        }
    }
}

fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(
    shared: &Mutex<State>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut s = shared.lock().unwrap();
    let path_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let fault = s
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && uri.path().contains(&f.path))
        .map(|f| {
            f.times -= 1;
            f.fault.clone()
        });
    let response = match fault {
        Some(f) => fault_response(&f),
        None if method == Method::GET => route(&s, uri),
        None if method == Method::PATCH => patch(&mut s, uri, body),
        None => not_found(),
    };
    s.seen.push(Seen {
        method: method.to_string(),
        uri: path_query,
        authorization,
        status: response.status().as_u16(),
    });
    response
}

fn route(s: &State, uri: &Uri) -> Response {
    let path = decode(uri.path());
    let Some(rest) = path.strip_prefix("/repos/") else {
        return not_found();
    };
    let mut parts = rest.splitn(3, '/');
    let (Some(owner), Some(name)) = (parts.next(), parts.next()) else {
        return not_found();
    };
    let full = format!("{owner}/{name}");
    let tail = parts.next().unwrap_or("");
    let Some(repo) = s.repos.get(&full) else {
        return not_found();
    };
    let q = query(uri);
    let api = format!("{}/repos/{full}", s.base);
    if let Some(basehead) = tail.strip_prefix("compare/") {
        compare(repo, &api, basehead, &q)
    } else if tail == "commits" {
        list_commits(repo, &api, &q)
    } else if let Some(r) = tail.strip_prefix("commits/") {
        get_commit(repo, &api, r, &q)
    } else if tail == "tags" {
        tags(repo, &api, &full, &q)
    } else if let Some(tag) = tail.strip_prefix("git/ref/tags/") {
        git_ref(repo, &api, tag)
    } else if let Some(sha) = tail.strip_prefix("git/tags/") {
        git_tag(repo, &api, sha)
    } else if let Some(id) = tail.strip_prefix("releases/") {
        match id
            .parse::<i64>()
            .ok()
            .and_then(|id| Some((id, repo.releases.get(&id)?)))
        {
            Some((id, (tag, body))) => {
                json_response(StatusCode::OK, vec![], release_json(&api, id, tag, body))
            }
            None => not_found(),
        }
    } else {
        not_found()
    }
}

/// The history index a ref names: a sha (or a 7+ prefix), a tag, or a branch (the tip).
fn resolve(repo: &FakeRepo, r: &str) -> Option<usize> {
    if matches!(r, "main" | "master" | "HEAD") {
        return repo.commits.len().checked_sub(1);
    }
    let r = r.strip_prefix("tags/").unwrap_or(r);
    if let Some(t) = repo.tags.iter().find(|t| t.name == r) {
        return repo.commits.iter().position(|c| c.sha == t.commit);
    }
    if r.len() >= 7 {
        return repo.commits.iter().position(|c| c.sha.starts_with(r));
    }
    None
}

fn commit_json(api: &str, c: &FakeCommit, parent: Option<&FakeCommit>) -> Value {
    let person = json!({"name": c.author_name, "email": c.author_email, "date": c.date});
    json!({
        "sha": c.sha,
        "node_id": format!("C_{}", &c.sha[..10]),
        "commit": {
            "author": person,
            "committer": person,
            "message": c.message,
            "tree": {"sha": fake_sha(&format!("tree:{}", c.sha)), "url": format!("{api}/git/trees/x")},
            "url": format!("{api}/git/commits/{}", c.sha),
            "comment_count": 0,
            "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null}
        },
        "url": format!("{api}/commits/{}", c.sha),
        "html_url": format!("https://github.com/x/commit/{}", c.sha),
        "comments_url": format!("{api}/commits/{}/comments", c.sha),
        "author": null,
        "committer": null,
        "parents": parent.map(|p| vec![json!({"sha": p.sha, "url": format!("{api}/commits/{}", p.sha)})]).unwrap_or_default(),
    })
}

fn file_json(f: &FakeFile) -> Value {
    let mut v = json!({
        "sha": fake_sha(&format!("blob:{}", f.filename)),
        "filename": f.filename,
        "status": f.status,
        "additions": 1,
        "deletions": 0,
        "changes": 1,
        "blob_url": "https://github.com/x/blob/y",
        "raw_url": "https://github.com/x/raw/y",
        "contents_url": "https://api.github.com/x",
        "patch": "@@ -0,0 +1 @@\n+x",
    });
    if let Some(prev) = &f.previous_filename {
        v["previous_filename"] = json!(prev);
    }
    v
}

fn page_params(q: &HashMap<String, String>, default: usize, max: usize) -> (usize, usize) {
    let per_page = q
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max);
    let page = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    (per_page, page)
}

/// GitHub's `Link` header for page `page` of `pages`, on `url` with the other parameters kept.
fn link(url: &str, q: &HashMap<String, String>, page: usize, pages: usize) -> Option<String> {
    if pages <= 1 {
        return None;
    }
    let mut keep: Vec<String> = q
        .iter()
        .filter(|(k, _)| k.as_str() != "page")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    keep.sort();
    let at = |p: usize| {
        let mut params = keep.clone();
        params.push(format!("page={p}"));
        format!("<{url}?{}>", params.join("&"))
    };
    let mut parts = Vec::new();
    if page > 1 {
        parts.push(format!("{}; rel=\"prev\"", at(page - 1)));
    }
    if page < pages {
        parts.push(format!("{}; rel=\"next\"", at(page + 1)));
        parts.push(format!("{}; rel=\"last\"", at(pages)));
    }
    if page > 1 {
        parts.push(format!("{}; rel=\"first\"", at(1)));
    }
    Some(parts.join(", "))
}

fn compare(repo: &FakeRepo, api: &str, basehead: &str, q: &HashMap<String, String>) -> Response {
    let Some((base, head)) = basehead.split_once("...") else {
        return not_found();
    };
    let (Some(b), Some(h)) = (resolve(repo, base), resolve(repo, head)) else {
        return not_found();
    };
    let range: Vec<&FakeCommit> = if h > b {
        repo.commits[b + 1..=h].iter().collect()
    } else {
        Vec::new()
    };
    let total = range.len();
    let paged = q.contains_key("page") || q.contains_key("per_page");
    let (page_commits, page) = if paged {
        let (per_page, page) = page_params(q, 30, 100);
        let start = (page - 1) * per_page;
        (
            range.iter().skip(start).take(per_page).copied().collect(),
            page,
        )
    } else {
        // Unpaged, GitHub returns at most 250 commits.
        (range.iter().take(250).copied().collect::<Vec<_>>(), 1)
    };
    let parent_of = |c: &FakeCommit| {
        let i = repo.commits.iter().position(|x| x.sha == c.sha)?;
        i.checked_sub(1).map(|p| &repo.commits[p])
    };
    let commits: Vec<Value> = page_commits
        .iter()
        .map(|c| commit_json(api, c, parent_of(c)))
        .collect();
    let mut body = json!({
        "url": format!("{api}/compare/{basehead}"),
        "html_url": format!("https://github.com/x/compare/{basehead}"),
        "permalink_url": format!("https://github.com/x/compare/{basehead}"),
        "diff_url": "https://github.com/x.diff",
        "patch_url": "https://github.com/x.patch",
        "base_commit": commit_json(api, &repo.commits[b], None),
        "merge_base_commit": commit_json(api, &repo.commits[b], None),
        "status": if total > 0 { "ahead" } else { "identical" },
        "ahead_by": total,
        "behind_by": 0,
        "total_commits": total,
        "commits": commits,
    });
    if page == 1 {
        let files: Vec<Value> = range
            .iter()
            .flat_map(|c| c.files.iter())
            .take(300)
            .map(file_json)
            .collect();
        body["files"] = json!(files);
    }
    json_response(StatusCode::OK, vec![], body)
}

fn get_commit(repo: &FakeRepo, api: &str, r: &str, q: &HashMap<String, String>) -> Response {
    let Some(i) = resolve(repo, r) else {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![],
            json!({"message": format!("No commit found for SHA: {r}"), "status": "422"}),
        );
    };
    let c = &repo.commits[i];
    let (per_page, page) = page_params(q, 300, 300);
    let capped: Vec<&FakeFile> = c.files.iter().take(3000).collect();
    let pages = capped.len().div_ceil(per_page).max(1);
    let files: Vec<Value> = capped
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|f| file_json(f))
        .collect();
    let mut body = commit_json(api, c, i.checked_sub(1).map(|p| &repo.commits[p]));
    body["stats"] = json!({"total": c.files.len(), "additions": c.files.len(), "deletions": 0});
    body["files"] = json!(files);
    let headers = link(&format!("{api}/commits/{r}"), q, page, pages)
        .map(|l| vec![("link".to_string(), l)])
        .unwrap_or_default();
    json_response(StatusCode::OK, headers, body)
}

fn list_commits(repo: &FakeRepo, api: &str, q: &HashMap<String, String>) -> Response {
    let head = q.get("sha").map(String::as_str).unwrap_or("main");
    let Some(h) = resolve(repo, head) else {
        return not_found();
    };
    let path = q.get("path").cloned();
    let reachable: Vec<(usize, &FakeCommit)> = repo.commits[..=h]
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, c)| match &path {
            Some(p) => c.files.iter().any(|f| {
                f.filename == *p
                    || f.filename
                        .starts_with(&format!("{}/", p.trim_end_matches('/')))
            }),
            None => true,
        })
        .collect();
    let (per_page, page) = page_params(q, 30, 100);
    let pages = reachable.len().div_ceil(per_page).max(1);
    let body: Vec<Value> = reachable
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(i, c)| commit_json(api, c, i.checked_sub(1).map(|p| &repo.commits[p])))
        .collect();
    let headers = link(&format!("{api}/commits"), q, page, pages)
        .map(|l| vec![("link".to_string(), l)])
        .unwrap_or_default();
    json_response(StatusCode::OK, headers, json!(body))
}

fn tags(repo: &FakeRepo, api: &str, full: &str, q: &HashMap<String, String>) -> Response {
    let (per_page, page) = page_params(q, 30, 100);
    let newest_first: Vec<&FakeTag> = repo.tags.iter().rev().collect();
    let pages = newest_first.len().div_ceil(per_page).max(1);
    let body: Vec<Value> = newest_first
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|t| {
            json!({
                "name": t.name,
                "commit": {"sha": t.commit, "url": format!("{api}/commits/{}", t.commit)},
                "zipball_url": format!("https://api.github.com/repos/{full}/zipball/refs/tags/{}", t.name),
                "tarball_url": format!("https://api.github.com/repos/{full}/tarball/refs/tags/{}", t.name),
                "node_id": format!("REF_{}", t.name),
            })
        })
        .collect();
    let headers = link(&format!("{api}/tags"), q, page, pages)
        .map(|l| vec![("link".to_string(), l)])
        .unwrap_or_default();
    json_response(StatusCode::OK, headers, json!(body))
}

fn git_ref(repo: &FakeRepo, api: &str, tag: &str) -> Response {
    let Some(t) = repo.tags.iter().find(|t| t.name == tag) else {
        return not_found();
    };
    let (kind, sha) = match &t.object {
        Some(obj) => ("tag", obj.clone()),
        None => ("commit", t.commit.clone()),
    };
    json_response(
        StatusCode::OK,
        vec![],
        json!({
            "ref": format!("refs/tags/{tag}"),
            "node_id": format!("REF_{tag}"),
            "url": format!("{api}/git/refs/tags/{tag}"),
            "object": {"type": kind, "sha": sha, "url": format!("{api}/git/{kind}s/{sha}")},
        }),
    )
}

fn git_tag(repo: &FakeRepo, api: &str, sha: &str) -> Response {
    let Some(t) = repo.tags.iter().find(|t| t.object.as_deref() == Some(sha)) else {
        return not_found();
    };
    json_response(
        StatusCode::OK,
        vec![],
        json!({
            "node_id": format!("TAG_{}", t.name),
            "tag": t.name,
            "sha": sha,
            "url": format!("{api}/git/tags/{sha}"),
            "message": format!("Release {}\n", t.name),
            "tagger": {"name": "Jane Doe", "email": "jane@example.com", "date": t.date},
            "object": {"type": "commit", "sha": t.commit, "url": format!("{api}/git/commits/{}", t.commit)},
            "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null},
        }),
    )
}

fn release_json(api: &str, id: i64, tag: &str, body: &str) -> Value {
    json!({
        "url": format!("{api}/releases/{id}"),
        "id": id,
        "tag_name": tag,
        "target_commitish": "main",
        "name": tag,
        "draft": false,
        "prerelease": false,
        "body": body,
        "created_at": "2019-05-15T15:19:25Z",
        "published_at": "2019-05-15T15:20:53Z",
        "assets": [],
    })
}

/// `PATCH /repos/{o}/{r}/releases/{id}` with `{"body": ...}`.
fn patch(s: &mut State, uri: &Uri, body: &[u8]) -> Response {
    let path = decode(uri.path());
    let Some(rest) = path.strip_prefix("/repos/") else {
        return not_found();
    };
    let parts: Vec<&str> = rest.splitn(4, '/').collect();
    let (full, id) = match parts.as_slice() {
        [o, r, "releases", id] => (format!("{o}/{r}"), id.parse::<i64>().ok()),
        _ => return not_found(),
    };
    let api = format!("{}/repos/{full}", s.base);
    let Some(release) = id.and_then(|id| {
        s.repos
            .get_mut(&full)?
            .releases
            .get_mut(&id)
            .map(|r| (id, r))
    }) else {
        return not_found();
    };
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            vec![],
            json!({"message": "Problems parsing JSON"}),
        );
    };
    let (id, (tag, text)) = release;
    if let Some(b) = patch["body"].as_str() {
        *text = b.to_string();
    }
    json_response(StatusCode::OK, vec![], release_json(&api, id, tag, text))
}
