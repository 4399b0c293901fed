//! The CI drop folder: bundles written into `artifacts.drop_dirs` become pipeline events.
//!
//! A **drop** is an entry at the top of a drop dir:
//! - a zip file (`*.zip`, plain or behind sentry-cli's `SYSB` header) with a `manifest.json`;
//! - or a directory holding `manifest.json` and the files it lists (`files/...`).
//!
//! A drop is only read once it is written completely — never half a file:
//! - names that are still being written are ignored: dotfiles, `*.tmp`, `*.part` (write there,
//!   then rename into place);
//! - a zip counts once it is stable (same size and mtime for [`SETTLE`]) *and* opens as a zip
//!   with a manifest: a zip's central directory is written last, so a zip still being written
//!   in place does not open yet and is waited for;
//! - a directory counts once its `manifest.json` exists (CI writes it last), is stable and
//!   parses.
//!
//! Ingesting a drop is the "upload" half: its bytes are streamed into the blob store (a
//! directory is first packed into a zip in the data dir's `tmp/`), and a [`DropEvent`] naming
//! the chunks is submitted to the pipeline with the content checksum as idempotency key, so
//! the same bytes seen twice (a second notify event, a rescan at start-up) are one event. The
//! [`DropHandler`] is the "assemble" half (`core::artifact::assemble`, all in one transaction),
//! after which the drop is removed or moved to `done/` (`artifacts.after_success`). A drop that
//! cannot be stored goes to `failed/` beside a `<name>.error` file saying why (bad manifest,
//! organization mismatch, unknown release, checksum mismatch, path outside the bundle, ...).
//!
//! Drops already present at start-up are picked up by a scan. A daemon killed mid-assemble
//! has committed nothing of it; its event is still pending in the inbox and is applied again
//! after the restart, while the drop is still in place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use notify::{RecursiveMode, Watcher};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::{AfterSuccess, Config};
use crate::core::artifact::{self, AssembleError, AssembleRequest, Settings, StoredAs, Verified};
use crate::model::manifest;
use crate::pipeline::{self, Event, Handler, HandlerError, Pipeline, Submitted};
use crate::store::artifacts as rows;
use crate::store::blobs::ChunkSink;
use crate::store::{Store, StoreError, inbox};

/// Where processed drops go with `after_success: move_to_done`.
pub const DONE_DIR: &str = "done";
/// Where refused drops go, each with a `<name>.error` file.
pub const FAILED_DIR: &str = "failed";
/// How long a drop must stay unchanged before it is read.
pub const SETTLE: Duration = Duration::from_millis(300);
/// How long an unchanged drop that does not open (not a zip, no readable manifest) is waited
/// for before it is refused: long enough for a writer that pauses, short enough to report.
pub const INVALID_GRACE: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(100);

/// What identifies one version of a drop on disk: the size and mtime of the zip, or of a
/// directory's `manifest.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub len: u64,
    pub mtime_ns: i128,
}

fn fingerprint_of(path: &Path) -> Option<Fingerprint> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let target = if meta.is_dir() {
        std::fs::symlink_metadata(path.join(manifest::MANIFEST_PATH)).ok()?
    } else {
        meta
    };
    let mtime_ns = target
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    Some(Fingerprint {
        len: target.len(),
        mtime_ns,
    })
}

/// A drop whose bytes are in the blob store, waiting to be assembled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropEvent {
    pub drop_dir: PathBuf,
    /// The entry's name in the drop dir.
    pub name: String,
    pub is_dir: bool,
    /// sha1 of the bundle (for a directory, of the zip it was packed into).
    pub checksum: String,
    pub chunks: Vec<String>,
    pub size: u64,
    /// Grows each time the same bytes were refused, so a re-drop is retried.
    pub generation: i64,
    pub fingerprint: Fingerprint,
}

impl DropEvent {
    fn path(&self) -> PathBuf {
        self.drop_dir.join(&self.name)
    }
}

