//! Local repositories: the spool their hooks write, their tags, and reconcile.
//!
//! Three adapters feed the pipeline with what happens in a configured repository with a
//! `path`, all through [`RepoSync`]:
//!
//! - **the spool** ([`RepoSync::drain_spool`]): files the git hooks wrote, turned into events
//!   and deleted once the inbox holds them;
//! - **the ref watcher** ([`RepoWatcher`]): notify, debounced, on the spool dir, `refs/tags/`
//!   (recursively) and `packed-refs` of each repository's common dir. Any change there makes
//!   the repository's tags be listed again and compared with the stored snapshot
//!   ([`RepoSync::sync_refs`]), so packing refs, a tag made by any tool, or a hook that is not
//!   installed all end up the same way;
//! - **reconcile** ([`LocalReconciler`]): the same two steps for every repository, at start
//!   and on the cron schedule.
//!
//! The first time shiplog lists a repository's tags it records them as the baseline without
//! making releases (a repository registered with years of tags does not get years of
//! releases, unless it says `import_tags: true`: then an import of them is queued first);
//! every tag that appears after that -- also while the daemon is stopped -- becomes an event.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use notify_debouncer_full::notify::{self, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::spool::{self, Parsed};
use crate::config::Config;
use crate::core::{self, CoreError};
use crate::git;
use crate::hooks::SPOOL_DIR;
use crate::pipeline::git::{RefSeen, RefUpdated};
use crate::pipeline::import::ImportRequested;
use crate::pipeline::{Event, Pipeline, Submitted};
use crate::schedule::{ReconcileJob, Reconciler};
use crate::store::refs::{self, SnapshotRef};

/// How long the watcher waits for a burst of file events to settle.
pub const DEBOUNCE: Duration = Duration::from_millis(25);

/// A configured repository with a local path, opened once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRepo {
    /// The configured name (`owner/repo`).
    pub name: String,
    pub path: PathBuf,
    /// The git common dir: the main `.git` of a working clone, or the bare repository.
    pub common_dir: PathBuf,
    pub bare: bool,
}

impl LocalRepo {
    pub fn spool_dir(&self) -> PathBuf {
        self.common_dir.join(SPOOL_DIR)
    }

    fn tags_dir(&self) -> PathBuf {
        self.common_dir.join("refs").join("tags")
    }

    fn packed_refs(&self) -> PathBuf {
        self.common_dir.join("packed-refs")
    }
}

/// A configured repository path that is not a repository.
#[derive(Debug, thiserror::Error)]
#[error(
    "{origin}: repositories[{index}].path: {path} is not a git repository ({reason}); point it at a working clone or a bare repository, or remove the repository"
)]
pub struct BadRepository {
    pub origin: String,
    pub index: usize,
    pub path: PathBuf,
    pub reason: String,
}

/// Opens every configured repository that has a path. Blocking (git2); the daemon calls it
/// before touching the store, so a wrong path stops it with one line and nothing written.
pub fn open_all(config: &Config) -> Result<Vec<LocalRepo>, BadRepository> {
    let mut out = Vec::new();
    for (index, repo) in config.repositories.iter().enumerate() {
        let Some(path) = &repo.path else { continue };
        let bad = |reason: String| BadRepository {
            origin: config.provenance.file.clone(),
            index,
            path: path.clone(),
            reason,
        };
        let opened = git::open(path).map_err(|e| {
            bad(match e {
                git::GitError::NotARepository { reason, .. } => reason,
                other => other.to_string(),
            })
        })?;
        out.push(LocalRepo {
            name: repo.name.clone(),
            path: path.clone(),
            common_dir: opened.commondir().to_path_buf(),
            bare: opened.is_bare(),
        });
    }
    Ok(out)
}

