-- Large bundles are indexed from their manifest and zip directory when they are assembled, as
-- Sentry does, so storing one costs about one pass over its bytes. Reading every entry (inflate,
-- CRC-32, sha1) happens right after, in the pipeline's verify step: it fills in each index
-- entry's sha1 and true size, or withdraws the bundle if an entry is corrupt.

-- When the verify step passed; NULL while it is pending. Bundles stored before this migration
-- were read in full when they were assembled.
ALTER TABLE artifact_bundles ADD COLUMN verified TEXT;
UPDATE artifact_bundles SET verified = date_uploaded;

-- artifact_index.sha1 becomes NULL until the verify step has hashed the entry (SQLite cannot
-- relax a NOT NULL in place, so the table is rebuilt; nothing references it).
CREATE TABLE artifact_index_new (
    id                  INTEGER PRIMARY KEY,
    org_id              INTEGER NOT NULL REFERENCES organizations(id),
    release_id          INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    dist                TEXT,
    ident               TEXT NOT NULL,
    url                 TEXT NOT NULL,
    artifact_bundle_id  INTEGER NOT NULL REFERENCES artifact_bundles(id) ON DELETE CASCADE,
    bundle_path         TEXT NOT NULL,
    type                TEXT NOT NULL,
    headers             TEXT NOT NULL DEFAULT '{}',
    size                INTEGER NOT NULL,
    sha1                TEXT,
    date_created        TEXT NOT NULL,
    UNIQUE (release_id, ident)
);
INSERT INTO artifact_index_new
    SELECT id, org_id, release_id, dist, ident, url, artifact_bundle_id, bundle_path, type,
           headers, size, sha1, date_created
      FROM artifact_index;
DROP TABLE artifact_index;
ALTER TABLE artifact_index_new RENAME TO artifact_index;
CREATE INDEX artifact_index_by_url ON artifact_index (release_id, url);
CREATE INDEX artifact_index_by_bundle ON artifact_index (artifact_bundle_id, bundle_path);