impl Event for DropEvent {
    const KIND: &'static str = "artifacts.drop";
    fn idempotency_key(&self) -> String {
        format!("{}:{}", self.checksum, self.generation)
    }
}

/// Applies [`DropEvent`]s.
pub struct DropHandler {
    store: Store,
    settings: Arc<Settings>,
    org_slug: String,
    after_success: AfterSuccess,
}

impl Handler for DropHandler {
    fn handle<'a>(&'a self, entry: &'a inbox::Entry) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let event: DropEvent = pipeline::decode(entry)?;
            let store = self.store.clone();
            let settings = self.settings.clone();
            let org_slug = self.org_slug.clone();
            let after = self.after_success;
            tokio::task::spawn_blocking(move || {
                apply_drop(&store, &settings, &org_slug, after, &event)
            })
            .await
            .map_err(|e| HandlerError::Retry(format!("drop task failed: {e}")))?
        })
    }
}

fn apply_drop(
    store: &Store,
    settings: &Settings,
    org_slug: &str,
    after: AfterSuccess,
    ev: &DropEvent,
) -> Result<(), HandlerError> {
    let org = store
        .read_blocking(|c| crate::store::orgs::org_by_slug(c, org_slug))?
        .ok_or_else(|| HandlerError::Permanent(format!("organization '{org_slug}' vanished")))?;
    let path = ev.path();
    let shown = path.display().to_string();
    tracing::info!(drop = %shown, checksum = %ev.checksum, "assembling artifact drop");
    let req = AssembleRequest {
        checksum: ev.checksum.clone(),
        chunks: ev.chunks.clone(),
        // The watcher hashed these bytes as it cut them into chunks.
        checksum_verified: true,
        ..Default::default()
    };
    let finish = |tx: &rusqlite::Transaction<'_>, stored: &StoredAs| {
        rows::record_drop(
            tx,
            &ev.checksum,
            ev.generation,
            true,
            &shown,
            None,
            &crate::core::now(),
        )?;
        // A bundle stored whole stays in the drop folder until its verify step has read
        // every entry: a corrupt one still sends the drop to failed/.
        if let StoredAs::Bundle {
            row,
            file_id,
            verified: false,
            ..
        } = stored
        {
            pipeline::enqueue(
                tx,
                "drop_dir",
                &DropVerifyEvent {
                    drop: ev.clone(),
                    bundle_row: *row,
                    file_id: *file_id,
                },
            )?;
        }
        Ok(())
    };
    // Only touch the drop on disk if it is still the version that was read.
    let unchanged = || fingerprint_of(&path) == Some(ev.fingerprint);
    match artifact::assemble(store, settings, &org, &req, &finish) {
        Ok(outcome) => {
            tracing::info!(drop = %shown, files = outcome.artifact_count, release = ?outcome.release, stored_as = ?outcome.stored_as, "artifact drop stored");
            crate::metrics::drop_result("stored");
            let verifying = matches!(
                outcome.stored_as,
                StoredAs::Bundle {
                    verified: false,
                    ..
                }
            );
            if unchanged() && !verifying {
                settle(&ev.drop_dir, &ev.name, after);
            }
            Ok(())
        }
        Err(AssembleError::Store(e)) => Err(HandlerError::Retry(e.to_string())),
        Err(e) => {
            let reason = e.to_string();
            tracing::warn!(drop = %shown, error = %reason, "artifact drop refused");
            crate::metrics::drop_result("refused");
            store.write_blocking(|tx| {
                rows::record_drop(
                    tx,
                    &ev.checksum,
                    ev.generation,
                    false,
                    &shown,
                    Some(&reason),
                    &crate::core::now(),
                )
            })?;
            if unchanged() {
                fail(&ev.drop_dir, &ev.name, &reason);
            }
            Ok(())
        }
    }
}

