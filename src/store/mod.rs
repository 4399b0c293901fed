//! The SQLite store: one file, WAL, migrations, one writer and a small pool of readers.
//!
//! Every other module reaches the database through [`Store::write`] and [`Store::read`]. A write
//! runs inside one transaction on the single writer connection, so the whole domain operation
//! (create a release, attach projects, log the activity) commits or rolls back as a unit, and
//! writers never contend for SQLite's lock. Reads use their own connections, which WAL lets run
//! beside the writer. Both run on tokio's blocking pool: SQLite calls block.
//!
//! **Group commit.** An async [`Store::write`] queues its request; one blocking task at a
//! time drains the queue (the request that finds none running starts it): it takes the
//! writer, runs *every* request queued by then in one transaction, each inside its own
//! savepoint (a request that fails rolls back to its savepoint and leaves the others alone),
//! commits, answers each caller only after that COMMIT — so what a caller is told is stored
//! is stored — and goes on with what queued meanwhile. Under load this turns hundreds of commits (each a WAL append and a lock
//! round trip) into one, which is what lets single-session and single-event envelopes arrive
//! at thousands per second (benches/health.rs). [`Store::write_blocking`] runs alone, as
//! before: its closure may borrow from the caller.
//!
//! The per-aggregate query functions live in the submodules and take a plain `&Connection`
//! (a `Transaction` derefs to one), so the same function serves reads and writes.
//!
//! Storage sits behind these functions so that another backend could be added without touching
//! the pipeline or the API.

pub mod activity;
pub mod artifacts;
pub mod backup;
pub mod blob_store;
pub mod blobs;
mod checkpoint;
pub mod commits;
pub mod deploys;
pub mod entry_digests;
pub mod github;
pub mod grouping;
pub mod health;
pub mod inbox;
pub mod issues;
pub mod notifications;
pub mod orgs;
pub mod payload;
pub mod postgres;
pub mod refs;
pub mod releases;
pub mod repos;
pub mod settings;
pub mod tokens;
pub mod web_sessions;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction};
use rusqlite_migration::{M, Migrations};

/// The database file inside the data dir.
pub const DB_FILE: &str = "shiplog.sqlite3";

const READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the storage layer itself (domain errors live in `core`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused a statement.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The data directory could not be created or opened.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A blocking database task panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
    /// The file was written by a newer shiplog.
    #[error(
        "database {path} has schema version {found}, newer than this shiplog knows ({known}); upgrade shiplog"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
}

/// The migrations, in order. Append only: a released migration is never edited.
fn migration_list() -> Vec<M<'static>> {
    vec![
        M::up(include_str!("migrations/0001_core.sql")),
        M::up(include_str!("migrations/0002_commits.sql")),
        M::up(include_str!("migrations/0003_hooks.sql")),
        M::up(include_str!("migrations/0004_artifacts.sql")),
        M::up(include_str!("migrations/0005_issues.sql")),
        M::up(include_str!("migrations/0006_github.sql")),
        M::up(include_str!("migrations/0007_bundle_verify.sql")),
        M::up(include_str!("migrations/0008_settings.sql")),
        M::up(include_str!("migrations/0009_manual_links.sql")),
        M::up(include_str!("migrations/0010_github_org_scope.sql")),
        M::up(include_str!(
            "migrations/0011_pending_bundles_and_project_events.sql"
        )),
        M::up(include_str!("migrations/0013_health.sql")),
        M::up(include_str!("migrations/0015_grouping.sql")),
        M::up(include_str!("migrations/0016_notifications.sql")),
        M::up(include_str!("migrations/0017_health_daily_users.sql")),
        M::up(include_str!("migrations/0019_blob_backends.sql")),
        M::up(include_str!("migrations/0020_web_sessions.sql")),
        M::up(include_str!("migrations/0021_health_daily_counts.sql")),
        M::up(include_str!("migrations/0022_blob_entry_digests.sql")),
    ]
}

fn migrations() -> Migrations<'static> {
    Migrations::new(migration_list())
}

/// Applies only the first `count` migrations: tests build a database as an older shiplog
/// left it, then open it with [`Store::open`] to upgrade it.
#[cfg(test)]
pub(crate) fn migrate_first(conn: &mut Connection, count: usize) -> Result<(), StoreError> {
    Ok(migrations().to_version(conn, count)?)
}

