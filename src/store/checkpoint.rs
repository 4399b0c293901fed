//! WAL checkpoints on a thread of their own.
//!
//! In WAL mode every page is written twice: to the WAL at commit, and into the database file
//! when the WAL is checkpointed. SQLite's automatic checkpoint runs inside the commit that
//! crosses its threshold, so the writer that happens to be committing pays for copying the
//! whole WAL and syncing the database file — for artifact chunks (1 MiB blobs) that is most of
//! the cost of storing them (benches/artifacts.rs). Here the writer connection only records
//! how large the WAL has grown (a WAL hook, on the writer's own thread) and, past
//! [`THRESHOLD_PAGES`], wakes a checkpointer thread that copies the WAL back with a `PASSIVE`
//! checkpoint — which never blocks the writer or readers — on its own connection. It waits
//! for a pause in the writes ([`IDLE`]) unless the WAL passes [`HIGH_WATER_PAGES`]: a burst
//! (a large bundle arriving) is not slowed by copying its own first pages back meanwhile.
//!
//! Once the writes stop for [`QUIET`], whatever the WAL holds is copied back and the WAL file
//! emptied, so a store at rest takes the size of its data, not of its last burst.
//!
//! Should the checkpointer fall far behind (readers pinning old snapshots for long), the writer
//! checkpoints inline again past [`INLINE_PAGES`], so the WAL cannot grow without bound.

use std::cell::Cell;
use std::os::raw::c_int;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// SQLite's own automatic-checkpoint threshold (1000 pages, 16 MiB with 16 KiB pages).
pub const THRESHOLD_PAGES: c_int = 1000;

/// Past this the checkpointer stops waiting for a pause in the writes (256 MiB of WAL).
pub const HIGH_WATER_PAGES: c_int = 16 * THRESHOLD_PAGES;

/// How long the writes must pause before the checkpointer copies the WAL back.
pub const IDLE: std::time::Duration = std::time::Duration::from_millis(50);

/// How long the writes must stop before a WAL under [`THRESHOLD_PAGES`] is copied back and
/// emptied, so a store at rest is one file (what a burst wrote is not left in the WAL).
pub const QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// Past this the writer checkpoints inline, as SQLite would (about 1 GiB of WAL).
pub const INLINE_PAGES: c_int = 64 * THRESHOLD_PAGES;

/// The WAL file is truncated back to this size when it restarts, so a burst of writes (a large
/// bundle) does not leave a WAL of that size behind.
pub const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

/// The checkpointer connection's busy timeout.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

thread_local! {
    /// The WAL's size in pages after the last commit on this thread's writer connection.
    static WAL_PAGES: Cell<c_int> = const { Cell::new(0) };
}

fn record_wal_size(_wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// Sets up the writer connection: no automatic checkpoint, the WAL size recorded per commit.
pub fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    // Registering a WAL hook replaces SQLite's automatic checkpoint (which is one).
    conn.wal_hook(Some(record_wal_size));
    Ok(())
}

/// The writer's side: call after each commit on the writer connection, on the same thread.
pub struct Checkpointer {
    /// The WAL size after a commit past the threshold.
    wake: SyncSender<c_int>,
}

impl Checkpointer {
    /// Starts the checkpointer thread for the database at `path`. It stops when the returned
    /// handle is dropped.
    pub fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // One pending wake-up is enough: the checkpoint copies whatever the WAL holds by then.
        let (wake, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("shiplog-checkpoint".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Task(format!("cannot start the checkpointer: {e}")))?;
        Ok(Checkpointer { wake })
    }

    /// Looks at the WAL size the last commit left and wakes the checkpointer (or, far past
    /// the threshold, checkpoints inline).
    pub fn after_commit(&self, writer: &Connection) {
        let pages = WAL_PAGES.with(|p| p.replace(0));
        if pages >= INLINE_PAGES {
            let _ = checkpoint(writer);
        } else if pages > 0 {
            match self.wake.try_send(pages) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => {
                    let _ = checkpoint(writer);
                }
            }
        }
    }
}

fn run(conn: Connection, wake: Receiver<c_int>) {
    while let Ok(mut pages) = wake.recv() {
        // Wait for the writes to pause (each commit past the threshold sends again).
        let mut paused = false;
        while pages < HIGH_WATER_PAGES {
            // A WAL under the threshold is left alone until the writes stop for good.
            let idle = if pages >= THRESHOLD_PAGES {
                IDLE
            } else {
                QUIET
            };
            match wake.recv_timeout(idle) {
                Ok(now) => pages = now,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    paused = true;
                    break;
                }
            }
        }
        if checkpoint(&conn) && paused {
            truncate(&conn);
        }
    }
    // The store is closing: leave as little WAL behind as readers allow.
    if checkpoint(&conn) {
        truncate(&conn);
    }
}

/// A passive checkpoint; `true` when it copied the whole WAL back.
fn checkpoint(conn: &Connection) -> bool {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    }) {
        Ok((busy, log, done)) => busy == 0 && log == done,
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed; the next one will retry");
            false
        }
    }
}

/// Once the writes paused and the WAL is all copied back, empties the WAL file: without it
/// a burst leaves its WAL on disk (up to [`JOURNAL_SIZE_LIMIT`]) until the next write. With
/// nothing left to copy this only takes the write lock for the truncation; a writer arriving
/// meanwhile waits that long.
fn truncate(conn: &Connection) {
    // Not worth waiting for: a writer or reader busy now means writes resumed, and the next
    // pause truncates.
    let _ = conn.busy_timeout(std::time::Duration::ZERO);
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "WAL truncation skipped");
    }
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError};

    fn wal_len(dir: &std::path::Path) -> u64 {
        std::fs::metadata(
            dir.join(crate::store::DB_FILE)
                .with_extension("sqlite3-wal"),
        )
        .map_or(0, |m| m.len())
    }

    #[test]
    fn the_wal_is_checkpointed_and_restarted_off_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let blob = vec![7u8; 1 << 20];
        // 200 MiB through the writer, in 4 MiB transactions.
        for _ in 0..50 {
            store
                .write_blocking(|tx| {
                    tx.execute("CREATE TABLE IF NOT EXISTS t (b BLOB)", [])?;
                    for _ in 0..4 {
                        tx.execute("INSERT INTO t (b) VALUES (?1)", [&blob])?;
                    }
                    Ok::<_, StoreError>(())
                })
                .unwrap();
        }
        // The checkpointer copies the WAL back once the writes pause, and the next write
        // restarts it from the start (truncated to JOURNAL_SIZE_LIMIT), so it ends far below
        // what was written (~200 MiB without checkpoints). Polled: a loaded machine is slow.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut extra = 0;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            store
                .write_blocking(|tx| {
                    tx.execute("INSERT INTO t (b) VALUES (x'00')", [])?;
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            extra += 1;
            let len = wal_len(dir.path());
            if len < 100 << 20 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "WAL is {len} bytes");
        }
        let n: i64 = store
            .read_blocking(|c| {
                c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(n, 200 + extra);
    }
}