/// The verify step of a drop stored as a bundle: the drop is settled once every entry has been
/// read and found sound, or moved to `failed/` with the corrupt entry named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropVerifyEvent {
    pub drop: DropEvent,
    pub bundle_row: i64,
    pub file_id: i64,
}

impl Event for DropVerifyEvent {
    const KIND: &'static str = "artifacts.drop_verify";
    fn idempotency_key(&self) -> String {
        self.drop.idempotency_key()
    }
}

/// Applies [`DropVerifyEvent`]s.
pub struct DropVerifyHandler {
    store: Store,
    after_success: AfterSuccess,
}

impl Handler for DropVerifyHandler {
    fn handle<'a>(&'a self, entry: &'a inbox::Entry) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let event: DropVerifyEvent = pipeline::decode(entry)?;
            let store = self.store.clone();
            let after = self.after_success;
            tokio::task::spawn_blocking(move || verify_drop(&store, after, &event))
                .await
                .map_err(|e| HandlerError::Retry(format!("drop verify task failed: {e}")))?
        })
    }
}

fn verify_drop(
    store: &Store,
    after: AfterSuccess,
    event: &DropVerifyEvent,
) -> Result<(), HandlerError> {
    let ev = &event.drop;
    let path = ev.path();
    let shown = path.display().to_string();
    let on_withdraw = |tx: &rusqlite::Transaction<'_>, reason: &str| {
        rows::record_drop(
            tx,
            &ev.checksum,
            ev.generation,
            false,
            &shown,
            Some(reason),
            &crate::core::now(),
        )
    };
    let verified =
        artifact::verify_bundle(store, event.bundle_row, event.file_id, None, &on_withdraw)?;
    let in_place = fingerprint_of(&path) == Some(ev.fingerprint);
    match verified {
        Verified::Sound | Verified::Superseded => {
            tracing::info!(drop = %shown, "artifact drop verified");
            if in_place {
                settle(&ev.drop_dir, &ev.name, after);
            }
        }
        Verified::Withdrawn(reason) => {
            tracing::warn!(drop = %shown, error = %reason, "artifact drop withdrawn: an entry is corrupt");
            crate::metrics::drop_result("corrupt");
            if in_place {
                fail(&ev.drop_dir, &ev.name, &reason);
            } else {
                report(&ev.drop_dir, &ev.name, &reason);
            }
        }
    }
    Ok(())
}

/// A free name for `name` inside `dir`: `name`, else `name.1`, `name.2`, ...
fn free_name(dir: &Path, name: &str) -> String {
    if !dir.join(name).exists() && !dir.join(format!("{name}.error")).exists() {
        return name.to_string();
    }
    (1..)
        .map(|i| format!("{name}.{i}"))
        .find(|n| !dir.join(n).exists() && !dir.join(format!("{n}.error")).exists())
        .unwrap_or_else(|| name.to_string())
}

/// Removes a processed drop, or moves it into `done/`.
fn settle(drop_dir: &Path, name: &str, after: AfterSuccess) {
    let path = drop_dir.join(name);
    let result = match after {
        AfterSuccess::Remove => {
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
        }
        AfterSuccess::MoveToDone => {
            let done = drop_dir.join(DONE_DIR);
            std::fs::create_dir_all(&done)
                .and_then(|()| std::fs::rename(&path, done.join(free_name(&done, name))))
        }
    };
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(drop = %path.display(), error = %e, "cannot clear away a processed drop");
    }
}

/// Moves a refused drop into `failed/` and writes `<name>.error` beside it. The drop moves
/// first and the `.error` file appears last (atomically), so whoever waits for `.error` finds
/// the drop already there.
fn fail(drop_dir: &Path, name: &str, reason: &str) {
    let failed = drop_dir.join(FAILED_DIR);
    let result = std::fs::create_dir_all(&failed).and_then(|()| {
        let target = free_name(&failed, name);
        std::fs::rename(drop_dir.join(name), failed.join(&target))?;
        write_error(&failed, &target, reason)
    });
    if let Err(e) = result {
        tracing::error!(drop = %drop_dir.join(name).display(), error = %e, "cannot move a refused drop to failed/");
    }
}

