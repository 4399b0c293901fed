//! The blob store: files as ordered lists of content-addressed chunks, each stored once.
//!
//! Sentry's model (sentry-semantics.md §7.1), in SQLite:
//! - a **blob** is at most [`BLOB_SIZE`] bytes keyed by its sha1 (`blobs.sha1` is unique, so
//!   the same chunk uploaded by two releases, two bundles or two organizations is one row);
//!   `blob_owners` records which organizations uploaded it (Sentry's `FileBlobOwner`), because
//!   an organization may only assemble chunks it owns;
//! - a **file** (`files`) is a name, type, headers, size and sha1 plus its blobs in order
//!   (`file_blobs`, Sentry's `FileBlobIndex`), so files that share content share blobs.
//!
//! Writes verify: [`put`] refuses a chunk whose bytes do not hash to the sha1 it is named by.
//! Reads stream: [`BlobReader`] is a `Read + Seek` over a file that holds one blob in memory at
//! a time, and [`ChunkSink`] turns a byte stream into blobs a batch at a time. Nothing here
//! ever holds a whole file.
//!
//! Blobs no file references are not deleted here; `core::artifact::prune` does that in one
//! transaction, sparing chunks an upload in progress still needs (`blob_owners.last_used`).

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom};

use rusqlite::{Connection, OptionalExtension, params};
use sha1::{Digest, Sha1};

use super::blob_store::{self, BlobStore, Location};
use super::{Store, StoreError};

/// The largest blob: 1 MiB at rest, and the chunk size advertised to upload clients, so an
/// uploaded chunk is stored as it arrives and assembling a bundle copies no bytes.
pub const BLOB_SIZE: usize = 1 << 20;

/// How many bytes [`ChunkSink`] collects before writing them in one transaction: large enough
/// to amortise the commit, small enough to keep memory flat.
const SINK_BATCH: usize = 4 * BLOB_SIZE;

/// Why a chunk was refused.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The bytes do not hash to the name they were sent under.
    #[error("Checksum mismatch: the chunk named {expected} has sha1 {actual}")]
    Mismatch { expected: String, actual: String },
    /// A chunk larger than a blob.
    #[error("Chunk size too large: {size} bytes, the limit is {BLOB_SIZE}")]
    TooLarge { size: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for BlobError {
    fn from(e: rusqlite::Error) -> Self {
        BlobError::Store(e.into())
    }
}

pub use crate::model::manifest::sha1_hex;

/// A stored blob as a file references it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub id: i64,
    pub sha1: String,
    pub size: u64,
}

/// Stores a chunk after checking that `data` hashes to `sha1`, and records that `org_id` owns
/// it. Storing a chunk that exists only records the owner.
pub fn put(
    conn: &Connection,
    bs: &BlobStore,
    org_id: i64,
    sha1: &str,
    data: &[u8],
    now: &str,
) -> Result<BlobRef, BlobError> {
    let sha1 = verify(sha1, data)?;
    Ok(put_hashed(conn, bs, org_id, &sha1, data, now)?)
}

/// Checks a chunk against its name (and the blob size); returns the lowercase sha1. Callers
/// that must not hold the writer while hashing verify first and then [`put_hashed`].
pub fn verify(sha1: &str, data: &[u8]) -> Result<String, BlobError> {
    if data.len() > BLOB_SIZE {
        return Err(BlobError::TooLarge { size: data.len() });
    }
    let actual = sha1_hex(data);
    if !actual.eq_ignore_ascii_case(sha1) {
        return Err(BlobError::Mismatch {
            expected: sha1.to_string(),
            actual,
        });
    }
    Ok(actual)
}

