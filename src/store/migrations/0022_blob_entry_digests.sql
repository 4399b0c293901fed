-- What a zip entry stored in blobs of its own inflates to. A bundle is stored cut at its
-- entries (core::artifact::entry_offsets), so each entry's local header and compressed bytes
-- are blobs no other entry shares (several when the entry is over a blob's size). Once the
-- verify step has inflated an entry and found it sound (CRC-32 and size as the zip directory
-- declares), the result is a function of those blobs' bytes and of the directory's facts, so a
-- later bundle holding the same blobs under the same facts takes the entry's size and sha1 from
-- here instead of reading it again: a vendor bundle dropped again under the next release
-- reaches "verified" without a second pass over its bytes.
CREATE TABLE blob_entry_digests (
    blobs           TEXT NOT NULL,     -- sha1 of the entry's blobs' sha1s, in order, comma-joined
    method          TEXT NOT NULL,     -- the zip compression method, as the zip crate names it
    compressed_size INTEGER NOT NULL,
    size            INTEGER NOT NULL,
    crc32           INTEGER NOT NULL,
    sha1            TEXT NOT NULL,     -- of the inflated bytes
    -- The entry's first blob: the row goes when that blob is pruned.
    blob_id         INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    PRIMARY KEY (blobs, method, compressed_size, size, crc32)
) WITHOUT ROWID;
CREATE INDEX blob_entry_digests_by_blob ON blob_entry_digests (blob_id);