/// Writes `failed/<name>.error` for a drop that is no longer in the drop folder.
fn report(drop_dir: &Path, name: &str, reason: &str) {
    let failed = drop_dir.join(FAILED_DIR);
    let result = std::fs::create_dir_all(&failed)
        .and_then(|()| write_error(&failed, &free_name(&failed, name), reason));
    if let Err(e) = result {
        tracing::error!(drop = %drop_dir.join(name).display(), error = %e, "cannot write a drop's .error report");
    }
}

/// Writes `<failed>/<target>.error` atomically (a temp file renamed into place).
fn write_error(failed: &Path, target: &str, reason: &str) -> std::io::Result<()> {
    let tmp = failed.join(format!(".{target}.error.tmp"));
    std::fs::write(&tmp, format!("{reason}\n"))?;
    std::fs::rename(&tmp, failed.join(format!("{target}.error")))
}

/// Registers the drop handler. Call before the pipeline worker starts.
pub fn register(pipeline: &Pipeline, config: &Config, settings: Arc<Settings>) {
    pipeline.register(
        DropEvent::KIND,
        Arc::new(DropHandler {
            store: pipeline.store().clone(),
            settings,
            org_slug: config.organization.clone(),
            after_success: config.artifacts.after_success,
        }),
    );
    pipeline.register(
        DropVerifyEvent::KIND,
        Arc::new(DropVerifyHandler {
            store: pipeline.store().clone(),
            after_success: config.artifacts.after_success,
        }),
    );
}

/// Starts watching the configured drop dirs (none configured: nothing to run).
pub fn spawn(
    pipeline: Pipeline,
    config: &Config,
    stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if config.artifacts.drop_dirs.is_empty() {
        return None;
    }
    let dirs = config.artifacts.drop_dirs.clone();
    let org_slug = config.organization.clone();
    let tmp = config.data_dir().join("tmp");
    let after_success = config.artifacts.after_success;
    let max_file_size = config.artifacts.max_file_size;
    let max_unpacked = config.limits.max_unpacked_bundle;
    Some(tokio::task::spawn_blocking(move || {
        let store = pipeline.store().clone();
        let org_id = match store.read_blocking(|c| crate::store::orgs::org_by_slug(c, &org_slug)) {
            Ok(Some(org)) => org.id,
            Ok(None) | Err(_) => {
                tracing::error!(org = %org_slug, "drop folder: organization not found; not watching");
                return;
            }
        };
        let mut w = DropWatcher {
            pipeline,
            store,
            org_id,
            dirs,
            tmp,
            after_success,
            max_file_size,
            max_unpacked,
            candidates: HashMap::new(),
        };
        w.run(stop);
    }))
}

/// Where a drop stands, as the watcher sees it.
#[derive(Debug, Default)]
struct Candidate {
    /// The last fingerprint seen and since when it has not changed.
    seen: Option<(Fingerprint, Instant)>,
    /// The version handed to the pipeline (not read again unless it changes).
    submitted: Option<Fingerprint>,
    /// Not before this instant (after a transient failure, or a duplicate still in work).
    retry_at: Option<Instant>,
    /// The writer said it is done: the file was renamed into place, or closed after writing
    /// (for a directory: its manifest). Such a drop is tried without waiting to settle.
    finished: bool,
}

enum Ingest {
    Submitted,
    /// Not complete yet (does not open); wait.
    NotYet,
    /// Changed while it was read; read again once stable.
    Changed,
    /// The same bytes were stored from an earlier drop.
    AlreadyDone,
    /// The same bytes are being processed from another drop; look again later.
    Later,
    /// Refused before it reached the pipeline.
    Failed(String),
}