/// [`put`] for bytes whose sha1 the caller has just computed (or [`verify`]d) itself.
///
/// A new blob's bytes go to `bs`'s target: into the row, or first to an object store under a
/// fresh key and then the row naming it (so a crash in between leaves an object nothing names,
/// never a row without bytes). Called in the write transaction, so prune cannot interleave.
pub fn put_hashed(
    conn: &Connection,
    bs: &BlobStore,
    org_id: i64,
    sha1: &str,
    data: &[u8],
    now: &str,
) -> Result<BlobRef, StoreError> {
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM blobs WHERE sha1 = ?1")?
        .query_row([sha1], |r| r.get(0))
        .optional()?;
    let id = match existing {
        Some(id) => id,
        None => match bs.target_url() {
            None => {
                conn.prepare_cached(
                    "INSERT INTO blobs (sha1, size, created, data) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![sha1, data.len() as i64, now, data])?;
                conn.last_insert_rowid()
            }
            Some(url) => {
                let key = bs.put_new(&url, sha1, data.to_vec())?;
                let backend = blob_store::backend_id(conn, &url)?;
                insert_object_row(conn, sha1, data.len() as u64, now, backend, &key)?
            }
        },
    };
    owned_by(conn, org_id, id, sha1, data.len() as u64, now)
}

/// Records that `org_id` owns blob `id` (used now) and returns the blob.
fn owned_by(
    conn: &Connection,
    org_id: i64,
    id: i64,
    sha1: &str,
    size: u64,
    now: &str,
) -> Result<BlobRef, StoreError> {
    conn.prepare_cached(
        "INSERT INTO blob_owners (org_id, blob_id, last_used) VALUES (?1, ?2, ?3)
         ON CONFLICT (org_id, blob_id) DO UPDATE SET last_used = excluded.last_used",
    )?
    .execute(params![org_id, id, now])?;
    Ok(BlobRef {
        id,
        sha1: sha1.to_string(),
        size,
    })
}

/// The row of a new blob whose bytes are object `key` of backend `backend`; returns its id.
fn insert_object_row(
    conn: &Connection,
    sha1: &str,
    size: u64,
    now: &str,
    backend: i64,
    key: &str,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO blobs (sha1, size, created, data, backend_id, object_key)
         VALUES (?1, ?2, ?3, X'', ?4, ?5)",
    )?
    .execute(params![sha1, size as i64, now, backend, key])?;
    Ok(conn.last_insert_rowid())
}

/// [`put_hashed`] for a blob whose object, when it was new, the caller already wrote
/// (`written`: backend id, its URL and the object's key). A blob stored meanwhile by another
/// writer keeps its row, and the object written for nothing is queued for deletion.
fn put_written(
    conn: &Connection,
    bs: &BlobStore,
    org_id: i64,
    sha1: &str,
    data: &[u8],
    written: Option<(i64, &str, &str)>,
    now: &str,
) -> Result<BlobRef, StoreError> {
    let size = data.len() as u64;
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM blobs WHERE sha1 = ?1")?
        .query_row([sha1], |r| r.get(0))
        .optional()?;
    let id = match (existing, written) {
        (Some(id), written) => {
            if let Some((_, url, key)) = written {
                blob_store::trash(conn, url, key)?;
            }
            id
        }
        (None, Some((backend, _, key))) => insert_object_row(conn, sha1, size, now, backend, key)?,
        // Seen stored before the objects were written, pruned since (rare): written now.
        (None, None) => return put_hashed(conn, bs, org_id, sha1, data, now),
    };
    owned_by(conn, org_id, id, sha1, size, now)
}

