//! Release files, artifact bundles, the artifact index, debug ids, assemble state and drop
//! outcomes: the rows around the blob store (see the 0004 migration for what each table is).
//!
//! A release's artifacts come in two shapes that share one name space, the ident
//! (`sha1(url [+ "\0\0" + dist])`): a **release file** (`release_files`, the artifact stored as a
//! file of its own) and an **index entry** (`artifact_index`, the artifact inside a stored
//! bundle). Storing either for an ident removes the other, so a (release, dist, url) always
//! names one artifact, the newest. [`Listed`] is the common view the API shows; ids render as
//! `"12"` for release files and `"i12"` for index entries.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use super::blobs;

/// Which row an artifact id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactId {
    /// A `release_files` row.
    File(i64),
    /// An `artifact_index` row.
    Indexed(i64),
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArtifactId::File(id) => write!(f, "{id}"),
            ArtifactId::Indexed(id) => write!(f, "i{id}"),
        }
    }
}

impl FromStr for ArtifactId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.strip_prefix('i') {
            Some(rest) => rest.parse().map(ArtifactId::Indexed).map_err(|_| ()),
            None => s.parse().map(ArtifactId::File).map_err(|_| ()),
        }
    }
}

/// Where an artifact's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A file of its own.
    File { file_id: i64 },
    /// An entry of a stored bundle.
    Bundle {
        bundle_row: i64,
        bundle_id: String,
        file_id: i64,
        path: String,
    },
}

/// An artifact of a release, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: ArtifactId,
    pub release_id: i64,
    /// The URL (Sentry's release file `name`).
    pub name: String,
    pub dist: Option<String>,
    /// JSON object.
    pub headers: String,
    pub size: u64,
    /// `None` for an entry of a bundle whose verify step has not run yet.
    pub sha1: Option<String>,
    pub date_created: String,
    /// The source file type, when known (index entries record it; release files keep it in
    /// their headers' absence, so `None`).
    pub kind: Option<String>,
    pub content: Content,
}

const LIST_SQL: &str = "
    SELECT 'f', rf.id, rf.release_id, rf.name, rf.dist, f.headers, f.size, f.sha1, rf.date_created,
           NULL, f.id, NULL, NULL, NULL
      FROM release_files rf JOIN files f ON f.id = rf.file_id
     WHERE {file_where}
    UNION ALL
    SELECT 'i', ai.id, ai.release_id, ai.url, ai.dist, ai.headers, ai.size, ai.sha1, ai.date_created,
           ai.type, ab.file_id, ab.id, ab.bundle_id, ai.bundle_path
      FROM artifact_index ai JOIN artifact_bundles ab ON ab.id = ai.artifact_bundle_id
     WHERE {index_where}";

fn listed(r: &Row<'_>) -> rusqlite::Result<Listed> {
    let tag: String = r.get(0)?;
    let id: i64 = r.get(1)?;
    let file_id: i64 = r.get(10)?;
    let (id, content) = if tag == "f" {
        (ArtifactId::File(id), Content::File { file_id })
    } else {
        (
            ArtifactId::Indexed(id),
            Content::Bundle {
                bundle_row: r.get(11)?,
                bundle_id: r.get(12)?,
                file_id,
                path: r.get(13)?,
            },
        )
    };
    Ok(Listed {
        id,
        release_id: r.get(2)?,
        name: r.get(3)?,
        dist: r.get(4)?,
        headers: r.get(5)?,
        size: r.get::<_, i64>(6)? as u64,
        sha1: r.get(7)?,
        date_created: r.get(8)?,
        kind: r.get(9)?,
        content,
    })
}

fn list_sql(file_where: &str, index_where: &str, tail: &str) -> String {
    format!(
        "{} {tail}",
        LIST_SQL
            .replace("{file_where}", file_where)
            .replace("{index_where}", index_where)
    )
}