struct DropWatcher {
    pipeline: Pipeline,
    store: Store,
    org_id: i64,
    dirs: Vec<PathBuf>,
    tmp: PathBuf,
    after_success: AfterSuccess,
    max_file_size: u64,
    /// `limits.max_unpacked_bundle`: a zip whose directory adds up to more is refused unread.
    max_unpacked: u64,
    candidates: HashMap<PathBuf, Candidate>,
}

/// Whether a top-level name is one the watcher ignores (in progress, or its own folders).
fn ignored(name: &str, is_dir: bool) -> bool {
    let lower = name.to_ascii_lowercase();
    if name.starts_with('.')
        || lower.ends_with(".tmp")
        || lower.ends_with(".part")
        || lower.ends_with(".error")
        || name == DONE_DIR
        || name == FAILED_DIR
    {
        return true;
    }
    !is_dir && !lower.ends_with(".zip")
}

impl DropWatcher {
    fn run(&mut self, mut stop: watch::Receiver<bool>) {
        let _ = std::fs::remove_dir_all(&self.tmp);
        let (tx, rx) = std::sync::mpsc::channel::<(PathBuf, bool)>();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
            if let Ok(event) = res {
                let finished = matches!(
                    event.kind,
                    EventKind::Access(AccessKind::Close(AccessMode::Write))
                        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
                );
                let last = event.paths.len().saturating_sub(1);
                for (i, p) in event.paths.into_iter().enumerate() {
                    // In a rename pair the last path is where the file now is.
                    let _ = tx.send((p, finished && i == last));
                }
            }
        });
        let mut watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(error = %e, "drop folder: cannot start the file watcher; scanning instead");
                None
            }
        };
        for dir in self.dirs.clone() {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::error!(dir = %dir.display(), error = %e, "drop folder: cannot create it");
                continue;
            }
            if let Some(w) = watcher.as_mut()
                && let Err(e) = w.watch(&dir, RecursiveMode::Recursive)
            {
                tracing::error!(dir = %dir.display(), error = %e, "drop folder: cannot watch it");
            }
            tracing::info!(dir = %dir.display(), "watching drop folder");
        }
        self.scan();
        let mut last_scan = Instant::now();
        loop {
            // A dropped sender (the daemon gave up starting) means stop too.
            if *stop.borrow_and_update() || stop.has_changed().is_err() {
                return;
            }
            match rx.recv_timeout(TICK) {
                Ok((p, finished)) => {
                    self.note(&p, finished);
                    while let Ok((p, finished)) = rx.try_recv() {
                        self.note(&p, finished);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {}
            }
            // Without a watcher (or if it missed something), look every few seconds.
            if last_scan.elapsed() > Duration::from_secs(if watcher.is_some() { 30 } else { 2 }) {
                self.scan();
                last_scan = Instant::now();
            }
            self.tick(&stop);
        }
    }

    fn scan(&mut self) {
        for dir in self.dirs.clone() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                self.note(&entry.path(), false);
            }
        }
    }

    /// Records that something under a drop dir changed: its top-level entry is a candidate.
    /// `finished` says the writer signalled the end of a write (close or rename into place).
    fn note(&mut self, path: &Path, finished: bool) {
        for dir in &self.dirs {
            let Ok(rel) = path.strip_prefix(dir) else {
                continue;
            };
            let Some(first) = rel.components().next() else {
                continue;
            };
            let top = dir.join(first);
            let name = first.as_os_str().to_string_lossy();
            let is_dir = top.is_dir();
            if ignored(&name, is_dir) {
                return;
            }
            // Only the drop itself (a zip) or a directory's manifest says the drop is done.
            let done = finished
                && (path == top.as_path()
                    || (is_dir
                        && rel.components().count() == 2
                        && path
                            .file_name()
                            .is_some_and(|n| n == manifest::MANIFEST_PATH)));
            let c = self.candidates.entry(top).or_default();
            if done {
                c.finished = true;
            }
            return;
        }
    }

    fn tick(&mut self, stop: &watch::Receiver<bool>) {
        let paths: Vec<PathBuf> = self.candidates.keys().cloned().collect();
        for path in paths {
            if *stop.borrow() {
                return;
            }
            let Some(fp) = fingerprint_of(&path) else {
                // Gone, or a directory without its manifest yet.
                if std::fs::symlink_metadata(&path).is_err() {
                    self.candidates.remove(&path);
                }
                continue;
            };
            let now = Instant::now();
            let Some(c) = self.candidates.get_mut(&path) else {
                continue;
            };
            if c.submitted == Some(fp) || c.retry_at.is_some_and(|t| now < t) {
                continue;
            }
            let stable_for = match c.seen {
                Some((prev, since)) if prev == fp => now - since,
                _ => {
                    c.seen = Some((fp, now));
                    c.submitted = None;
                    Duration::ZERO
                }
            };
            // A drop renamed into place (or closed after writing) is tried at once; the zip
            // and manifest checks still refuse one that is not complete.
            let finished = std::mem::take(&mut c.finished);
            if stable_for < SETTLE && !finished {
                continue;
            }
            let outcome = self.ingest(&path, fp, stable_for);
            let Some(c) = self.candidates.get_mut(&path) else {
                continue;
            };
            match outcome {
                Ok(Ingest::Submitted) => c.submitted = Some(fp),
                Ok(Ingest::NotYet) => {}
                Ok(Ingest::Changed) => c.seen = None,
                Ok(Ingest::Later) => c.retry_at = Some(now + Duration::from_secs(2)),
                Ok(Ingest::AlreadyDone) => {
                    tracing::info!(drop = %path.display(), "artifact drop already stored (same bytes as an earlier drop)");
                    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                        settle(dir, &name.to_string_lossy(), self.after_success);
                    }
                    self.candidates.remove(&path);
                }
                Ok(Ingest::Failed(reason)) => {
                    tracing::warn!(drop = %path.display(), error = %reason, "artifact drop refused");
                    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                        fail(dir, &name.to_string_lossy(), &reason);
                    }
                    self.candidates.remove(&path);
                }
                Err(e) => {
                    tracing::error!(drop = %path.display(), error = %e, "drop folder: cannot ingest; will retry");
                    c.retry_at = Some(now + Duration::from_secs(5));
                }
            }
        }
    }

    /// Reads a complete-looking drop into the blob store and submits its event.
    fn ingest(
        &mut self,
        path: &Path,
        fp: Fingerprint,
        stable_for: Duration,
    ) -> Result<Ingest, StoreError> {
        // A link would make the watcher read (and serve) whatever it points at, outside the
        // folder: refuse it as links inside drops are refused. Moving it moves the link only.
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Ok(Ingest::Failed(
                "it is a symbolic link; drop the file or directory itself".into(),
            ));
        }
        let is_dir = path.is_dir();
        let patient = stable_for < INVALID_GRACE;
        let source = if is_dir {
            match self.pack_dir(path) {
                Ok(zip) => zip,
                Err(Refusal::Wait) if patient => return Ok(Ingest::NotYet),
                Err(Refusal::Wait) => {
                    return Ok(Ingest::Failed(
                        "bad manifest: manifest.json is not valid JSON".into(),
                    ));
                }
                Err(Refusal::Refuse(reason)) => return Ok(Ingest::Failed(reason)),
                Err(Refusal::Io(e)) => return Err(StoreError::Task(e)),
            }
        } else {
            if fp.len > self.max_file_size {
                return Ok(Ingest::Failed(format!(
                    "File {} exceeds maximum size ({} > {}); raise artifacts.max_file_size",
                    path.display(),
                    fp.len,
                    self.max_file_size
                )));
            }
            match check_zip(path) {
                Err(e) => {
                    return Ok(if patient {
                        Ingest::NotYet
                    } else {
                        Ingest::Failed(format!("the bundle is invalid: {e}"))
                    });
                }
                Ok(unpacked) if unpacked > self.max_unpacked => {
                    return Ok(Ingest::Failed(
                        crate::core::artifact::AssembleError::Unpacked {
                            size: unpacked,
                            max: self.max_unpacked,
                        }
                        .to_string(),
                    ));
                }
                Ok(_) => {}
            }
            path.to_path_buf()
        };
        let stored = self.store_file(&source);
        if is_dir {
            let _ = std::fs::remove_file(&source);
        }
        let stored = stored?;
        if fingerprint_of(path) != Some(fp) {
            return Ok(Ingest::Changed);
        }
        let generation = self
            .store
            .read_blocking(|c| rows::drop_record(c, &stored.sha1))?
            .map_or(0, |r| r.generation);
        let (drop_dir, name) = match (path.parent(), path.file_name()) {
            (Some(d), Some(n)) => (d.to_path_buf(), n.to_string_lossy().into_owned()),
            _ => return Ok(Ingest::Failed("not a drop-folder entry".into())),
        };
        let event = DropEvent {
            drop_dir,
            name,
            is_dir,
            checksum: stored.sha1.clone(),
            chunks: stored.blobs.iter().map(|b| b.sha1.clone()).collect(),
            size: stored.size,
            generation,
            fingerprint: fp,
        };
        match self.pipeline.submit_blocking("drop_dir", &event)? {
            Submitted::New(_) => {
                tracing::info!(drop = %path.display(), checksum = %event.checksum, bytes = event.size, "artifact drop queued");
                Ok(Ingest::Submitted)
            }
            Submitted::Duplicate => {
                let key = format!("{}:{}", DropEvent::KIND, event.idempotency_key());
                let status = self.store.read_blocking(|c| rows::inbox_event(c, &key))?;
                // Stored as a bundle, its verify step may still be due: it settles the drop.
                let verify = format!("{}:{}", DropVerifyEvent::KIND, event.idempotency_key());
                let verifying = match self
                    .store
                    .read_blocking(|c| rows::inbox_event(c, &verify))?
                {
                    Some((false, payload)) => Some(
                        serde_json::from_str::<DropVerifyEvent>(&payload)
                            .is_ok_and(|p| p.drop.path() == event.path()),
                    ),
                    _ => None,
                };
                Ok(match status {
                    Some((true, _)) if verifying == Some(true) => Ingest::Submitted,
                    Some((true, _)) if verifying == Some(false) => Ingest::Later,
                    Some((true, _)) => Ingest::AlreadyDone,
                    Some((false, payload)) => {
                        let same = serde_json::from_str::<DropEvent>(&payload)
                            .is_ok_and(|p| p.path() == event.path());
                        if same {
                            Ingest::Submitted
                        } else {
                            Ingest::Later
                        }
                    }
                    None => Ingest::Later,
                })
            }
        }
    }

    /// Cuts a file into chunks on this thread while a second one hashes the whole file.
    fn store_file(&self, file: &Path) -> Result<crate::store::blobs::Stored, StoreError> {
        let failed = |e: std::io::Error| StoreError::Task(format!("{}: {e}", file.display()));
        std::thread::scope(|scope| {
            let whole = scope.spawn(|| manifest::sha1_file(file));
            let mut f = std::fs::File::open(file).map_err(failed)?;
            let cuts = crate::core::artifact::entry_offsets(&mut f);
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).map_err(failed)?;
            let mut sink = ChunkSink::new(&self.store, self.org_id, &crate::core::now())
                .without_digest()
                .cut_at(cuts);
            sink.copy_from(&mut f).map_err(|e| match e {
                Ok(io) => failed(io),
                Err(store) => store,
            })?;
            let mut stored = sink.finish()?;
            stored.sha1 = whole
                .join()
                .map_err(|_| StoreError::Task("the hashing thread panicked".into()))?
                .map_err(failed)?;
            Ok(stored)
        })
    }

    /// Packs a directory drop into a zip in `tmp/`, after checking its manifest and files.
    fn pack_dir(&self, dir: &Path) -> Result<PathBuf, Refusal> {
        let bytes = std::fs::read(dir.join(manifest::MANIFEST_PATH))
            .map_err(|e| Refusal::Io(e.to_string()))?;
        let parsed = match manifest::parse(&bytes) {
            Ok(m) => m,
            Err(manifest::ManifestError::Malformed(_))
                if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() =>
            {
                return Err(Refusal::Wait);
            }
            Err(e) => return Err(Refusal::Refuse(e.to_string())),
        };
        let root = dir.canonicalize().map_err(|e| Refusal::Io(e.to_string()))?;
        let mut sources = Vec::new();
        for path in parsed.files.keys() {
            // Every component must be a real directory or file of the drop: no symlinks out.
            let mut at = dir.to_path_buf();
            for part in path.split('/') {
                at.push(part);
                match std::fs::symlink_metadata(&at) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(Refusal::Refuse(format!(
                            "path outside the bundle: {path:?} (symbolic link)"
                        )));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        return Err(Refusal::Refuse(format!(
                            "the bundle is invalid: the manifest lists {path}, which is not in the directory"
                        )));
                    }
                }
            }
            let real = at.canonicalize().map_err(|e| Refusal::Io(e.to_string()))?;
            if !real.starts_with(&root) {
                return Err(Refusal::Refuse(format!(
                    "path outside the bundle: {path:?}"
                )));
            }
            if !real.is_file() {
                return Err(Refusal::Refuse(format!(
                    "the bundle is invalid: {path} is not a regular file"
                )));
            }
            sources.push((path.clone(), real));
        }
        std::fs::create_dir_all(&self.tmp).map_err(|e| Refusal::Io(e.to_string()))?;
        let mut rnd = [0u8; 8];
        let _ = getrandom::fill(&mut rnd);
        let out = self.tmp.join(format!("drop-{}.zip", hex::encode(rnd)));
        let file = std::fs::File::create(&out).map_err(|e| Refusal::Io(e.to_string()))?;
        // The manifest is carried over byte for byte in meaning; re-serialised, it is
        // canonical, so the same directory always packs to the same checksum.
        let written = artifact::write_bundle(
            std::io::BufWriter::new(file),
            &parsed,
            &sources,
            false,
            &|_| {},
        )
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .and_then(|f| f.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&out);
            return Err(Refusal::Io(e.to_string()));
        }
        Ok(out)
    }
}