/// Lists a repository's tags: full name → target (and the commit it peels to), oldest
/// commit first (then by name), the order in which tags made while nobody looked are best
/// applied: each release then finds its predecessor already there.
pub fn list_tags(path: &Path) -> Result<Vec<(String, SnapshotRef)>, git::GitError> {
    let repo = git::open(path)?;
    let mut out = Vec::new();
    for reference in repo.references_glob("refs/tags/*")? {
        let reference = reference?;
        let (Ok(name), Some(target)) = (reference.name(), reference.target()) else {
            continue;
        };
        if !name.starts_with("refs/tags/") {
            continue;
        }
        let commit = reference.peel_to_commit().ok();
        let time = commit.as_ref().map_or(i64::MAX, |c| c.time().seconds());
        let peeled = commit.map(|c| c.id().to_string());
        out.push((
            time,
            name.to_owned(),
            SnapshotRef {
                target: target.to_string(),
                peeled,
            },
        ));
    }
    out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(out.into_iter().map(|(_, name, r)| (name, r)).collect())
}

/// One difference between the snapshot and the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub ref_name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// What changed between `stored` and `current`: new and moved refs in `current`'s order,
/// then deleted ones by name.
pub fn diff(
    stored: &HashMap<String, SnapshotRef>,
    current: &[(String, SnapshotRef)],
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (name, now) in current {
        let old = stored.get(name);
        if old.map(|o| &o.target) != Some(&now.target) {
            changes.push(Change {
                ref_name: name.clone(),
                old: old.map(|o| o.target.clone()),
                new: Some(now.target.clone()),
            });
        }
    }
    let present: std::collections::HashSet<&str> =
        current.iter().map(|(n, _)| n.as_str()).collect();
    let mut deleted: Vec<Change> = stored
        .iter()
        .filter(|(name, _)| !present.contains(name.as_str()))
        .map(|(name, old)| Change {
            ref_name: name.clone(),
            old: Some(old.target.clone()),
            new: None,
        })
        .collect();
    deleted.sort_by(|a, b| a.ref_name.cmp(&b.ref_name));
    changes.extend(deleted);
    changes
}

/// Feeds the pipeline from local repositories.
#[derive(Clone)]
pub struct RepoSync {
    pub pipeline: Pipeline,
    pub config: Arc<Config>,
}

/// What reading a spool dir did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Files turned into events and deleted.
    pub files: usize,
    /// Events the inbox did not have yet.
    pub new_events: usize,
}

fn task_error(e: tokio::task::JoinError) -> String {
    format!("task failed: {e}")
}

