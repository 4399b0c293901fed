//! Git events and their handlers: what the hooks, the ref watcher and reconcile report about
//! local repositories, and how the worker applies it.
//!
//! - [`RefUpdated`] (`git.refs`): one ref changed. Its idempotency key is
//!   `repo:ref:old..new`, so the same tag reported by the hook, the watcher and reconcile is
//!   one inbox entry. A tag reported by `pre-push` is a different fact (it was pushed, not
//!   created here) and is keyed `repo:push:ref:new`.
//! - [`CommitsCreated`] (`git.commits`): commits made by `git commit` or rewritten by
//!   `git commit --amend` / `git rebase`, recorded before any release contains them.
//!
//! Events are hints and the repository is the truth: a local ref change is applied only if
//! the ref still points where the event says (a later event, or reconcile, reports where it
//! went instead). The ref snapshot reconcile compares with is written here, after the change
//! is applied, never by the adapters.
//!
//! Which release policies a tag reaches ([`triggers`]): a tag created in a working clone
//! reaches `on: tag` policies; a tag pushed from it (pre-push) reaches `on: push` policies;
//! in a bare repository every tag arrives by push, so it reaches `on: push` policies first
//! and `on: tag` policies after.
//!
//! A tag seen by `pre-push` counts as pushed once every pre-push hook agreed (a user's hook
//! that refuses the push stops ours from recording it). Git has no post-push hook and tags
//! have no remote-tracking refs, so nothing local could confirm the push later; a push that
//! fails after pre-push (network, rejected by the server) still makes the release, which the
//! usual retry of the push would have made anyway. Where the server is a repository shiplog
//! follows, its post-receive hook is the exact signal.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::{Event, Handler, HandlerError, Pipeline, decode};
use crate::config::{Config, ReleaseTrigger};
use crate::core::import::{History, HistoryTag};
use crate::core::tag::{self, CommitSource, TagSeen};
use crate::core::{self, CoreError};
use crate::git::{self, RangeOptions};
use crate::model::commit::CommitData;
use crate::store::refs::{self, SnapshotRef};
use crate::store::{Store, inbox};

/// The prefix of the refs that make releases.
pub const TAGS: &str = "refs/tags/";

/// How a ref change was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefSeen {
    /// The ref changed in the repository itself (reference-transaction, watcher, reconcile).
    Local,
    /// A push into this (usually bare) repository changed it (post-receive).
    Received,
    /// The ref is being pushed from this repository to a remote (pre-push).
    Pushed,
}

/// One ref changed (`git.refs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefUpdated {
    /// The repository's configured name.
    pub repository: String,
    /// The full ref name (`refs/tags/v1.2.0`); for a push, the ref on the remote.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// Where it pointed before (`None`: it did not exist, or git did not say).
    pub old: Option<String>,
    /// Where it points now (`None`: deleted). A tag object for an annotated tag.
    pub new: Option<String>,
    pub seen: RefSeen,
    /// `hook`, `watcher` or `reconcile`, for the logs.
    pub source: String,
}

impl Event for RefUpdated {
    const KIND: &'static str = "git.refs";
    fn idempotency_key(&self) -> String {
        let old = self.old.as_deref().unwrap_or("0");
        let new = self.new.as_deref().unwrap_or("0");
        match self.seen {
            RefSeen::Local | RefSeen::Received => {
                format!("{}:{}:{old}..{new}", self.repository, self.ref_name)
            }
            RefSeen::Pushed => format!("{}:push:{}:{new}", self.repository, self.ref_name),
        }
    }
}

impl RefUpdated {
    /// The prefix of every local-change key of this ref, forgotten when the ref is deleted
    /// so that re-creating it on the same commit is a new event.
    fn key_prefix(repository: &str, ref_name: &str) -> String {
        format!("{}:{repository}:{ref_name}:", Self::KIND)
    }
}

/// Commits created or rewritten (`git.commits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitsCreated {
    pub repository: String,
    /// Full shas, or `HEAD` when the hook could not read the sha (resolved when applied).
    pub commits: Vec<String>,
    /// Makes an event naming `HEAD` unique (the spool file's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