/// One queued write request.
trait WriteJob: Send {
    /// Runs the request inside its own savepoint of the shared transaction.
    fn run(&mut self, tx: &Transaction<'_>);
    /// Answers the caller once the shared transaction committed (or failed to).
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct Job<T, E, F> {
    f: Option<F>,
    result: Option<Result<T, E>>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> WriteJob for Job<T, E, F>
where
    T: Send,
    E: From<StoreError> + Send,
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send,
{
    fn run(&mut self, tx: &Transaction<'_>) {
        let Some(f) = self.f.take() else { return };
        if let Err(e) = tx.execute_batch("SAVEPOINT job") {
            self.result = Some(Err(E::from(StoreError::from(e))));
            return;
        }
        // A panicking request must not take the others down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(tx)))
            .unwrap_or_else(|_| Err(E::from(StoreError::Task("a write panicked".into()))));
        let end = if result.is_ok() {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        self.result = Some(match tx.execute_batch(end) {
            Ok(()) => result,
            Err(e) => Err(E::from(StoreError::from(e))),
        });
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(e)) => Err(E::from(StoreError::Task(format!(
                "the write was not committed: {e}"
            )))),
            (None, Ok(())) => Err(E::from(StoreError::Task("the write never ran".into()))),
        };
        // The caller may have gone away (a dropped request): nothing to answer then.
        let _ = self.reply.send(result);
    }
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Async write requests waiting for the writer (group commit).
    queue: Mutex<Queue>,
    /// Copies the WAL back into the database file off the writer (see `checkpoint`).
    checkpointer: checkpoint::Checkpointer,
    readers: Mutex<Vec<Connection>>,
    reader_slots: tokio::sync::Semaphore,
    /// Where artifact bytes go and are read from (`storage:`); the database by default.
    blob_store: std::sync::RwLock<Arc<blob_store::BlobStore>>,
}

/// The group-commit queue. `draining` is true while a blocking task is committing it: one
/// such task at a time, started by the write that finds none, so a burst of requests costs
/// one thread hand-off per batch rather than one per request.
#[derive(Default)]
struct Queue {
    jobs: Vec<Box<dyn WriteJob>>,
    draining: bool,
}

/// Clears `draining` should the draining task unwind, so later writes start a new one.
struct DrainGuard<'a>(&'a Mutex<Queue>);

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).draining = false;
        }
    }
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// How much of the database file each reader maps (SQLite's `mmap_size`).
const READER_MMAP: i64 = 1 << 30;

/// Prepared statements kept per connection. rusqlite's default of 16 is fewer than one
/// ingest transaction or one releases page runs, so each evicted the next one's statements and
/// every request parsed and planned its SQL again.
const STATEMENT_CACHE: usize = 256;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // 16 KiB pages (takes effect only when the file is created, so before WAL): artifact
    // chunks are 1 MiB BLOBs, and 4 KiB pages make writing them cost twice the syscalls and
    // checkpoints (benches/artifacts.rs).
    conn.pragma_update(None, "page_size", 16384)?;
    // WAL: readers never block the writer. NORMAL: a commit is durable once the WAL is synced
    // at checkpoint; a power cut can lose the last commits but never corrupts the file.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// A read-only connection as every reader is set up.
fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Pages read through a memory map instead of a copy per read() into each connection's
    // 2 MiB cache: a releases page with health reads a few thousand pages of rollups, and
    // copying them was most of its time (perf: _copy_to_iter). The map is the OS page cache,
    // shared by every reader, not memory of our own.
    conn.pragma_update(None, "mmap_size", READER_MMAP)?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and migrates it.
    pub fn open_dir(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        Store::open(&data_dir.join(DB_FILE))
    }

    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        let migrations = migrations();
        let known = migration_list().len();
        let found: i64 = writer.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let found = usize::try_from(found).unwrap_or(0);
        if found > known {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                known,
            });
        }
        migrations.to_latest(&mut writer)?;
        checkpoint::configure_writer(&writer)?;
        let checkpointer = checkpoint::Checkpointer::start(path)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn = open_reader(path)?;
            readers.push(conn);
        }
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                queue: Mutex::new(Queue::default()),
                checkpointer,
                readers: Mutex::new(readers),
                reader_slots: tokio::sync::Semaphore::new(READERS),
                blob_store: Default::default(),
            }),
        })
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The blob store artifact bytes are written to and read from.
    pub fn blob_store(&self) -> Arc<blob_store::BlobStore> {
        self.inner
            .blob_store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sends new artifact bytes to `blobs` (from `storage:`); bytes already stored are read
    /// wherever their rows say they are.
    pub fn use_blob_store(&self, blobs: blob_store::BlobStore) {
        *self
            .inner
            .blob_store
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(blobs);
    }

    /// Runs `f` in a write transaction on the writer connection, off the async threads,
    /// grouped with the other writes waiting then (each in its own savepoint); answers once
    /// that transaction committed. `f`'s changes are rolled back when it returns `Err`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let start = {
            let mut queue = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.jobs.push(Box::new(Job {
                f: Some(f),
                result: None,
                reply,
            }));
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            let store = self.clone();
            // Not awaited: this caller's answer comes through `answer` like everyone's.
            drop(tokio::task::spawn_blocking(move || store.drain_queue()));
        }
        answer
            .await
            .map_err(|_| E::from(StoreError::Task("the write was dropped".into())))?
    }

    /// Takes the writer and commits the queued requests, a batch (whatever is queued by then)
    /// per transaction, until the queue is empty.
    fn drain_queue(&self) {
        let _guard = DrainGuard(&self.inner.queue);
        loop {
            let mut conn = self
                .inner
                .writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut group = {
                let mut queue = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.jobs.is_empty() {
                    queue.draining = false;
                    return;
                }
                std::mem::take(&mut queue.jobs)
            };
            let committed =
                match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
                    Ok(tx) => {
                        for job in &mut group {
                            job.run(&tx);
                        }
                        tx.commit().map_err(StoreError::from)
                    }
                    Err(e) => Err(StoreError::from(e)),
                };
            if committed.is_ok() {
                self.inner.checkpointer.after_commit(&conn);
            }
            drop(conn);
            for job in group {
                job.finish(committed.as_ref().map(|_| ()));
            }
        }
    }

    /// [`Store::write`] for callers that are not async (one-shot CLI commands, the pipeline).
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Transaction<'_>) -> Result<T, E>,
    {
        // A poisoned lock only means another writer panicked mid-way; its transaction was
        // rolled back when the connection's Transaction dropped, so the connection is sound.
        let asked = std::time::Instant::now();
        let mut conn = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        crate::metrics::writer_wait(asked.elapsed());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let value = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        self.inner.checkpointer.after_commit(&conn);
        Ok(value)
    }

    /// Runs `f` on a read-only connection, off the async threads.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let permit = self
            .inner
            .reader_slots
            .acquire()
            .await
            .map_err(|e| E::from(StoreError::Task(e.to_string())))?;
        let store = self.clone();
        let result = tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| E::from(StoreError::Task(e.to_string())))?;
        drop(permit);
        result
    }

    /// [`Store::read`] for callers that are not async.
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&Connection) -> Result<T, E>,
    {
        let conn = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let conn = match conn {
            Some(c) => c,
            // Blocking callers do not take a semaphore slot; open a spare connection when the
            // pool is momentarily empty rather than wait.
            None => open_reader(&self.inner.path).map_err(StoreError::from)?,
        };
        let result = f(&conn);
        let mut pool = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < READERS {
            pool.push(conn);
        }
        result
    }
}

/// `true` when the error is a UNIQUE constraint violation (an insert raced an existing row).
pub fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }

    #[test]
    fn grouped_writes_fail_alone_and_all_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let results: Vec<Result<(), StoreError>> = runtime.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..200 {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    store
                        .write(move |tx| {
                            tx.execute(
                                "INSERT INTO organizations (slug, name, date_added) VALUES (?1, 'O', 'x')",
                                [format!("o{i}")],
                            )?;
                            if i % 7 == 0 {
                                // Fails after its insert: only its own insert is undone.
                                tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
                            }
                            Ok::<_, StoreError>(())
                        })
                        .await
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        let failed = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, 29);
        let n: i64 = store
            .read_blocking(|c| {
                Ok::<_, StoreError>(
                    c.query_row("SELECT count(*) FROM organizations", [], |r| r.get(0))?,
                )
            })
            .unwrap();
        assert_eq!(n, 171);
    }

    #[test]
    fn opens_twice_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open_dir(dir.path()).unwrap();
            store
                .write_blocking(|tx| {
                    tx.execute(
                        "INSERT INTO organizations (slug, name, date_added) VALUES ('a', 'A', 'x')",
                        [],
                    )?;
                    Ok::<_, StoreError>(())
                })
                .unwrap();
        }
        let store = Store::open_dir(dir.path()).unwrap();
        let n: i64 = store
            .read_blocking(|c| {
                Ok::<_, StoreError>(
                    c.query_row("SELECT count(*) FROM organizations", [], |r| r.get(0))?,
                )
            })
            .unwrap();
        assert_eq!(n, 1);
    }
}
