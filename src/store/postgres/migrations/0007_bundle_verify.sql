-- Large bundles are indexed from their manifest and zip directory when they are assembled, as
-- Sentry does, so storing one costs about one pass over its bytes. Reading every entry (inflate,
-- CRC-32, sha1) happens right after, in the pipeline's verify step: it fills in each index
-- entry's sha1 and true size, or withdraws the bundle if an entry is corrupt.

-- When the verify step passed; NULL while it is pending. Bundles stored before this migration
-- were read in full when they were assembled.
ALTER TABLE artifact_bundles ADD COLUMN verified TEXT COLLATE "C";
-- (No backfill: a PostgreSQL store starts empty at the schema of SQLite's 0017; see ../mod.rs.)

-- artifact_index.sha1 becomes NULL until the verify step has hashed the entry. (SQLite rebuilds
-- the table for this; PostgreSQL relaxes the constraint in place.)
ALTER TABLE artifact_index ALTER COLUMN sha1 DROP NOT NULL;
DROP INDEX artifact_index_by_bundle;
CREATE INDEX artifact_index_by_bundle ON artifact_index (artifact_bundle_id, bundle_path);