/// A release's artifacts, by name then dist; `dist` narrows to one dist (`Some(None)`: none).
pub fn list(
    conn: &Connection,
    release_id: i64,
    dist: Option<Option<&str>>,
    limit: usize,
    offset: usize,
) -> Result<Vec<Listed>, StoreError> {
    let (fw, iw) = match dist {
        None => ("rf.release_id = ?1", "ai.release_id = ?1"),
        Some(_) => (
            "rf.release_id = ?1 AND rf.dist IS ?2",
            "ai.release_id = ?1 AND ai.dist IS ?2",
        ),
    };
    let sql = list_sql(fw, iw, "ORDER BY 4, 5, 2 LIMIT ?3 OFFSET ?4");
    let mut stmt = conn.prepare_cached(&sql)?;
    let d = dist.flatten();
    let rows = stmt.query_map(params![release_id, d, limit as i64, offset as i64], listed)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One artifact of a release.
pub fn get(
    conn: &Connection,
    release_id: i64,
    id: ArtifactId,
) -> Result<Option<Listed>, StoreError> {
    let (fw, iw, key) = match id {
        ArtifactId::File(id) => ("rf.release_id = ?1 AND rf.id = ?2", "0", id),
        ArtifactId::Indexed(id) => ("0", "ai.release_id = ?1 AND ai.id = ?2", id),
    };
    let sql = list_sql(fw, iw, "");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![release_id, key], listed)
        .optional()?)
}

/// The artifacts of a release stored under any of `names` (see `manifest::normalize`), in the
/// order of `names`; `dist` must match exactly.
pub fn by_names(
    conn: &Connection,
    release_id: i64,
    dist: Option<&str>,
    names: &[String],
) -> Result<Vec<Listed>, StoreError> {
    let sql = list_sql(
        "rf.release_id = ?1 AND rf.dist IS ?2 AND rf.name = ?3",
        "ai.release_id = ?1 AND ai.dist IS ?2 AND ai.url = ?3",
        "",
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = Vec::new();
    for name in names {
        let rows = stmt.query_map(params![release_id, dist, name], listed)?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

/// Whether the release has an artifact (release file or index entry) under `ident`.
pub fn ident_taken(conn: &Connection, release_id: i64, ident: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM release_files WHERE release_id = ?1 AND ident = ?2)
                 OR EXISTS (SELECT 1 FROM artifact_index WHERE release_id = ?1 AND ident = ?2)",
        )?
        .query_row(params![release_id, ident], |r| r.get(0))?)
}

/// Removes whatever is stored under `ident` for the release (either shape), deleting the
/// files only it used.
fn clear_ident(conn: &Connection, release_id: i64, ident: &str) -> Result<(), StoreError> {
    let old: Option<i64> = conn
        .prepare_cached("SELECT file_id FROM release_files WHERE release_id = ?1 AND ident = ?2")?
        .query_row(params![release_id, ident], |r| r.get(0))
        .optional()?;
    conn.prepare_cached("DELETE FROM release_files WHERE release_id = ?1 AND ident = ?2")?
        .execute(params![release_id, ident])?;
    if let Some(file_id) = old {
        blobs::delete_file(conn, file_id)?;
    }
    conn.prepare_cached("DELETE FROM artifact_index WHERE release_id = ?1 AND ident = ?2")?
        .execute(params![release_id, ident])?;
    Ok(())
}

/// A release file to store.
#[derive(Debug, Clone)]
pub struct NewReleaseFile<'a> {
    pub org_id: i64,
    pub release_id: i64,
    pub dist: Option<&'a str>,
    pub ident: &'a str,
    pub name: &'a str,
    pub file_id: i64,
    pub now: &'a str,
}

