//! Backups, restores and checks of the store.
//!
//! A backup is SQLite's online backup API run in one step: all pages are copied inside a single
//! read transaction on a connection of its own, so the copy is the database as of one commit,
//! taken while the daemon keeps writing (WAL lets the writer go on beside that reader). The copy
//! is written next to its destination, switched to a rollback journal (one self-contained file,
//! no `-wal` beside it), checked, and only then renamed into place. Blobs (artifact chunks)
//! live in the database, so the one file is the whole store.
//!
//! A restore does the reverse into an empty data dir (never over a store that exists), then
//! opens it once so a backup from an older shiplog is migrated.
//!
//! [`check`] verifies a store without writing to it, daemon running or not: SQLite's integrity
//! and foreign-key checks, and the blob store's own invariants (a file is its chunks in order,
//! each chunk hashes to its name). Chunks no file uses are reported as warnings, not problems:
//! an upload in progress has them until it assembles, and `prune_artifacts` removes the rest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use sha1::{Digest, Sha1};

use super::{BUSY_TIMEOUT, DB_FILE, Store, StoreError, migration_list};

/// Why a backup or restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// There is no store to back up.
    #[error("no shiplog database at {0}; is the data dir right (--data-dir, SHIPLOG_DATA_DIR)?")]
    NoDatabase(PathBuf),
    /// The destination file exists already.
    #[error("{0} exists; choose another file or pass --force to replace it")]
    Exists(PathBuf),
    /// A restore target that already holds something.
    #[error(
        "{0} is not empty; restore only into an empty or new data dir (move the old one aside first)"
    )]
    NotEmpty(PathBuf),
    /// The file to restore is not a usable shiplog database.
    #[error("{path} is not a shiplog backup: {reason}")]
    NotABackup { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for BackupError {
    fn from(e: rusqlite::Error) -> Self {
        BackupError::Store(e.into())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
}

fn open_read_only(path: &Path) -> Result<Connection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::NoDatabase(path.to_path_buf()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Copies `src` (a live database, WAL or not) to `dest` as it is at one instant, through
/// `dest` + `.partial`, and returns what was written. The copy uses a rollback journal, and
/// passes `quick_check` before it is renamed into place.
fn copy_database(
    src: &Connection,
    dest: &Path,
    journal_mode: &str,
) -> Result<BackupReport, BackupError> {
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let _ = std::fs::remove_file(&partial);
    {
        let mut out = Connection::open(&partial)?;
        {
            let backup = Backup::new(src, &mut out)?;
            // -1: every page in one step, hence one read transaction and one snapshot. A busy
            // or locked step is retried (for up to BUSY_TIMEOUT).
            let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
            loop {
                match backup.step(-1)? {
                    StepResult::Done => break,
                    StepResult::More | StepResult::Busy | StepResult::Locked
                        if std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        return Err(BackupError::Store(StoreError::Task(
                            "the database stayed locked; try again".into(),
                        )));
                    }
                }
            }
        }
        out.pragma_update(None, "journal_mode", journal_mode)?;
        let verdict: String = out.pragma_query_value(None, "quick_check", |r| r.get(0))?;
        if verdict != "ok" {
            let _ = std::fs::remove_file(&partial);
            return Err(BackupError::Store(StoreError::Task(format!(
                "the copy failed its check: {verdict}"
            ))));
        }
    }
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&partial))?;
    std::fs::rename(&partial, dest).map_err(io_err(dest))?;
    let check = Connection::open_with_flags(dest, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let schema_version = check.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(BackupReport {
        path: dest.to_path_buf(),
        bytes: std::fs::metadata(dest).map_err(io_err(dest))?.len(),
        schema_version,
    })
}

/// Backs up the store of `data_dir` to `dest` while a daemon may be running and writing.
/// An existing `dest` is replaced only with `replace`.
pub fn backup(data_dir: &Path, dest: &Path, replace: bool) -> Result<BackupReport, BackupError> {
    let db = data_dir.join(DB_FILE);
    let src = open_read_only(&db)?;
    if dest.exists() && !replace {
        return Err(BackupError::Exists(dest.to_path_buf()));
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    copy_database(&src, dest, "DELETE")
}

/// Restores the backup `file` into `data_dir`, which must be empty or absent, and migrates it
/// to this shiplog's schema. Returns the schema version the backup had.
pub fn restore(file: &Path, data_dir: &Path) -> Result<i64, BackupError> {
    let not_a_backup = |reason: String| BackupError::NotABackup {
        path: file.to_path_buf(),
        reason,
    };
    if !file.is_file() {
        return Err(not_a_backup("no such file".into()));
    }
    if let Ok(mut entries) = std::fs::read_dir(data_dir)
        && entries.next().is_some()
    {
        return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
    }
    let src = open_read_only(file)?;
    let verdict: String = src
        .pragma_query_value(None, "quick_check", |r| r.get(0))
        .map_err(|e| not_a_backup(e.to_string()))?;
    if verdict != "ok" {
        return Err(not_a_backup(format!("the file is damaged: {verdict}")));
    }
    let version: i64 = src.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = migration_list().len() as i64;
    let has_releases: bool = src.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'releases'",
        [],
        |r| r.get(0),
    )?;
    if version == 0 || !has_releases {
        return Err(not_a_backup("it has no shiplog tables".into()));
    }
    if version > known {
        return Err(not_a_backup(format!(
            "it has schema version {version}, newer than this shiplog knows ({known}); upgrade shiplog"
        )));
    }
    std::fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
    copy_database(&src, &data_dir.join(DB_FILE), "WAL")?;
    drop(src);
    // Opening migrates a backup taken by an older shiplog.
    drop(Store::open_dir(data_dir)?);
    Ok(version)
}

/// Writes a timestamped backup into `dir` (`shiplog-YYYYMMDDTHHMMSSZ.sqlite3`) and deletes the
/// oldest of those beyond `keep`. Returns the backup and how many old ones were removed.
pub fn backup_rotated(
    data_dir: &Path,
    dir: &Path,
    keep: usize,
) -> Result<(BackupReport, usize), BackupError> {
    let name = format!(
        "{ROTATED_PREFIX}{}{ROTATED_SUFFIX}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let report = backup(data_dir, &dir.join(name), true)?;
    let mut copies: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(ROTATED_PREFIX) && n.ends_with(ROTATED_SUFFIX))
        })
        .collect();
    // The timestamp sorts as text.
    copies.sort();
    let excess = copies.len().saturating_sub(keep.max(1));
    for old in &copies[..excess] {
        std::fs::remove_file(old).map_err(io_err(old))?;
    }
    Ok((report, excess))
}