/// The blobs named by `chunks` that `org_id` owns, in the order given (`None` where missing).
pub fn owned(
    conn: &Connection,
    org_id: i64,
    chunks: &[String],
) -> Result<Vec<Option<BlobRef>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT b.id, b.sha1, b.size FROM blobs b JOIN blob_owners o ON o.blob_id = b.id
         WHERE b.sha1 = ?1 AND o.org_id = ?2",
    )?;
    let mut out = Vec::with_capacity(chunks.len());
    for sha1 in chunks {
        let sha1 = sha1.to_ascii_lowercase();
        out.push(
            stmt.query_row(params![sha1, org_id], |r| {
                Ok(BlobRef {
                    id: r.get(0)?,
                    sha1: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()?,
        );
    }
    Ok(out)
}

/// Sentry's `find_missing_chunks`: the chunks (deduplicated, in first-seen order) that `org_id`
/// does not own. The owned ones are marked used now, so prune spares them until they are
/// assembled.
pub fn missing(
    conn: &Connection,
    org_id: i64,
    chunks: &[String],
    now: &str,
) -> Result<Vec<String>, StoreError> {
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<String> = chunks
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| seen.insert(c.clone()))
        .collect();
    let found = owned(conn, org_id, &unique)?;
    let mut touch = conn.prepare_cached(
        "UPDATE blob_owners SET last_used = ?3 WHERE org_id = ?1 AND blob_id = ?2",
    )?;
    let mut out = Vec::new();
    for (sha1, blob) in unique.into_iter().zip(found) {
        match blob {
            Some(b) => {
                touch.execute(params![org_id, b.id, now])?;
            }
            None => out.push(sha1),
        }
    }
    Ok(out)
}

/// A file to create.
#[derive(Debug, Clone)]
pub struct NewFile<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    /// A JSON object.
    pub headers: &'a str,
    pub size: u64,
    pub sha1: &'a str,
    pub created: &'a str,
}

/// Creates a file made of `blobs` in order (duplicates allowed, as in Sentry).
pub fn insert_file(
    conn: &Connection,
    new: &NewFile<'_>,
    blobs: &[BlobRef],
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO files (name, type, headers, size, sha1, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        new.name,
        new.kind,
        new.headers,
        new.size as i64,
        new.sha1,
        new.created
    ])?;
    let file_id = conn.last_insert_rowid();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO file_blobs (file_id, position, blob_id, offset) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut offset = 0u64;
    for (position, blob) in blobs.iter().enumerate() {
        stmt.execute(params![file_id, position as i64, blob.id, offset as i64])?;
        offset += blob.size;
    }
    Ok(file_id)
}

/// Makes file `file_id` (same bytes) out of `blobs` instead of its current blobs.
pub fn replace_parts(conn: &Connection, file_id: i64, blobs: &[BlobRef]) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM file_blobs WHERE file_id = ?1")?
        .execute([file_id])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO file_blobs (file_id, position, blob_id, offset) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut offset = 0u64;
    for (position, blob) in blobs.iter().enumerate() {
        stmt.execute(params![file_id, position as i64, blob.id, offset as i64])?;
        offset += blob.size;
    }
    Ok(())
}

/// A stored file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub headers: String,
    pub size: u64,
    pub sha1: String,
    pub created: String,
}

pub fn file(conn: &Connection, id: i64) -> Result<Option<File>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, name, type, headers, size, sha1, created FROM files WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(File {
                id: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                headers: r.get(3)?,
                size: r.get::<_, i64>(4)? as u64,
                sha1: r.get(5)?,
                created: r.get(6)?,
            })
        })
        .optional()?)
}

/// Deletes a file and its blob list. The blobs stay until prune finds them unreferenced; those
/// no other file uses lose their "recently used" mark, which otherwise spares them from prune
/// for an hour as if an upload still needed them.
pub fn delete_file(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE blob_owners SET last_used = ''
          WHERE blob_id IN (SELECT blob_id FROM file_blobs WHERE file_id = ?1)
            AND NOT EXISTS (SELECT 1 FROM file_blobs fb
                             WHERE fb.blob_id = blob_owners.blob_id AND fb.file_id <> ?1)",
    )?
    .execute([id])?;
    conn.prepare_cached("DELETE FROM files WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// One blob of a file: where it sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub blob_id: i64,
    pub offset: u64,
    pub size: u64,
}