/// Stores a release file, replacing whatever had its ident (Sentry swaps the file of an
/// existing row; the replaced file is deleted).
pub fn put_release_file(conn: &Connection, new: &NewReleaseFile<'_>) -> Result<i64, StoreError> {
    clear_ident(conn, new.release_id, new.ident)?;
    conn.prepare_cached(
        "INSERT INTO release_files (org_id, release_id, dist, ident, name, file_id, artifact_count, date_created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
    )?
    .execute(params![
        new.org_id,
        new.release_id,
        new.dist,
        new.ident,
        new.name,
        new.file_id,
        new.now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// An artifact index entry to store.
#[derive(Debug, Clone)]
pub struct NewIndexEntry<'a> {
    pub org_id: i64,
    pub release_id: i64,
    pub dist: Option<&'a str>,
    pub ident: &'a str,
    pub url: &'a str,
    pub bundle_row: i64,
    pub path: &'a str,
    pub kind: &'a str,
    pub headers: &'a str,
    /// As the zip's directory declares it until the verify step has read the entry.
    pub size: u64,
    /// `None` until the verify step has hashed the entry.
    pub sha1: Option<&'a str>,
    pub now: &'a str,
}

/// Adds (or replaces) the index entry for an ident.
pub fn put_index_entry(conn: &Connection, e: &NewIndexEntry<'_>) -> Result<i64, StoreError> {
    clear_ident(conn, e.release_id, e.ident)?;
    conn.prepare_cached(
        "INSERT INTO artifact_index (org_id, release_id, dist, ident, url, artifact_bundle_id, bundle_path,
                                     type, headers, size, sha1, date_created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        e.org_id,
        e.release_id,
        e.dist,
        e.ident,
        e.url,
        e.bundle_row,
        e.path,
        e.kind,
        e.headers,
        e.size as i64,
        e.sha1,
        e.now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Deletes one artifact of a release; `false` if there was none with that id.
pub fn delete(conn: &Connection, release_id: i64, id: ArtifactId) -> Result<bool, StoreError> {
    match id {
        ArtifactId::File(id) => {
            let file: Option<i64> = conn
                .prepare_cached(
                    "SELECT file_id FROM release_files WHERE release_id = ?1 AND id = ?2",
                )?
                .query_row(params![release_id, id], |r| r.get(0))
                .optional()?;
            let Some(file_id) = file else {
                return Ok(false);
            };
            conn.prepare_cached("DELETE FROM release_files WHERE id = ?1")?
                .execute([id])?;
            blobs::delete_file(conn, file_id)?;
            Ok(true)
        }
        ArtifactId::Indexed(id) => Ok(conn
            .prepare_cached("DELETE FROM artifact_index WHERE release_id = ?1 AND id = ?2")?
            .execute(params![release_id, id])?
            == 1),
    }
}

/// A bundle's verify step: records each entry's true size and sha1 in the index.
pub fn set_entry_digest(
    conn: &Connection,
    bundle_row: i64,
    path: &str,
    size: u64,
    sha1: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE artifact_index SET size = ?3, sha1 = ?4
          WHERE artifact_bundle_id = ?1 AND bundle_path = ?2",
    )?
    .execute(params![bundle_row, path, size as i64, sha1])?;
    Ok(())
}

/// Marks a bundle as read in full and found sound.
pub fn set_bundle_verified(
    conn: &Connection,
    bundle_row: i64,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE artifact_bundles SET verified = ?2 WHERE id = ?1")?
        .execute(params![bundle_row, now])?;
    Ok(())
}

/// Removes a bundle found corrupt, with everything that points into it (index entries, debug
/// ids, release and project links go by cascade) and its file; its blobs are left to prune.
pub fn withdraw_bundle(conn: &Connection, bundle_row: i64) -> Result<(), StoreError> {
    let file: Option<i64> = conn
        .prepare_cached("SELECT file_id FROM artifact_bundles WHERE id = ?1")?
        .query_row([bundle_row], |r| r.get(0))
        .optional()?;
    conn.prepare_cached("DELETE FROM artifact_bundles WHERE id = ?1")?
        .execute([bundle_row])?;
    if let Some(file_id) = file {
        blobs::delete_file(conn, file_id)?;
    }
    Ok(())
}

/// The bundle stored in row `bundle_row` with file `file_id`, if it is still that file and its
/// verify step is pending.
pub fn unverified_bundle(
    conn: &Connection,
    bundle_row: i64,
    file_id: i64,
) -> Result<Option<Bundle>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, org_id, bundle_id, file_id, artifact_count, date_added, date_last_modified
               FROM artifact_bundles WHERE id = ?1 AND file_id = ?2 AND verified IS NULL",
        )?
        .query_row(params![bundle_row, file_id], bundle_row_of)
        .optional()?)
}

/// A stored bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub id: i64,
    pub org_id: i64,
    pub bundle_id: String,
    pub file_id: i64,
    pub artifact_count: i64,
    pub date_added: String,
    pub date_last_modified: String,
}