impl RepoSync {
    /// Turns every complete spool file of `repo` into events, oldest first, and deletes each
    /// file once the inbox holds its events.
    pub async fn drain_spool(&self, repo: &LocalRepo) -> Result<Drained, String> {
        let dir = repo.spool_dir();
        let files = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut out = Vec::new();
            for file in spool::pending(&dir)? {
                // A file deleted meanwhile (drained by another pass) is simply gone.
                if let Ok(text) = std::fs::read_to_string(&file.path) {
                    out.push((file, text));
                }
            }
            Ok(out)
        })
        .await
        .map_err(task_error)?
        .map_err(|e| format!("cannot read {}: {e}", repo.spool_dir().display()))?;

        let mut drained = Drained::default();
        for (file, text) in files {
            let record = match spool::parse(&text) {
                Parsed::Complete(r) => r,
                Parsed::Incomplete => {
                    let age = file.modified.elapsed().unwrap_or_default();
                    if age > spool::STALE_AFTER {
                        tracing::warn!(file = %file.path.display(), "spool file never completed; set aside");
                        spool::set_aside(&file);
                    }
                    continue;
                }
                Parsed::Malformed(why) => {
                    tracing::warn!(file = %file.path.display(), %why, "unreadable spool file; set aside");
                    spool::set_aside(&file);
                    continue;
                }
            };
            let events = match spool::events(&repo.name, &file.name, &record) {
                Ok(e) => e,
                Err(why) => {
                    tracing::warn!(file = %file.path.display(), %why, "unusable spool file; set aside");
                    spool::set_aside(&file);
                    continue;
                }
            };
            for event in &events.refs {
                drained.new_events += self.submit("hook", event).await?;
            }
            if let Some(commits) = &events.commits {
                drained.new_events += self.submit("hook", commits).await?;
            }
            match std::fs::remove_file(&file.path) {
                Ok(()) => drained.files += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot delete {}: {e}", file.path.display())),
            }
        }
        Ok(drained)
    }

    async fn submit<E: Event>(&self, source: &str, event: &E) -> Result<usize, String> {
        match self.pipeline.submit(source, event).await {
            Ok(Submitted::New(_)) => Ok(1),
            Ok(Submitted::Duplicate) => Ok(0),
            Err(e) => Err(format!("cannot queue a {} event: {e}", E::KIND)),
        }
    }

    /// Records the repository's tags as its baseline if shiplog never listed them before.
    /// The daemon does this before it reports ready, so every tag made after `/healthz`
    /// answers becomes a release.
    pub async fn ensure_baseline(&self, repo: &LocalRepo) -> Result<(), String> {
        let (org_slug, name) = (self.config.organization.clone(), repo.name.clone());
        let taken = self
            .pipeline
            .store()
            .read(move |conn| -> Result<_, CoreError> {
                let org = core::org::org(conn, &org_slug)?;
                Ok(match core::repo::by_name(conn, org.id, &name)? {
                    Some(row) => refs::baseline_taken(conn, row.id)?.is_some(),
                    None => false,
                })
            })
            .await
            .map_err(|e| e.to_string())?;
        if !taken {
            self.sync_refs(repo, "start").await?;
        }
        Ok(())
    }

    /// Lists the repository's tags, compares them with the snapshot and submits every
    /// difference; the first listing only records the baseline. Returns the number of
    /// events the inbox did not have yet.
    pub async fn sync_refs(&self, repo: &LocalRepo, source: &str) -> Result<usize, String> {
        let path = repo.path.clone();
        let current = tokio::task::spawn_blocking(move || list_tags(&path))
            .await
            .map_err(task_error)?
            .map_err(|e| e.to_string())?;
        let (org_slug, name) = (self.config.organization.clone(), repo.name.clone());
        let stored = self
            .pipeline
            .store()
            .read(move |conn| -> Result<_, CoreError> {
                let org = core::org::org(conn, &org_slug)?;
                let Some(row) = core::repo::by_name(conn, org.id, &name)? else {
                    return Ok(None);
                };
                let baseline = refs::baseline_taken(conn, row.id)?;
                let snapshot = refs::snapshot(conn, row.id)?;
                Ok(Some((row.id, baseline, snapshot)))
            })
            .await
            .map_err(|e| e.to_string())?;
        let Some((repo_id, baseline, stored)) = stored else {
            return Err(format!("repository {} is not in the store", repo.name));
        };
        if baseline.is_none() {
            // Queued before the baseline is written: a crash in between queues it again (the
            // same key), never loses it.
            if self
                .config
                .repository(&repo.name)
                .is_some_and(|r| r.import_tags)
            {
                self.submit(source, &ImportRequested::first_sight(&repo.name))
                    .await?;
            }
            let count = current.len();
            let taken = self
                .pipeline
                .store()
                .write(move |tx| refs::take_baseline(tx, repo_id, &current, &core::now()))
                .await
                .map_err(|e| e.to_string())?;
            if taken {
                tracing::info!(
                    repository = %repo.name,
                    tags = count,
                    "first look at this repository: its existing tags are the baseline; tags made from now on become releases"
                );
            }
            return Ok(0);
        }
        let mut new_events = 0;
        for change in diff(&stored, &current) {
            let event = RefUpdated {
                repository: repo.name.clone(),
                ref_name: change.ref_name,
                old: change.old,
                new: change.new,
                seen: RefSeen::Local,
                source: source.to_owned(),
            };
            new_events += self.submit(source, &event).await?;
        }
        if source == "reconcile" {
            self.pipeline
                .store()
                .write(move |tx| refs::mark_reconciled(tx, repo_id, &core::now()))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(new_events)
    }
}

