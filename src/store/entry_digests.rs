//! What a zip entry stored in blobs of its own inflates to (migration 0022).
//!
//! The verify step of a bundle (`core::artifact::verify_bundle`) inflates every entry, checks
//! it against the zip directory and hashes it. The outcome depends only on the blobs holding
//! the entry (its local header and compressed bytes, content-addressed) and on the directory's
//! facts for it, so once found sound it is recorded here and a later bundle holding the same
//! blobs under the same facts skips the read.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The zip directory's facts about one entry that its inflated bytes are checked against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryFacts {
    /// The compression method, as the zip crate names it (`Deflated`, `Stored`, ...).
    pub method: String,
    pub compressed_size: u64,
    /// The declared inflated size.
    pub size: u64,
    pub crc32: u32,
}

/// The blobs holding one entry: `digest` names their contents in order, `first_blob` is the
/// row the record goes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryBlobs {
    pub digest: String,
    pub first_blob: i64,
}

/// The sha1 of what the entry in `blobs` inflates to under `facts`, when a verify step found it.
pub fn get(
    conn: &Connection,
    blobs: &EntryBlobs,
    facts: &EntryFacts,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT sha1 FROM blob_entry_digests
              WHERE blobs = ?1 AND method = ?2 AND compressed_size = ?3 AND size = ?4
                AND crc32 = ?5",
        )?
        .query_row(
            params![
                blobs.digest,
                facts.method,
                facts.compressed_size as i64,
                facts.size as i64,
                i64::from(facts.crc32)
            ],
            |r| r.get(0),
        )
        .optional()?)
}

/// Records that the entry in `blobs` inflates under `facts` to bytes hashing to `sha1`.
pub fn put(
    conn: &Connection,
    blobs: &EntryBlobs,
    facts: &EntryFacts,
    sha1: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO blob_entry_digests (blobs, method, compressed_size, size, crc32, sha1, blob_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        blobs.digest,
        facts.method,
        facts.compressed_size as i64,
        facts.size as i64,
        i64::from(facts.crc32),
        sha1,
        blobs.first_blob
    ])?;
    Ok(())
}