fn bundle_row_of(r: &Row<'_>) -> rusqlite::Result<Bundle> {
    Ok(Bundle {
        id: r.get(0)?,
        org_id: r.get(1)?,
        bundle_id: r.get(2)?,
        file_id: r.get(3)?,
        artifact_count: r.get(4)?,
        date_added: r.get(5)?,
        date_last_modified: r.get(6)?,
    })
}

pub fn bundle_by_id(
    conn: &Connection,
    org_id: i64,
    bundle_id: &str,
) -> Result<Option<Bundle>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, org_id, bundle_id, file_id, artifact_count, date_added, date_last_modified
               FROM artifact_bundles WHERE org_id = ?1 AND bundle_id = ?2",
        )?
        .query_row(params![org_id, bundle_id], bundle_row_of)
        .optional()?)
}

/// Stores a bundle under its bundle id; a bundle already stored under that id gets the new
/// file (Sentry: "a duplicate bundle_id replaces the file"), and its old debug-id rows go.
pub fn put_bundle(
    conn: &Connection,
    org_id: i64,
    bundle_id: &str,
    file_id: i64,
    artifact_count: i64,
    now: &str,
) -> Result<i64, StoreError> {
    match bundle_by_id(conn, org_id, bundle_id)? {
        Some(old) => {
            conn.prepare_cached(
                "UPDATE artifact_bundles SET file_id = ?2, artifact_count = ?3, date_uploaded = ?4,
                        date_last_modified = ?4, verified = NULL WHERE id = ?1",
            )?
            .execute(params![old.id, file_id, artifact_count, now])?;
            if old.file_id != file_id {
                blobs::delete_file(conn, old.file_id)?;
            }
            conn.prepare_cached("DELETE FROM debug_id_artifacts WHERE artifact_bundle_id = ?1")?
                .execute([old.id])?;
            Ok(old.id)
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO artifact_bundles (org_id, bundle_id, file_id, artifact_count, date_added,
                                               date_uploaded, date_last_modified)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)",
            )?
            .execute(params![org_id, bundle_id, file_id, artifact_count, now])?;
            Ok(conn.last_insert_rowid())
        }
    }
}

pub fn link_release(
    conn: &Connection,
    release_id: i64,
    dist: Option<&str>,
    bundle_row: i64,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO release_artifact_bundles (release_id, dist, artifact_bundle_id, date_added)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )?
    .execute(params![release_id, dist.unwrap_or(""), bundle_row, now])?;
    Ok(())
}

pub fn link_project(conn: &Connection, project_id: i64, bundle_row: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO project_artifact_bundles (project_id, artifact_bundle_id) VALUES (?1, ?2)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![project_id, bundle_row])?;
    Ok(())
}

/// Where a debug id points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugTarget<'a> {
    Bundle { row: i64, path: &'a str },
    ReleaseFile(i64),
}

pub fn add_debug_id(
    conn: &Connection,
    org_id: i64,
    debug_id: &str,
    source_file_type: i64,
    url: &str,
    target: DebugTarget<'_>,
    now: &str,
) -> Result<(), StoreError> {
    let (bundle, path, file) = match target {
        DebugTarget::Bundle { row, path } => (Some(row), Some(path), None),
        DebugTarget::ReleaseFile(id) => (None, None, Some(id)),
    };
    conn.prepare_cached(
        "INSERT INTO debug_id_artifacts (org_id, debug_id, source_file_type, url, artifact_bundle_id,
                                         bundle_path, release_file_id, date_added)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        org_id,
        debug_id,
        source_file_type,
        url,
        bundle,
        path,
        file,
        now
    ])?;
    Ok(())
}

/// A debug-id lookup hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugHit {
    pub debug_id: String,
    pub source_file_type: i64,
    pub url: String,
    pub date_added: String,
    /// The artifact's bytes, and for release files the release version and artifact id.
    pub content: Content,
    pub release: Option<(String, ArtifactId)>,
    pub dist: Option<String>,
    pub size: Option<u64>,
    pub sha1: Option<String>,
}

