-- Artifact bytes outside the database (store::blob_store). A blob row stays the index: its
-- sha1 (the dedupe key), size, owners and the files using it. Its bytes are either in
-- `data` (backend_id NULL, the `db` backend, as before) or in the object store named by
-- `backend_id` under `object_key` (then `data` is empty).
CREATE TABLE blob_backends (
    id   INTEGER PRIMARY KEY,
    url  TEXT NOT NULL UNIQUE                 -- file:///path or s3://bucket/prefix
);
ALTER TABLE blobs ADD COLUMN backend_id INTEGER REFERENCES blob_backends(id);
-- Unique per row (sha1 plus a random suffix), so an object is written once and deleting the
-- object of a pruned row can never remove the bytes of a newer row with the same sha1.
ALTER TABLE blobs ADD COLUMN object_key TEXT;

-- Objects whose rows are gone (pruned, or moved by `shiplog blobs migrate`), deleted after
-- the transaction that dropped their rows commits; kept here until they are, so a crash in
-- between leaves a list to finish rather than unreachable objects.
CREATE TABLE blob_trash (
    url         TEXT NOT NULL,
    object_key  TEXT NOT NULL,
    PRIMARY KEY (url, object_key)
) WITHOUT ROWID;