/// Reconcile for local repositories: drain each spool, then compare each repository's tags
/// with the snapshot.
pub struct LocalReconciler {
    pub sync: RepoSync,
    pub repos: Arc<Vec<LocalRepo>>,
}

impl Reconciler for LocalReconciler {
    fn name(&self) -> &str {
        "git"
    }

    fn reconcile(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let mut files = 0;
            let mut events = 0;
            let mut errors = Vec::new();
            for repo in self.repos.iter() {
                match self.sync.drain_spool(repo).await {
                    Ok(d) => {
                        files += d.files;
                        events += d.new_events;
                    }
                    Err(e) => errors.push(format!("{}: {e}", repo.name)),
                }
                match self.sync.sync_refs(repo, "reconcile").await {
                    Ok(n) => events += n,
                    Err(e) => errors.push(format!("{}: {e}", repo.name)),
                }
            }
            if !errors.is_empty() {
                return Err(errors.join("; "));
            }
            Ok(format!(
                "{} repositories, {files} spool files, {events} new events",
                self.repos.len()
            ))
        })
    }
}

/// Starts following the local repositories, in the order that loses nothing: the file
/// watches are set up first (their events wait), every repository seen for the first time
/// gets its baseline (before this returns, so before the daemon reports ready), then a task
/// runs the start-up reconcile (every reconciler of `reconcile`) and after it reports what
/// the watches saw until `stop`. A repository whose tags cannot be listed is an error; a
/// watch that cannot be set up (inotify limits) is logged and left to scheduled reconcile.
pub async fn start(
    sync: RepoSync,
    repos: Arc<Vec<LocalRepo>>,
    reconcile: ReconcileJob,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, String> {
    let watcher = match RepoWatcher::start(repos.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "repositories are not watched; changes are found by the scheduled reconcile");
            None
        }
    };
    for repo in repos.iter() {
        sync.ensure_baseline(repo)
            .await
            .map_err(|e| format!("cannot list the tags of {}: {e}", repo.name))?;
    }
    Ok(tokio::spawn(async move {
        tokio::select! {
            outcome = reconcile.run_all() => match outcome {
                Ok(summary) => tracing::info!("start-up {summary}"),
                Err(e) => tracing::warn!(error = %e, "start-up reconcile failed"),
            },
            _ = stop.changed() => return,
        }
        if let Some(watcher) = watcher {
            watcher.run(sync, stop).await;
        }
    }))
}

/// What a changed path means for a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Touched {
    Spool,
    Refs,
}

fn classify(repos: &[LocalRepo], path: &Path) -> Option<(usize, Touched)> {
    repos.iter().enumerate().find_map(|(i, r)| {
        if path.starts_with(r.spool_dir()) {
            Some((i, Touched::Spool))
        } else if path.starts_with(r.tags_dir()) || path == r.packed_refs() {
            Some((i, Touched::Refs))
        } else {
            None
        }
    })
}

/// The file watches of every local repository. Created before the start-up reconcile so
/// that nothing happening during it is missed; [`RepoWatcher::run`] then reports.
pub struct RepoWatcher {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    events: mpsc::UnboundedReceiver<DebounceEventResult>,
    repos: Arc<Vec<LocalRepo>>,
}

/// Why the watches could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {path}: {source}")]
pub struct WatchError {
    pub path: PathBuf,
    pub source: notify::Error,
}