/// Everything an organization stored under a debug id, newest first.
pub fn by_debug_id(
    conn: &Connection,
    org_id: i64,
    debug_id: &str,
) -> Result<Vec<DebugHit>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.debug_id, d.source_file_type, d.url, d.date_added,
                ab.id, ab.bundle_id, ab.file_id, d.bundle_path,
                rf.id, rf.file_id, r.version, rf.dist, f.size, f.sha1
           FROM debug_id_artifacts d
           LEFT JOIN artifact_bundles ab ON ab.id = d.artifact_bundle_id
           LEFT JOIN release_files rf ON rf.id = d.release_file_id
           LEFT JOIN releases r ON r.id = rf.release_id
           LEFT JOIN files f ON f.id = rf.file_id
          WHERE d.org_id = ?1 AND d.debug_id = ?2
          ORDER BY d.date_added DESC, d.id DESC",
    )?;
    let rows = stmt.query_map(params![org_id, debug_id], |r| {
        let bundle_row: Option<i64> = r.get(4)?;
        let (content, release) = match bundle_row {
            Some(row) => (
                Content::Bundle {
                    bundle_row: row,
                    bundle_id: r.get(5)?,
                    file_id: r.get(6)?,
                    path: r.get(7)?,
                },
                None,
            ),
            None => (
                Content::File { file_id: r.get(9)? },
                Some((r.get(10)?, ArtifactId::File(r.get(8)?))),
            ),
        };
        Ok(DebugHit {
            debug_id: r.get(0)?,
            source_file_type: r.get(1)?,
            url: r.get(2)?,
            date_added: r.get(3)?,
            content,
            release,
            dist: r.get(11)?,
            size: r.get::<_, Option<i64>>(12)?.map(|n| n as u64),
            sha1: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Assemble progress (Sentry's `ChunkFileState`, less `not_found`, which is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembleState {
    pub org_id: i64,
    pub task: String,
    pub checksum: String,
    pub generation: i64,
    pub state: String,
    pub detail: Option<String>,
    pub request: String,
    pub reported: bool,
    pub updated: String,
}

fn state_row(r: &Row<'_>) -> rusqlite::Result<AssembleState> {
    Ok(AssembleState {
        org_id: r.get(0)?,
        task: r.get(1)?,
        checksum: r.get(2)?,
        generation: r.get(3)?,
        state: r.get(4)?,
        detail: r.get(5)?,
        request: r.get(6)?,
        reported: r.get::<_, i64>(7)? != 0,
        updated: r.get(8)?,
    })
}

const STATE_COLS: &str =
    "org_id, task, checksum, generation, state, detail, request, reported, updated";

pub fn assemble_state(
    conn: &Connection,
    org_id: i64,
    task: &str,
    checksum: &str,
) -> Result<Option<AssembleState>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {STATE_COLS} FROM assemble_states WHERE org_id = ?1 AND task = ?2 AND checksum = ?3"
        ))?
        .query_row(params![org_id, task, checksum], state_row)
        .optional()?)
}

/// Starts (or restarts) an assemble: state `created`, next generation. Returns the generation.
pub fn start_assemble(
    conn: &Connection,
    org_id: i64,
    task: &str,
    checksum: &str,
    request: &str,
    now: &str,
) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO assemble_states (org_id, task, checksum, generation, state, detail, request, reported, updated)
             VALUES (?1, ?2, ?3, 0, 'created', NULL, ?4, 0, ?5)
             ON CONFLICT (org_id, task, checksum) DO UPDATE SET generation = generation + 1,
                 state = 'created', detail = NULL, request = excluded.request, reported = 0,
                 updated = excluded.updated
             RETURNING generation",
        )?
        .query_row(params![org_id, task, checksum, request, now], |r| r.get(0))?)
}

/// Moves an assemble of one generation to `state`; a newer generation is left alone.
#[allow(clippy::too_many_arguments)]
pub fn set_assemble_state(
    conn: &Connection,
    org_id: i64,
    task: &str,
    checksum: &str,
    generation: i64,
    state: &str,
    detail: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE assemble_states SET state = ?5, detail = ?6, updated = ?7
          WHERE org_id = ?1 AND task = ?2 AND checksum = ?3 AND generation = ?4",
    )?
    .execute(params![
        org_id, task, checksum, generation, state, detail, now
    ])?;
    Ok(())
}