const ROTATED_PREFIX: &str = "shiplog-";
const ROTATED_SUFFIX: &str = ".sqlite3";

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    /// Damage: the store is not sound.
    pub problems: Vec<String>,
    /// Worth knowing, not damage.
    pub warnings: Vec<String>,
    /// How many chunks had their sha1 verified.
    pub chunks_hashed: u64,
}

/// How many lines of one kind of finding are listed before the rest are only counted.
const LISTED: usize = 10;

/// Checks the store of `data_dir` without writing to it. `hash_chunks` also reads every chunk
/// and verifies its sha1 (the whole database is read).
pub fn check(data_dir: &Path, hash_chunks: bool) -> Result<CheckReport, BackupError> {
    let conn = open_read_only(&data_dir.join(DB_FILE))?;
    let mut report = CheckReport::default();

    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = migration_list().len() as i64;
    if version > known {
        report.problems.push(format!(
            "schema version {version} is newer than this shiplog knows ({known}); check it with a newer shiplog"
        ));
        return Ok(report);
    }
    if version < known {
        report.warnings.push(format!(
            "schema version {version}: the next `shiplog serve` migrates it to {known}"
        ));
    }

    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if lines != ["ok"] {
        report
            .problems
            .extend(lines.into_iter().map(|l| format!("integrity: {l}")));
    }

    let mut stmt = conn.prepare(
        "SELECT \"table\", parent, count(*) FROM pragma_foreign_key_check GROUP BY 1, 2 ORDER BY 1, 2",
    )?;
    let dangling = stmt.query_map([], |r| {
        Ok(format!(
            "{} rows of {} point at missing {} rows",
            r.get::<_, i64>(2)?,
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?
        ))
    })?;
    for line in dangling {
        report.problems.push(line?);
    }

    blob_findings(
        &conn,
        &mut report.problems,
        "SELECT id, size, length(data) FROM blobs WHERE backend_id IS NULL AND size <> length(data)",
        |r| {
            Ok(format!(
                "chunk {} says {} bytes but holds {}",
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?
            ))
        },
    )?;
    blob_findings(
        &conn,
        &mut report.problems,
        "SELECT f.id, f.name, f.size, coalesce(sum(b.size), 0) FROM files f
           LEFT JOIN file_blobs fb ON fb.file_id = f.id LEFT JOIN blobs b ON b.id = fb.blob_id
          GROUP BY f.id HAVING f.size <> coalesce(sum(b.size), 0)",
        |r| {
            Ok(format!(
                "file {} ({}) is {} bytes but its chunks add up to {}",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?
            ))
        },
    )?;
    blob_findings(
        &conn,
        &mut report.problems,
        "SELECT file_id, position, offset, expected FROM (
            SELECT fb.file_id, fb.position, fb.offset,
                   coalesce(sum(b.size) OVER (PARTITION BY fb.file_id ORDER BY fb.position
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS expected
              FROM file_blobs fb JOIN blobs b ON b.id = fb.blob_id)
          WHERE offset <> expected",
        |r| {
            Ok(format!(
                "file {} chunk {} is at offset {} instead of {}",
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?
            ))
        },
    )?;
    blob_findings(
        &conn,
        &mut report.warnings,
        "SELECT f.id, f.name FROM files f
          WHERE NOT EXISTS (SELECT 1 FROM release_files r WHERE r.file_id = f.id)
            AND NOT EXISTS (SELECT 1 FROM artifact_bundles a WHERE a.file_id = f.id)",
        |r| {
            Ok(format!(
                "file {} ({}) belongs to no release file or bundle",
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?
            ))
        },
    )?;
    let (orphans, orphan_bytes): (i64, Option<i64>) = conn.query_row(
        "SELECT count(*), sum(size) FROM blobs
          WHERE NOT EXISTS (SELECT 1 FROM file_blobs fb WHERE fb.blob_id = blobs.id)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if orphans > 0 {
        report.warnings.push(format!(
            "{orphans} chunks ({} bytes) are used by no file: an upload in progress, or left over; \
             `shiplog artifacts prune` (or a prune_artifacts schedule) removes those unused for an hour",
            orphan_bytes.unwrap_or(0)
        ));
    }

    if hash_chunks {
        let mut stmt = conn.prepare("SELECT id, sha1, data FROM blobs WHERE backend_id IS NULL")?;
        let mut rows = stmt.query([])?;
        let mut bad = Vec::new();
        while let Some(row) = rows.next()? {
            let data = row.get_ref(2)?.as_blob().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                )
            })?;
            let actual = hex::encode(Sha1::digest(data));
            let named: String = row.get(1)?;
            report.chunks_hashed += 1;
            if actual != named {
                bad.push(format!(
                    "chunk {} is named {named} but hashes to {actual}",
                    row.get::<_, i64>(0)?
                ));
            }
        }
        list_findings(&mut report.problems, bad);
    }
    Ok(report)
}