impl Event for CommitsCreated {
    const KIND: &'static str = "git.commits";
    fn idempotency_key(&self) -> String {
        let joined = self.commits.join(",");
        let mut key = if self.commits.len() == 1 {
            format!("{}:{joined}", self.repository)
        } else {
            let digest = hex::encode(Sha1::digest(joined.as_bytes()));
            format!(
                "{}:{}x{}",
                self.repository,
                self.commits.len(),
                &digest[..16]
            )
        };
        if self.commits.iter().any(|c| c == "HEAD")
            && let Some(nonce) = &self.nonce
        {
            key.push(':');
            key.push_str(nonce);
        }
        key
    }
}

/// The policies' triggers a ref change reaches, in order of preference.
pub fn triggers(seen: RefSeen, bare: bool) -> &'static [ReleaseTrigger] {
    match (seen, bare) {
        (RefSeen::Pushed, _) => &[ReleaseTrigger::Push],
        (_, true) | (RefSeen::Received, _) => &[ReleaseTrigger::Push, ReleaseTrigger::Tag],
        (RefSeen::Local, false) => &[ReleaseTrigger::Tag],
    }
}

/// Commits from a local repository through git2, on the blocking pool.
#[derive(Debug, Clone)]
pub struct LocalCommits {
    pub path: PathBuf,
}

fn git_error(e: git::GitError) -> HandlerError {
    match e {
        // A sha the repository does not have will not appear by waiting.
        git::GitError::UnknownRevision { .. } | git::GitError::NotARepository { .. } => {
            HandlerError::Permanent(e.to_string())
        }
        other => HandlerError::Retry(other.to_string()),
    }
}

fn join_error(e: tokio::task::JoinError) -> HandlerError {
    HandlerError::Retry(format!("git task failed: {e}"))
}

impl CommitSource for LocalCommits {
    fn range(
        &self,
        from: Option<&str>,
        to: &str,
        opts: &RangeOptions,
    ) -> BoxFuture<'_, Result<Vec<CommitData>, HandlerError>> {
        let path = self.path.clone();
        let (from, to, opts) = (from.map(str::to_owned), to.to_owned(), opts.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let repo = git::open(&path)?;
                git::collect_range(&repo, from.as_deref(), &to, &opts)
            })
            .await
            .map_err(join_error)?
            .map_err(git_error)
        })
    }
}

impl History for LocalCommits {
    fn tags(&self) -> BoxFuture<'_, Result<Vec<HistoryTag>, HandlerError>> {
        let path = self.path.clone();
        Box::pin(async move {
            let tags = tokio::task::spawn_blocking(move || git::tags(&git::open(&path)?))
                .await
                .map_err(join_error)?
                .map_err(git_error)?;
            Ok(tags
                .into_iter()
                .map(|t| HistoryTag {
                    name: t.name,
                    commit: t.commit,
                    date: Some(t.date),
                })
                .collect())
        })
    }

    fn tag_date<'a>(&'a self, tag: &'a HistoryTag) -> BoxFuture<'a, Result<String, HandlerError>> {
        // Local tags are listed with their dates.
        Box::pin(async move { Ok(tag.date.clone().unwrap_or_else(core::now)) })
    }
}

/// What the repository says about a ref right now.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RefNow {
    bare: bool,
    /// The ref's current target, `None` if it does not exist.
    current: Option<String>,
    /// What the event's `new` peels to: `Some(None)` when it is not a commit, `None` when the
    /// object is not in the repository.
    peeled: Option<Option<String>>,
}

fn inspect(path: &Path, ref_name: &str, new: Option<&str>) -> Result<RefNow, git::GitError> {
    let repo = git::open(path)?;
    let current = match repo.find_reference(ref_name) {
        Ok(r) => r.target().map(|oid| oid.to_string()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let peeled = match new.map(git2::Oid::from_str) {
        Some(Ok(oid)) => match repo.find_object(oid, None) {
            Ok(obj) => Some(obj.peel_to_commit().ok().map(|c| c.id().to_string())),
            Err(_) => None,
        },
        _ => None,
    };
    Ok(RefNow {
        bare: repo.is_bare(),
        current,
        peeled,
    })
}

/// Applies `git.refs` events.
pub struct RefsHandler {
    pub store: Store,
    pub config: Arc<Config>,
}

impl Handler for RefsHandler {
    fn handle<'a>(&'a self, entry: &'a inbox::Entry) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let event: RefUpdated = decode(entry)?;
            self.apply(event).await
        })
    }
}