pub fn mark_reported(
    conn: &Connection,
    org_id: i64,
    task: &str,
    checksum: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE assemble_states SET reported = 1 WHERE org_id = ?1 AND task = ?2 AND checksum = ?3",
    )?
    .execute(params![org_id, task, checksum])?;
    Ok(())
}

/// Assembles that were accepted but not finished (a restart redoes them).
pub fn unfinished_assembles(conn: &Connection) -> Result<Vec<AssembleState>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {STATE_COLS} FROM assemble_states WHERE state IN ('created', 'assembling')"
    ))?;
    let rows = stmt.query_map([], state_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What became of a drop-folder bundle with this content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropRecord {
    pub checksum: String,
    pub generation: i64,
    pub state: String,
    pub path: String,
    pub detail: Option<String>,
}

pub fn drop_record(conn: &Connection, checksum: &str) -> Result<Option<DropRecord>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT checksum, generation, state, path, detail FROM artifact_drops WHERE checksum = ?1",
        )?
        .query_row([checksum], |r| {
            Ok(DropRecord {
                checksum: r.get(0)?,
                generation: r.get(1)?,
                state: r.get(2)?,
                path: r.get(3)?,
                detail: r.get(4)?,
            })
        })
        .optional()?)
}

/// Records the outcome of a drop of one generation. A failure moves the checksum to the next
/// generation, so dropping the same bytes again (say, after creating the missing release) is a
/// new event rather than a duplicate.
pub fn record_drop(
    conn: &Connection,
    checksum: &str,
    generation: i64,
    ok: bool,
    path: &str,
    detail: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    let next = if ok { generation } else { generation + 1 };
    conn.prepare_cached(
        "INSERT INTO artifact_drops (checksum, generation, state, path, detail, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (checksum) DO UPDATE SET generation = max(generation, excluded.generation),
             state = excluded.state, path = excluded.path, detail = excluded.detail,
             updated = excluded.updated",
    )?
    .execute(params![
        checksum,
        next,
        if ok { "ok" } else { "failed" },
        path,
        detail,
        now
    ])?;
    Ok(())
}

/// The inbox event with this key: whether it was processed, and its payload.
pub fn inbox_event(
    conn: &Connection,
    idem_key: &str,
) -> Result<Option<(bool, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT processed_at IS NOT NULL, payload FROM inbox WHERE idem_key = ?1")?
        .query_row([idem_key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// What [`prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub release_files: u64,
    pub index_entries: u64,
    pub bundles: u64,
    pub files: u64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// Removes the artifacts of releases created before `release_cutoff` (and bundles tied to no
/// release uploaded before it), then every file nothing references, then every blob no file
/// references and no organization has used since `blob_cutoff` (an upload in progress). Run
/// it inside one transaction: a blob is only deleted when no remaining file refers to it.
pub fn prune(
    conn: &Connection,
    release_cutoff: &str,
    blob_cutoff: &str,
) -> Result<PruneReport, StoreError> {
    let mut report = PruneReport::default();
    let old_releases = "SELECT id FROM releases WHERE date_added < ?1";
    // Debug-id rows of release files go with them (ON DELETE CASCADE).
    report.release_files = conn.execute(
        &format!("DELETE FROM release_files WHERE release_id IN ({old_releases})"),
        [release_cutoff],
    )? as u64;
    report.index_entries = conn.execute(
        &format!("DELETE FROM artifact_index WHERE release_id IN ({old_releases})"),
        [release_cutoff],
    )? as u64;
    conn.execute(
        &format!("DELETE FROM release_artifact_bundles WHERE release_id IN ({old_releases})"),
        [release_cutoff],
    )?;
    // A bundle goes when no release links it and nothing indexes it any more, and it is old:
    // either it belonged to old releases only (links just removed) or it was uploaded without a
    // release (debug ids only) before the cutoff.
    report.bundles = conn.execute(
        "DELETE FROM artifact_bundles
          WHERE date_uploaded < ?1
            AND NOT EXISTS (SELECT 1 FROM release_artifact_bundles l WHERE l.artifact_bundle_id = artifact_bundles.id)
            AND NOT EXISTS (SELECT 1 FROM artifact_index ai WHERE ai.artifact_bundle_id = artifact_bundles.id)",
        [release_cutoff],
    )? as u64;
    report.files = conn.execute(
        "DELETE FROM files
          WHERE NOT EXISTS (SELECT 1 FROM release_files rf WHERE rf.file_id = files.id)
            AND NOT EXISTS (SELECT 1 FROM artifact_bundles ab WHERE ab.file_id = files.id)",
        [],
    )? as u64;
    let (n, bytes): (i64, Option<i64>) = conn.query_row(
        "SELECT count(*), sum(size) FROM blobs
          WHERE NOT EXISTS (SELECT 1 FROM file_blobs fb WHERE fb.blob_id = blobs.id)
            AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.blob_id = blobs.id AND o.last_used >= ?1)",
        [blob_cutoff],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // Objects outside the database go once this transaction commits (blob_store::empty_trash).
    conn.execute(
        "INSERT INTO blob_trash (url, object_key)
         SELECT k.url, blobs.object_key FROM blobs JOIN blob_backends k ON k.id = blobs.backend_id
          WHERE blobs.object_key IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM file_blobs fb WHERE fb.blob_id = blobs.id)
            AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.blob_id = blobs.id AND o.last_used >= ?1)
         ON CONFLICT DO NOTHING",
        [blob_cutoff],
    )?;
    conn.execute(
        "DELETE FROM blobs
          WHERE NOT EXISTS (SELECT 1 FROM file_blobs fb WHERE fb.blob_id = blobs.id)
            AND NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.blob_id = blobs.id AND o.last_used >= ?1)",
        [blob_cutoff],
    )?;
    report.blobs = n as u64;
    report.blob_bytes = bytes.unwrap_or(0) as u64;
    // Assemble states are kept: their generation numbers key the pipeline's events, and a
    // state deleted would let a later assemble of the same bundle reuse a spent key.
    Ok(report)
}