impl RepoWatcher {
    /// Watches each repository's spool dir (created if missing), `refs/tags/` and common dir
    /// (for `packed-refs`).
    pub fn start(repos: Arc<Vec<LocalRepo>>) -> Result<RepoWatcher, WatchError> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            let _ = tx.send(result);
        })
        .map_err(|source| WatchError {
            path: PathBuf::new(),
            source,
        })?;
        for repo in repos.iter() {
            let spool = repo.spool_dir();
            let tags = repo.tags_dir();
            for dir in [&spool, &tags] {
                if let Err(e) = std::fs::create_dir_all(dir) {
                    return Err(WatchError {
                        path: dir.clone(),
                        source: notify::Error::io(e),
                    });
                }
            }
            for (path, mode) in [
                (&spool, RecursiveMode::NonRecursive),
                (&tags, RecursiveMode::Recursive),
                (&repo.common_dir, RecursiveMode::NonRecursive),
            ] {
                debouncer.watch(path, mode).map_err(|source| WatchError {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        Ok(RepoWatcher {
            debouncer,
            events,
            repos,
        })
    }

    /// Reports changes until `stop` turns true.
    pub async fn run(mut self, sync: RepoSync, mut stop: watch::Receiver<bool>) {
        loop {
            let first = tokio::select! {
                batch = self.events.recv() => match batch {
                    Some(b) => b,
                    None => return,
                },
                _ = stop.changed() => break,
            };
            let mut touched: Vec<(usize, Touched)> = Vec::new();
            let mut overflow = false;
            let mut batch = Some(first);
            while let Some(result) = batch.take() {
                match result {
                    Ok(events) => {
                        for event in events {
                            for path in &event.paths {
                                if let Some(t) = classify(&self.repos, path)
                                    && !touched.contains(&t)
                                {
                                    touched.push(t);
                                }
                            }
                        }
                    }
                    Err(errors) => {
                        for e in errors {
                            tracing::warn!(error = %e, "file watch error; re-reading every repository");
                        }
                        overflow = true;
                    }
                }
                batch = self.events.try_recv().ok();
            }
            if overflow {
                touched = (0..self.repos.len())
                    .flat_map(|i| [(i, Touched::Spool), (i, Touched::Refs)])
                    .collect();
            }
            touched.sort_by_key(|(i, t)| (*i, *t == Touched::Refs));
            for (i, what) in touched {
                let repo = &self.repos[i];
                let result = match what {
                    Touched::Spool => sync.drain_spool(repo).await.map(|d| d.new_events),
                    Touched::Refs => sync.sync_refs(repo, "watcher").await,
                };
                if let Err(e) = result {
                    tracing::warn!(repository = %repo.name, error = %e, "watcher could not report a change; reconcile will");
                }
            }
        }
        self.debouncer.stop_nonblocking();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str) -> SnapshotRef {
        SnapshotRef {
            target: t.into(),
            peeled: None,
        }
    }

    #[test]
    fn diff_finds_new_moved_and_deleted_refs() {
        let stored: HashMap<String, SnapshotRef> = [
            ("refs/tags/a".to_string(), r("1")),
            ("refs/tags/b".to_string(), r("2")),
            ("refs/tags/c".to_string(), r("3")),
        ]
        .into();
        let current = vec![
            ("refs/tags/a".to_string(), r("1")),
            ("refs/tags/b".to_string(), r("9")),
            ("refs/tags/d".to_string(), r("4")),
        ];
        let d = diff(&stored, &current);
        assert_eq!(
            d,
            vec![
                Change {
                    ref_name: "refs/tags/b".into(),
                    old: Some("2".into()),
                    new: Some("9".into())
                },
                Change {
                    ref_name: "refs/tags/d".into(),
                    old: None,
                    new: Some("4".into())
                },
                Change {
                    ref_name: "refs/tags/c".into(),
                    old: Some("3".into()),
                    new: None
                },
            ]
        );
    }

    #[test]
    fn paths_are_classified_per_repository() {
        let repos = vec![LocalRepo {
            name: "a/b".into(),
            path: "/r".into(),
            common_dir: "/r/.git".into(),
            bare: false,
        }];
        assert_eq!(
            classify(&repos, Path::new("/r/.git/shiplog/spool/post-commit.1.1")),
            Some((0, Touched::Spool))
        );
        assert_eq!(
            classify(&repos, Path::new("/r/.git/refs/tags/rel/v1")),
            Some((0, Touched::Refs))
        );
        assert_eq!(
            classify(&repos, Path::new("/r/.git/packed-refs")),
            Some((0, Touched::Refs))
        );
        assert_eq!(classify(&repos, Path::new("/r/.git/index.lock")), None);
    }
}