impl RefsHandler {
    async fn apply(&self, ev: RefUpdated) -> Result<(), HandlerError> {
        let Some(repo) = self.config.repository(&ev.repository) else {
            tracing::info!(repository = %ev.repository, "ref change of a repository that is no longer configured; ignored");
            return Ok(());
        };
        let Some(path) = repo.path.clone() else {
            return Ok(());
        };
        let now = {
            let (path, name, new) = (path.clone(), ev.ref_name.clone(), ev.new.clone());
            tokio::task::spawn_blocking(move || inspect(&path, &name, new.as_deref()))
                .await
                .map_err(join_error)?
                .map_err(git_error)?
        };
        let local = ev.seen != RefSeen::Pushed;
        if local && now.current != ev.new {
            // Stale: the ref moved on (or came back) since; the event for where it is now
            // is applied on its own.
            tracing::debug!(repository = %ev.repository, r#ref = %ev.ref_name, "stale ref event skipped");
            return Ok(());
        }
        let Some(new) = ev.new.clone() else {
            return self.deleted(&ev).await;
        };
        let peeled = match now.peeled {
            Some(p) => p,
            None if local => {
                return Err(HandlerError::Permanent(format!(
                    "{} of {} points at {new}, which the repository does not have",
                    ev.ref_name, ev.repository
                )));
            }
            // A pushed ref named by something we cannot see locally: nothing to do.
            None => return Ok(()),
        };
        if let (Some(tag), Some(commit)) = (ev.ref_name.strip_prefix(TAGS), &peeled) {
            let source = LocalCommits { path };
            for trigger in triggers(ev.seen, now.bare) {
                let seen = TagSeen {
                    repository: ev.repository.clone(),
                    tag: tag.to_owned(),
                    target: commit.clone(),
                    trigger: *trigger,
                    date: None,
                };
                if let Some(release) =
                    tag::release_for_tag(&self.store, &self.config, &seen, &source).await?
                {
                    tracing::info!(
                        repository = %ev.repository,
                        tag,
                        release = %release.version,
                        commits = release.commit_count,
                        via = %ev.source,
                        "release from tag"
                    );
                    break;
                }
            }
        }
        if local {
            self.snapshot(
                &ev.repository,
                &ev.ref_name,
                Some(SnapshotRef {
                    target: new,
                    peeled,
                }),
            )
            .await?;
        }
        Ok(())
    }

    /// A deleted tag leaves its release alone; the snapshot forgets it.
    async fn deleted(&self, ev: &RefUpdated) -> Result<(), HandlerError> {
        if ev.seen == RefSeen::Pushed {
            return Ok(());
        }
        let known = self.snapshot(&ev.repository, &ev.ref_name, None).await?;
        if let Some(old) = known
            && ev.ref_name.starts_with(TAGS)
        {
            tracing::info!(
                repository = %ev.repository,
                r#ref = %ev.ref_name,
                was = old.peeled.as_deref().unwrap_or(&old.target),
                "tag deleted; its release (if any) is kept"
            );
        }
        Ok(())
    }

    /// Writes (or, with `None`, removes) a ref in the snapshot; returns what was there.
    async fn snapshot(
        &self,
        repository: &str,
        ref_name: &str,
        value: Option<SnapshotRef>,
    ) -> Result<Option<SnapshotRef>, HandlerError> {
        let (org_slug, repository, ref_name) = (
            self.config.organization.clone(),
            repository.to_owned(),
            ref_name.to_owned(),
        );
        Ok(self
            .store
            .write(move |tx| -> Result<Option<SnapshotRef>, CoreError> {
                let org = core::org::org(tx, &org_slug)?;
                let Some(repo) = core::repo::by_name(tx, org.id, &repository)? else {
                    return Ok(None);
                };
                let old = refs::snapshot_ref(tx, repo.id, &ref_name)?;
                match &value {
                    Some(v) => refs::put_ref(tx, repo.id, &ref_name, v, &core::now())?,
                    None => {
                        refs::delete_ref(tx, repo.id, &ref_name)?;
                        inbox::forget_processed(
                            tx,
                            &RefUpdated::key_prefix(&repository, &ref_name),
                        )?;
                    }
                }
                Ok(old)
            })
            .await?)
    }
}

/// Applies `git.commits` events: records the commits (with their file changes) so they and
/// the issues they fix are known before a release contains them.
pub struct CommitsHandler {
    pub store: Store,
    pub config: Arc<Config>,
}

impl Handler for CommitsHandler {
    fn handle<'a>(&'a self, entry: &'a inbox::Entry) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let ev: CommitsCreated = decode(entry)?;
            let Some(path) = self
                .config
                .repository(&ev.repository)
                .and_then(|r| r.path.clone())
            else {
                return Ok(());
            };
            let shas = ev.commits.clone();
            let commits = tokio::task::spawn_blocking(move || -> Result<_, git::GitError> {
                let repo = git::open(&path)?;
                let one = RangeOptions {
                    paths: Vec::new(),
                    initial_depth: 1,
                };
                let mut out = Vec::new();
                for sha in &shas {
                    // A commit rewritten again (or garbage-collected) since is simply gone.
                    let Ok(full) = git::resolve_commit(&repo, sha) else {
                        continue;
                    };
                    out.extend(git::collect_range(&repo, None, &full, &one)?);
                }
                Ok(out)
            })
            .await
            .map_err(join_error)?
            .map_err(git_error)?;
            if commits.is_empty() {
                return Ok(());
            }
            let (org_slug, name) = (self.config.organization.clone(), ev.repository.clone());
            self.store
                .write(move |tx| -> Result<(), CoreError> {
                    let org = core::org::org(tx, &org_slug)?;
                    let Some(repo) = core::repo::by_name(tx, org.id, &name)? else {
                        return Ok(());
                    };
                    let ids = core::commit::record_commits(tx, &org, &repo, &commits)?;
                    // `Fixes PROJ-1` is linked as soon as the commit is known; it resolves only
                    // once a release ships the commit.
                    core::issue::link_commits(tx, &org, &ids)?;
                    Ok(())
                })
                .await?;
            Ok(())
        })
    }
}