/// An index entry of a bundle whose release does not exist yet (migration 0011).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub release_name: String,
    pub dist: Option<String>,
    pub url: String,
    pub bundle_row: i64,
    pub path: String,
    pub kind: String,
    pub headers: String,
    pub size: u64,
    pub sha1: Option<String>,
}

/// Keeps an index entry until a release named `release_name` exists.
pub fn put_pending_entry(
    conn: &Connection,
    org_id: i64,
    e: &PendingEntry,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO pending_artifact_index (org_id, release_name, dist, url, artifact_bundle_id,
                                             bundle_path, type, headers, size, sha1, date_created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        org_id,
        e.release_name,
        e.dist,
        e.url,
        e.bundle_row,
        e.path,
        e.kind,
        e.headers,
        e.size as i64,
        e.sha1,
        now
    ])?;
    Ok(())
}

/// Removes and returns the entries waiting for a release of this name, oldest first.
pub fn take_pending(
    conn: &Connection,
    org_id: i64,
    release_name: &str,
) -> Result<Vec<PendingEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT release_name, dist, url, artifact_bundle_id, bundle_path, type, headers, size, sha1
         FROM pending_artifact_index WHERE org_id = ?1 AND release_name = ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![org_id, release_name], |r| {
        Ok(PendingEntry {
            release_name: r.get(0)?,
            dist: r.get(1)?,
            url: r.get(2)?,
            bundle_row: r.get(3)?,
            path: r.get(4)?,
            kind: r.get(5)?,
            headers: r.get(6)?,
            size: r.get::<_, i64>(7)? as u64,
            sha1: r.get(8)?,
        })
    })?;
    let out: Vec<PendingEntry> = rows.collect::<Result<_, _>>()?;
    conn.prepare_cached(
        "DELETE FROM pending_artifact_index WHERE org_id = ?1 AND release_name = ?2",
    )?
    .execute(params![org_id, release_name])?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_ids_round_trip() {
        for id in [ArtifactId::File(12), ArtifactId::Indexed(7)] {
            assert_eq!(id.to_string().parse::<ArtifactId>(), Ok(id));
        }
        assert_eq!("i12".parse::<ArtifactId>(), Ok(ArtifactId::Indexed(12)));
        assert!("x".parse::<ArtifactId>().is_err());
        assert!("i".parse::<ArtifactId>().is_err());
    }
}
