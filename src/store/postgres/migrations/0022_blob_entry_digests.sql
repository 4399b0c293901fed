-- What a zip entry stored in blobs of its own inflates to (see the SQLite migration of the
-- same name): the verify step of a later bundle holding the same blobs under the same
-- directory facts takes the entry's size and sha1 from here instead of reading it again.
CREATE TABLE blob_entry_digests (
    blobs           TEXT COLLATE "C" NOT NULL,
    method          TEXT COLLATE "C" NOT NULL,
    compressed_size BIGINT NOT NULL,
    size            BIGINT NOT NULL,
    crc32           BIGINT NOT NULL,
    sha1            TEXT COLLATE "C" NOT NULL,
    blob_id         BIGINT NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    PRIMARY KEY (blobs, method, compressed_size, size, crc32)
);
CREATE INDEX blob_entry_digests_by_blob ON blob_entry_digests (blob_id);