enum Refusal {
    /// The manifest does not parse yet: maybe still being written.
    Wait,
    Refuse(String),
    Io(String),
}

/// Whether a file opens as a zip with a manifest (a zip being written in place does not: its
/// central directory comes last); what its directory says it unpacks to.
fn check_zip(path: &Path) -> Result<u64, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("cannot read the zip: {e}"))?;
    if zip.index_for_name(manifest::MANIFEST_PATH).is_none() {
        return Err("it has no manifest.json".into());
    }
    // Unknown with data descriptors: then the assemble's own checks (it reads the
    // directory again and counts while inflating) refuse an oversized bundle.
    Ok(zip
        .decompressed_size()
        .map_or(0, |n| u64::try_from(n).unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_progress_names_are_ignored() {
        for name in [
            ".hidden.zip",
            "a.zip.tmp",
            "a.zip.part",
            "A.ZIP.PART",
            "done",
            "failed",
            "x.txt",
        ] {
            assert!(ignored(name, name == "done" || name == "failed"), "{name}");
        }
        assert!(!ignored("bundle.zip", false));
        assert!(!ignored("Bundle.ZIP", false));
        assert!(!ignored("dist", true));
        assert!(ignored("dist.tmp", true));
    }

    #[test]
    fn free_names_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_name(dir.path(), "a.zip"), "a.zip");
        std::fs::write(dir.path().join("a.zip"), b"x").unwrap();
        assert_eq!(free_name(dir.path(), "a.zip"), "a.zip.1");
    }
}