/// Registers the git handlers on the pipeline.
pub fn register(pipeline: &Pipeline, config: Arc<Config>) {
    let store = pipeline.store().clone();
    pipeline.register(
        RefUpdated::KIND,
        Arc::new(RefsHandler {
            store: store.clone(),
            config: config.clone(),
        }),
    );
    pipeline.register(
        CommitsCreated::KIND,
        Arc::new(CommitsHandler { store, config }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seen: RefSeen, old: Option<&str>, new: Option<&str>) -> RefUpdated {
        RefUpdated {
            repository: "acme/web".into(),
            ref_name: "refs/tags/v1".into(),
            old: old.map(Into::into),
            new: new.map(Into::into),
            seen,
            source: "hook".into(),
        }
    }

    #[test]
    fn the_same_change_has_the_same_key_whoever_saw_it() {
        let hook = ev(RefSeen::Local, None, Some("aa"));
        let mut watcher = hook.clone();
        watcher.source = "watcher".into();
        assert_eq!(hook.idempotency_key(), watcher.idempotency_key());
        assert_eq!(hook.idempotency_key(), "acme/web:refs/tags/v1:0..aa");
        let received = ev(RefSeen::Received, None, Some("aa"));
        assert_eq!(hook.idempotency_key(), received.idempotency_key());
        let pushed = ev(RefSeen::Pushed, Some("bb"), Some("aa"));
        assert_eq!(pushed.idempotency_key(), "acme/web:push:refs/tags/v1:aa");
        assert!(
            format!("{}:{}", RefUpdated::KIND, hook.idempotency_key())
                .starts_with(&RefUpdated::key_prefix("acme/web", "refs/tags/v1"))
        );
    }

    #[test]
    fn bare_repositories_take_push_policies_first() {
        assert_eq!(triggers(RefSeen::Local, false), &[ReleaseTrigger::Tag]);
        assert_eq!(triggers(RefSeen::Pushed, false), &[ReleaseTrigger::Push]);
        assert_eq!(
            triggers(RefSeen::Received, true),
            &[ReleaseTrigger::Push, ReleaseTrigger::Tag]
        );
    }

    #[test]
    fn commit_keys_are_short_and_head_is_unique() {
        let one = CommitsCreated {
            repository: "a/b".into(),
            commits: vec!["aa".into()],
            nonce: Some("f1".into()),
        };
        assert_eq!(one.idempotency_key(), "a/b:aa");
        let head = CommitsCreated {
            commits: vec!["HEAD".into()],
            ..one.clone()
        };
        assert_eq!(head.idempotency_key(), "a/b:HEAD:f1");
        let many = CommitsCreated {
            commits: (0..50).map(|i| format!("{i:040}")).collect(),
            ..one
        };
        assert!(many.idempotency_key().len() < 40);
    }
}