/// A file's blobs in order.
pub fn parts(conn: &Connection, file_id: i64) -> Result<Vec<Part>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT fb.blob_id, fb.offset, b.size FROM file_blobs fb JOIN blobs b ON b.id = fb.blob_id
         WHERE fb.file_id = ?1 ORDER BY fb.position",
    )?;
    let rows = stmt.query_map([file_id], |r| {
        Ok(Part {
            blob_id: r.get(0)?,
            offset: r.get::<_, i64>(1)? as u64,
            size: r.get::<_, i64>(2)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// [`parts`] with each blob's sha1, in the same order.
pub fn parts_with_sha1(conn: &Connection, file_id: i64) -> Result<Vec<(Part, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT fb.blob_id, fb.offset, b.size, b.sha1 FROM file_blobs fb
           JOIN blobs b ON b.id = fb.blob_id
         WHERE fb.file_id = ?1 ORDER BY fb.position",
    )?;
    let rows = stmt.query_map([file_id], |r| {
        Ok((
            Part {
                blob_id: r.get(0)?,
                offset: r.get::<_, i64>(1)? as u64,
                size: r.get::<_, i64>(2)? as u64,
            },
            r.get(3)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Parts for a list of blobs laid end to end (a bundle about to become a file).
pub fn parts_of(blobs: &[BlobRef]) -> Vec<Part> {
    let mut offset = 0;
    blobs
        .iter()
        .map(|b| {
            let p = Part {
                blob_id: b.id,
                offset,
                size: b.size,
            };
            offset += b.size;
            p
        })
        .collect()
}

/// One blob's bytes, wherever its row says they are.
pub fn blob_data(conn: &Connection, bs: &BlobStore, blob_id: i64) -> Result<Vec<u8>, StoreError> {
    // `shiplog blobs migrate` may move the bytes between reading the row and fetching the
    // object (it deletes the old object after the row points to the new one): look again once.
    let mut retried = false;
    loop {
        let Some(at) = blob_store::location(conn, blob_id)? else {
            return Err(StoreError::Task(format!("blob {blob_id} does not exist")));
        };
        match at {
            Location::Inline => {
                return Ok(conn
                    .prepare_cached("SELECT data FROM blobs WHERE id = ?1")?
                    .query_row([blob_id], |r| r.get(0))?);
            }
            Location::Object { url, key } => match bs.get(&url, &key) {
                Ok(data) => return Ok(data),
                Err(blob_store::BlobStoreError::NotFound { .. }) if !retried => retried = true,
                Err(e) => return Err(e.into()),
            },
        }
    }
}

/// A file's bytes as `Read + Seek`, fetching one blob at a time from `conn`.
///
/// With [`BlobReader::digesting`] it also hashes the whole file on the way: each blob is fed
/// to a sha1 when it is fetched in order, so a reader that walks the file front to back (a zip
/// read entry by entry in file order) verifies the file's checksum without a second pass;
/// [`BlobReader::finish_digest`] fetches whatever was skipped.
pub struct BlobReader<'c> {
    conn: &'c Connection,
    bs: &'c BlobStore,
    parts: Vec<Part>,
    len: u64,
    pos: u64,
    cached: Option<(usize, Vec<u8>)>,
    digest: Option<(Sha1, usize)>,
    /// Blobs read in order are also written anew through this sink (see [`Self::realigning`]).
    realign: Option<(ChunkSink<'c>, usize)>,
}

impl<'c> BlobReader<'c> {
    pub fn new(conn: &'c Connection, bs: &'c BlobStore, parts: Vec<Part>) -> Self {
        let len = parts.last().map_or(0, |p| p.offset + p.size);
        BlobReader {
            conn,
            bs,
            parts,
            len,
            pos: 0,
            cached: None,
            digest: None,
            realign: None,
        }
    }

    /// Also writes the file anew through `sink` as it is read front to back (a sink cutting
    /// at a zip's entries turns an upload's client-cut chunks into per-entry blobs in the same
    /// pass that verifies them); [`BlobReader::finish`] writes whatever was skipped.
    pub fn realigning(mut self, sink: ChunkSink<'c>) -> Self {
        self.realign = Some((sink, 0));
        self
    }

    /// [`BlobReader::finish_digest`], and what the realigning sink stored, if any.
    pub fn finish(mut self) -> io::Result<(Option<String>, Option<Stored>)> {
        let realigned = match self.realign.take() {
            Some((mut sink, next)) => {
                for part in &self.parts[next..] {
                    let data =
                        blob_data(self.conn, self.bs, part.blob_id).map_err(io::Error::other)?;
                    sink.push(&data).map_err(io::Error::other)?;
                }
                Some(sink.finish().map_err(io::Error::other)?)
            }
            None => None,
        };
        Ok((self.finish_digest()?, realigned))
    }

    /// Hashes the file as it is read (see the type's docs).
    pub fn digesting(mut self) -> Self {
        self.digest = Some((Sha1::new(), 0));
        self
    }

    /// The whole file's sha1 (fetching the blobs not yet hashed), if digesting.
    pub fn finish_digest(mut self) -> io::Result<Option<String>> {
        let Some((mut hasher, next)) = self.digest.take() else {
            return Ok(None);
        };
        for part in &self.parts[next..] {
            let data = blob_data(self.conn, self.bs, part.blob_id).map_err(io::Error::other)?;
            hasher.update(&data);
        }
        Ok(Some(hex::encode(hasher.finalize())))
    }

    fn load(&mut self, i: usize) -> io::Result<()> {
        let data =
            blob_data(self.conn, self.bs, self.parts[i].blob_id).map_err(io::Error::other)?;
        if data.len() as u64 != self.parts[i].size {
            return Err(io::Error::other(format!(
                "blob {} has {} bytes, expected {}",
                self.parts[i].blob_id,
                data.len(),
                self.parts[i].size
            )));
        }
        if let Some((hasher, next)) = self.digest.as_mut()
            && *next == i
        {
            hasher.update(&data);
            *next += 1;
        }
        if let Some((sink, next)) = self.realign.as_mut()
            && *next == i
        {
            sink.push(&data).map_err(io::Error::other)?;
            *next += 1;
        }
        self.cached = Some((i, data));
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn part_at(&self, pos: u64) -> Option<usize> {
        if pos >= self.len {
            return None;
        }
        let i = self.parts.partition_point(|p| p.offset + p.size <= pos);
        (i < self.parts.len()).then_some(i)
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(i) = self.part_at(self.pos) else {
            return Ok(0);
        };
        if self.cached.as_ref().map(|(c, _)| *c) != Some(i) {
            self.load(i)?;
        }
        let Some((_, data)) = &self.cached else {
            return Ok(0);
        };
        let start = (self.pos - self.parts[i].offset) as usize;
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlobReader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(t) => {
                self.pos = t;
                Ok(t)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )),
        }
    }
}

/// What [`ChunkSink::finish`] stored: the whole stream's sha1 and size and its blobs in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Empty from a sink made [`ChunkSink::without_digest`].
    pub sha1: String,
    pub size: u64,
    pub blobs: Vec<BlobRef>,
}

/// Turns a byte stream into blobs owned by one organization, a few blobs per transaction, and
/// hashes the whole stream on the way. Memory stays at one batch whatever the stream's length.
pub struct ChunkSink<'s> {
    store: &'s Store,
    org_id: i64,
    now: String,
    buf: Vec<u8>,
    batch: Vec<(String, Vec<u8>)>,
    batch_bytes: usize,
    blobs: Vec<BlobRef>,
    hasher: Option<Sha1>,
    size: u64,
    /// Bytes already sealed into blobs.
    sealed: u64,
    /// Stream offsets where a blob must end (ascending), see [`ChunkSink::cut_at`].
    cuts: std::collections::VecDeque<u64>,
}

impl<'s> ChunkSink<'s> {
    pub fn new(store: &'s Store, org_id: i64, now: &str) -> Self {
        ChunkSink {
            store,
            org_id,
            now: now.to_string(),
            buf: Vec::with_capacity(BLOB_SIZE),
            batch: Vec::new(),
            batch_bytes: 0,
            blobs: Vec::new(),
            hasher: Some(Sha1::new()),
            size: 0,
            sealed: 0,
            cuts: Default::default(),
        }
    }

    /// Ends a blob at each of these stream offsets as well as every [`BLOB_SIZE`] bytes after
    /// one. Given where each entry of a zip starts, every entry is cut into blobs from its own
    /// first byte, so the same entry in another bundle — at another offset, after another
    /// manifest — makes the same blobs and costs nothing to store again.
    pub fn cut_at(mut self, mut offsets: Vec<u64>) -> Self {
        offsets.sort_unstable();
        offsets.dedup();
        self.cuts = offsets.into_iter().filter(|&o| o > 0).collect();
        self
    }

    /// A sink that does not hash the whole stream, for a caller that hashes the same bytes on
    /// another thread (a file read twice costs less than a second sha1 pass on this one).
    pub fn without_digest(mut self) -> Self {
        self.hasher = None;
        self
    }

    /// Bytes taken so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, mut data: &[u8]) -> Result<(), StoreError> {
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(data);
        }
        self.size += data.len() as u64;
        while !data.is_empty() {
            let at = self.sealed + self.buf.len() as u64;
            while self.cuts.front().is_some_and(|&c| c <= at) {
                self.cuts.pop_front();
            }
            let mut room = BLOB_SIZE - self.buf.len();
            if let Some(&cut) = self.cuts.front() {
                room = room.min(usize::try_from(cut - at).unwrap_or(usize::MAX));
            }
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            let at = self.sealed + self.buf.len() as u64;
            if self.buf.len() == BLOB_SIZE || self.cuts.front() == Some(&at) {
                self.seal()?;
            }
        }
        Ok(())
    }

    /// Copies everything `reader` yields. Read errors are returned as `Err(Ok(io))`, store
    /// errors as `Err(Err(store))`, so callers can tell a bad input from a failing database.
    pub fn copy_from(
        &mut self,
        reader: &mut dyn Read,
    ) -> Result<(), Result<io::Error, StoreError>> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Ok(e)),
            };
            self.push(&buf[..n]).map_err(Err)?;
        }
    }

    fn seal(&mut self) -> Result<(), StoreError> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOB_SIZE));
        self.sealed += data.len() as u64;
        self.batch_bytes += data.len();
        self.batch.push((sha1_hex(&data), data));
        if self.batch_bytes >= SINK_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let (org_id, now) = (self.org_id, self.now.as_str());
        let bs = self.store.blob_store();
        let Some(url) = bs.target_url() else {
            let refs = self.store.write_blocking(|tx| {
                batch
                    .iter()
                    .map(|(sha1, data)| put_hashed(tx, &bs, org_id, sha1, data, now))
                    .collect::<Result<Vec<_>, StoreError>>()
            })?;
            self.blobs.extend(refs);
            return Ok(());
        };
        // An object store: the new blobs' objects are written first, together and outside the
        // write transaction (which other writers, ingest among them, wait for), then their rows.
        let stored: HashSet<String> = self.store.read_blocking(|c| {
            let mut stmt = c.prepare_cached("SELECT 1 FROM blobs WHERE sha1 = ?1")?;
            let mut found = HashSet::new();
            for (sha1, _) in &batch {
                if stmt.exists([sha1])? {
                    found.insert(sha1.clone());
                }
            }
            Ok::<_, StoreError>(found)
        })?;
        // Shared, not copied: the bytes go to the object store and stay for the rows' pass.
        let batch: Vec<(String, bytes::Bytes)> = batch
            .into_iter()
            .map(|(sha1, data)| (sha1, bytes::Bytes::from(data)))
            .collect();
        let mut new: Vec<(String, bytes::Bytes)> = Vec::new();
        for (sha1, data) in &batch {
            if !stored.contains(sha1) && !new.iter().any(|(s, _)| s == sha1) {
                new.push((sha1.clone(), data.clone()));
            }
        }
        let names: Vec<String> = new.iter().map(|(s, _)| s.clone()).collect();
        let keys: HashMap<String, String> =
            names.into_iter().zip(bs.put_new_many(&url, new)?).collect();
        let refs = self.store.write_blocking(|tx| {
            let backend = blob_store::backend_id(tx, &url)?;
            let mut refs = Vec::with_capacity(batch.len());
            let mut placed: HashSet<&str> = HashSet::new();
            for (sha1, data) in &batch {
                // A blob twice in the batch was written once: only its first row takes the key.
                let written = keys
                    .get(sha1)
                    .filter(|_| placed.insert(sha1.as_str()))
                    .map(|k| (backend, url.as_str(), k.as_str()));
                refs.push(put_written(tx, &bs, org_id, sha1, data, written, now)?);
            }
            Ok::<_, StoreError>(refs)
        })?;
        self.blobs.extend(refs);
        Ok(())
    }

    /// Writes what is left and returns the stream's sha1, size and blobs.
    pub fn finish(mut self) -> Result<Stored, StoreError> {
        if !self.buf.is_empty() {
            let data = std::mem::take(&mut self.buf);
            self.batch_bytes += data.len();
            self.batch.push((sha1_hex(&data), data));
        }
        self.flush()?;
        Ok(Stored {
            sha1: self
                .hasher
                .map(|h| hex::encode(h.finalize()))
                .unwrap_or_default(),
            size: self.size,
            blobs: self.blobs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let org = store
            .write_blocking(|tx| crate::store::orgs::ensure_org(tx, "acme", "t"))
            .unwrap();
        (dir, store, org.id)
    }

    #[test]
    fn a_chunk_is_refused_unless_it_matches_its_name() {
        let (_d, store, org) = store();
        let err = store
            .write_blocking(|tx| {
                put(
                    tx,
                    &BlobStore::default(),
                    org,
                    &sha1_hex(b"other"),
                    b"data",
                    "t",
                )
            })
            .unwrap_err();
        assert!(matches!(err, BlobError::Mismatch { .. }), "{err}");
        assert!(err.to_string().starts_with("Checksum mismatch"));
        let big = vec![0u8; BLOB_SIZE + 1];
        let err = store
            .write_blocking(|tx| put(tx, &BlobStore::default(), org, &sha1_hex(&big), &big, "t"))
            .unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { .. }));
        let n: i64 = store
            .read_blocking(|c| {
                c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn chunks_are_stored_once_and_owned_per_org() {
        let (_d, store, org) = store();
        let other = store
            .write_blocking(|tx| crate::store::orgs::ensure_org(tx, "other", "t"))
            .unwrap()
            .id;
        let sha = sha1_hex(b"hello");
        let a = store
            .write_blocking(|tx| put(tx, &BlobStore::default(), org, &sha, b"hello", "t"))
            .unwrap();
        let b = store
            .write_blocking(|tx| {
                put(
                    tx,
                    &BlobStore::default(),
                    org,
                    &sha.to_uppercase(),
                    b"hello",
                    "t",
                )
            })
            .unwrap();
        assert_eq!(a, b);
        let missing_other = store
            .write_blocking(|tx| missing(tx, other, std::slice::from_ref(&sha), "t"))
            .unwrap();
        assert_eq!(missing_other, vec![sha.clone()]);
        store
            .write_blocking(|tx| put(tx, &BlobStore::default(), other, &sha, b"hello", "t"))
            .unwrap();
        let (blobs, owners): (i64, i64) = store
            .read_blocking(|c| {
                Ok::<_, StoreError>((
                    c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?,
                    c.query_row("SELECT count(*) FROM blob_owners", [], |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!((blobs, owners), (1, 2));
    }

    #[test]
    fn cut_points_make_the_same_entry_the_same_blobs_wherever_it_sits() {
        let (_d, store, org) = store();
        let entry: Vec<u8> = (0..BLOB_SIZE + 1000).map(|i| (i % 253) as u8).collect();
        let stream = |head: &[u8]| {
            let mut s = head.to_vec();
            s.extend_from_slice(&entry);
            s.extend_from_slice(b"tail");
            let cuts = vec![head.len() as u64, (head.len() + entry.len()) as u64];
            (s, cuts)
        };
        let (a, cuts_a) = stream(b"short head");
        let (b, cuts_b) = stream(b"a longer head, so every byte after it shifts");
        let mut sink = ChunkSink::new(&store, org, "t").cut_at(cuts_a);
        sink.push(&a).unwrap();
        let first = sink.finish().unwrap();
        let total = |s: &Store| -> i64 {
            s.read_blocking(|c| {
                c.query_row("SELECT sum(size) FROM blobs", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap()
        };
        let before = total(&store);
        let mut sink = ChunkSink::new(&store, org, "t").cut_at(cuts_b);
        for piece in b.chunks(77_777) {
            sink.push(piece).unwrap();
        }
        let second = sink.finish().unwrap();
        assert_eq!(second.sha1, sha1_hex(&b));
        // Head, the entry's two blobs, tail: only the new head is new.
        assert_eq!(second.blobs.len(), 4);
        assert_eq!(first.blobs[1..], second.blobs[1..]);
        assert_eq!(total(&store) - before, 44);
    }

    #[test]
    fn a_sink_splits_dedupes_and_reads_back() {
        let (_d, store, org) = store();
        // 2.5 blobs of a repeating pattern: the two full blobs are identical, so stored once.
        let data: Vec<u8> = (0..BLOB_SIZE * 5 / 2).map(|i| (i % 251) as u8).collect();
        let mut pattern = data.clone();
        pattern.truncate(BLOB_SIZE);
        let mut same = pattern.clone();
        same.extend_from_slice(&pattern);
        same.extend_from_slice(&pattern[..BLOB_SIZE / 2]);
        let mut sink = ChunkSink::new(&store, org, "t");
        for piece in same.chunks(300_000) {
            sink.push(piece).unwrap();
        }
        let stored = sink.finish().unwrap();
        assert_eq!(stored.size, same.len() as u64);
        assert_eq!(stored.sha1, sha1_hex(&same));
        assert_eq!(stored.blobs.len(), 3);
        assert_eq!(stored.blobs[0], stored.blobs[1]);
        let n: i64 = store
            .read_blocking(|c| {
                c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(n, 2);

        let bs = BlobStore::default();
        let back = store
            .read_blocking(|c| {
                let mut r = BlobReader::new(c, &bs, parts_of(&stored.blobs));
                let mut out = Vec::new();
                r.read_to_end(&mut out)
                    .map_err(|e| StoreError::Task(e.to_string()))?;
                // Seek into the middle of the second blob and read across into the third.
                let mut r = BlobReader::new(c, &bs, parts_of(&stored.blobs)).digesting();
                r.seek(SeekFrom::End(-10)).unwrap();
                let mut end = Vec::new();
                r.read_to_end(&mut end).unwrap();
                assert_eq!(end, &same[same.len() - 10..]);
                r.seek(SeekFrom::Start(BLOB_SIZE as u64 + 10)).unwrap();
                let mut tail = vec![0u8; BLOB_SIZE];
                r.read_exact(&mut tail).unwrap();
                assert_eq!(&tail[..], &same[BLOB_SIZE + 10..2 * BLOB_SIZE + 10]);
                // Read out of order, the digest is still the whole file's.
                assert_eq!(r.finish_digest().unwrap(), Some(sha1_hex(&same)));
                Ok::<_, StoreError>(out)
            })
            .unwrap();
        assert!(back == same);
    }
}