/// Runs a query whose rows are findings and adds them to `out`, the first [`LISTED`] in full.
fn blob_findings(
    conn: &Connection,
    out: &mut Vec<String>,
    sql: &str,
    describe: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<String>,
) -> Result<(), BackupError> {
    let mut stmt = conn.prepare(sql)?;
    let found = stmt
        .query_map([], describe)?
        .collect::<Result<Vec<_>, _>>()?;
    list_findings(out, found);
    Ok(())
}

fn list_findings(out: &mut Vec<String>, found: Vec<String>) {
    let more = found.len().saturating_sub(LISTED);
    out.extend(found.into_iter().take(LISTED));
    if more > 0 {
        out.push(format!("... and {more} more like the above"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_a_chunk(dir: &Path) -> Store {
        let store = Store::open_dir(dir).unwrap();
        store
            .write_blocking(|tx| {
                tx.execute(
                    "INSERT INTO organizations (slug, name, date_added) VALUES ('a', 'A', 'x')",
                    [],
                )?;
                crate::store::blobs::put(
                    tx,
                    &crate::store::blob_store::BlobStore::default(),
                    1,
                    &crate::store::blobs::sha1_hex(b"hello"),
                    b"hello",
                    "x",
                )
                .map_err(|e| StoreError::Task(e.to_string()))?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store
    }

    #[test]
    fn backup_restore_and_check_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let _store = store_with_a_chunk(&data);
        let file = dir.path().join("b.sqlite3");
        let report = backup(&data, &file, false).unwrap();
        assert!(report.bytes > 0);
        assert!(matches!(
            backup(&data, &file, false),
            Err(BackupError::Exists(_))
        ));
        let target = dir.path().join("restored");
        restore(&file, &target).unwrap();
        let checked = check(&target, true).unwrap();
        assert_eq!(checked.problems, Vec::<String>::new());
        assert_eq!(checked.chunks_hashed, 1);
        // The chunk is used by no file: a warning, not a problem.
        assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
        assert!(matches!(
            restore(&file, &target),
            Err(BackupError::NotEmpty(_))
        ));
    }

    #[test]
    fn check_names_a_corrupt_chunk_and_a_short_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_a_chunk(dir.path());
        store
            .write_blocking(|tx| {
                tx.execute("UPDATE blobs SET data = x'00', size = 1", [])?;
                tx.execute(
                    "INSERT INTO files (name, type, size, sha1, created) VALUES ('a.js', 'release.file', 5, '', 'x')",
                    [],
                )?;
                tx.execute(
                    "INSERT INTO file_blobs (file_id, position, blob_id, offset) VALUES (1, 0, 1, 0)",
                    [],
                )?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let report = check(dir.path(), true).unwrap();
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
        assert!(report.problems[0].contains("file 1 (a.js) is 5 bytes but its chunks add up to 1"));
        assert!(report.problems[1].starts_with("chunk 1 is named aaf4c61d"));
    }

    #[test]
    fn rotation_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let _store = store_with_a_chunk(&data);
        let out = dir.path().join("backups");
        std::fs::create_dir_all(&out).unwrap();
        for old in [
            "shiplog-20200101T000000Z.sqlite3",
            "shiplog-20210101T000000Z.sqlite3",
        ] {
            std::fs::write(out.join(old), b"old").unwrap();
        }
        std::fs::write(out.join("notes.txt"), b"mine").unwrap();
        let (report, removed) = backup_rotated(&data, &out, 2).unwrap();
        assert_eq!(removed, 1);
        assert!(report.path.exists());
        assert!(out.join("shiplog-20210101T000000Z.sqlite3").exists());
        assert!(!out.join("shiplog-20200101T000000Z.sqlite3").exists());
        assert!(out.join("notes.txt").exists());
    }

    #[test]
    fn restore_refuses_what_is_not_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.sqlite3");
        Connection::open(&file)
            .unwrap()
            .execute("CREATE TABLE t (a)", [])
            .unwrap();
        let err = restore(&file, &dir.path().join("d")).unwrap_err();
        assert!(err.to_string().contains("not a shiplog backup"), "{err}");
    }
}
