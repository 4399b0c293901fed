-- Artifacts (sentry-semantics.md §7): a chunked, deduplicated blob store; files made of blobs;
-- release files; artifact bundles with their release, project and debug-id links; the
-- per-(release, dist) artifact index; assemble state; drop-folder outcomes.

-- One row per distinct chunk, however many files, bundles, releases or organizations share it.
-- `data` is the last column so reads of the other columns never touch its overflow pages.
CREATE TABLE blobs (
    id       INTEGER PRIMARY KEY,
    sha1     TEXT NOT NULL UNIQUE,          -- lowercase hex sha1 of `data`: the dedupe key
    size     INTEGER NOT NULL,
    created  TEXT NOT NULL,
    data     BLOB NOT NULL                  -- at most 1 MiB
);

-- Sentry's FileBlobOwner: an organization may only assemble chunks it uploaded itself.
-- `last_used` is bumped when the chunk is uploaded again or named in an assemble request, so
-- prune leaves chunks of an upload in progress alone. Kept here, not on `blobs`, because
-- updating a row that holds a 1 MiB value rewrites the value.
CREATE TABLE blob_owners (
    org_id     INTEGER NOT NULL REFERENCES organizations(id),
    blob_id    INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    last_used  TEXT NOT NULL,
    PRIMARY KEY (org_id, blob_id)
) WITHOUT ROWID;
CREATE INDEX blob_owners_by_blob ON blob_owners (blob_id);

-- Sentry's File: a byte string made of blobs in order (FileBlobIndex = file_blobs).
CREATE TABLE files (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL,
    type     TEXT NOT NULL,                 -- release.file | artifact.bundle
    headers  TEXT NOT NULL DEFAULT '{}',    -- JSON object
    size     INTEGER NOT NULL,
    sha1     TEXT NOT NULL,
    created  TEXT NOT NULL
);

CREATE TABLE file_blobs (
    file_id   INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    blob_id   INTEGER NOT NULL REFERENCES blobs(id),
    offset    INTEGER NOT NULL,             -- byte offset of the blob in the file
    PRIMARY KEY (file_id, position)
) WITHOUT ROWID;
CREATE INDEX file_blobs_by_blob ON file_blobs (blob_id);

-- Sentry's ReleaseFile: one artifact of a release, stored as its own file.
CREATE TABLE release_files (
    id              INTEGER PRIMARY KEY,
    org_id          INTEGER NOT NULL REFERENCES organizations(id),
    release_id      INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    dist            TEXT,                   -- NULL: no dist
    ident           TEXT NOT NULL,          -- sha1(name), or sha1(name + "\0\0" + dist)
    name            TEXT NOT NULL,          -- the URL, e.g. ~/static/app.min.js
    file_id         INTEGER NOT NULL REFERENCES files(id),
    artifact_count  INTEGER NOT NULL DEFAULT 1,
    date_created    TEXT NOT NULL,
    UNIQUE (release_id, ident)
);
CREATE INDEX release_files_by_name ON release_files (release_id, name);
CREATE INDEX release_files_by_file ON release_files (file_id);

-- Sentry's ArtifactBundle: a stored bundle (the zip as uploaded), found by its bundle id.
CREATE TABLE artifact_bundles (
    id                  INTEGER PRIMARY KEY,
    org_id              INTEGER NOT NULL REFERENCES organizations(id),
    bundle_id           TEXT NOT NULL,      -- the manifest's debug_id, else derived from the checksum
    file_id             INTEGER NOT NULL REFERENCES files(id),
    artifact_count      INTEGER NOT NULL,
    date_added          TEXT NOT NULL,
    date_uploaded       TEXT NOT NULL,
    date_last_modified  TEXT NOT NULL,
    UNIQUE (org_id, bundle_id)
);
CREATE INDEX artifact_bundles_by_file ON artifact_bundles (file_id);

-- Sentry's ReleaseArtifactBundle (by release row here, so deleting a release drops the link).
CREATE TABLE release_artifact_bundles (
    release_id          INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    dist                TEXT NOT NULL DEFAULT '',
    artifact_bundle_id  INTEGER NOT NULL REFERENCES artifact_bundles(id) ON DELETE CASCADE,
    date_added          TEXT NOT NULL,
    PRIMARY KEY (release_id, dist, artifact_bundle_id)
) WITHOUT ROWID;
CREATE INDEX release_artifact_bundles_by_bundle ON release_artifact_bundles (artifact_bundle_id);

-- Sentry's ProjectArtifactBundle.
CREATE TABLE project_artifact_bundles (
    project_id          INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    artifact_bundle_id  INTEGER NOT NULL REFERENCES artifact_bundles(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, artifact_bundle_id)
) WITHOUT ROWID;
CREATE INDEX project_artifact_bundles_by_bundle ON project_artifact_bundles (artifact_bundle_id);

-- Sentry's DebugIdArtifactBundle, widened: a debug id points at an entry of a stored bundle or
-- at a release file (bundles under index_min_files are stored as release files).
CREATE TABLE debug_id_artifacts (
    id                  INTEGER PRIMARY KEY,
    org_id              INTEGER NOT NULL REFERENCES organizations(id),
    debug_id            TEXT NOT NULL,      -- normalised: lowercase, hyphenated
    source_file_type    INTEGER NOT NULL,   -- 1 source, 2 minified_source, 3 source_map, 4 indexed_ram_bundle
    url                 TEXT NOT NULL,
    artifact_bundle_id  INTEGER REFERENCES artifact_bundles(id) ON DELETE CASCADE,
    bundle_path         TEXT,               -- the entry inside the bundle
    release_file_id     INTEGER REFERENCES release_files(id) ON DELETE CASCADE,
    date_added          TEXT NOT NULL,
    CHECK ((artifact_bundle_id IS NULL) <> (release_file_id IS NULL))
);
CREATE INDEX debug_id_artifacts_by_id ON debug_id_artifacts (org_id, debug_id);
CREATE INDEX debug_id_artifacts_by_bundle ON debug_id_artifacts (artifact_bundle_id);
CREATE INDEX debug_id_artifacts_by_release_file ON debug_id_artifacts (release_file_id);

-- The per-(release, dist) artifact index (Sentry's artifact-index.json, as rows): for bundles
-- of index_min_files or more files, url -> entry of a stored bundle. Shares the ident space of
-- release_files: storing one of the two for a (release, dist, url) removes the other.
CREATE TABLE artifact_index (
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
    sha1                TEXT NOT NULL,
    date_created        TEXT NOT NULL,
    UNIQUE (release_id, ident)
);
CREATE INDEX artifact_index_by_url ON artifact_index (release_id, url);
CREATE INDEX artifact_index_by_bundle ON artifact_index (artifact_bundle_id);

-- Assemble state per (org, task, checksum): created -> assembling -> ok | error. Persisted (not
-- a cache as in Sentry) so a restarted daemon still answers polls and redoes what was cut off.
-- `generation` grows each time the same checksum is assembled anew.
CREATE TABLE assemble_states (
    org_id      INTEGER NOT NULL REFERENCES organizations(id),
    task        TEXT NOT NULL,              -- artifact_bundle | release_bundle
    checksum    TEXT NOT NULL,
    generation  INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL CHECK (state IN ('created', 'assembling', 'ok', 'error')),
    detail      TEXT,
    request     TEXT NOT NULL,              -- the assemble request as JSON, to redo it
    reported    INTEGER NOT NULL DEFAULT 0, -- an error already shown to a client
    updated     TEXT NOT NULL,
    PRIMARY KEY (org_id, task, checksum)
) WITHOUT ROWID;

-- What became of each drop-folder bundle, by content checksum: a second drop of the same bytes
-- after success is not ingested again; after a failure it is retried (next generation).
CREATE TABLE artifact_drops (
    checksum    TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL CHECK (state IN ('ok', 'failed')),
    path        TEXT NOT NULL,
    detail      TEXT,
    updated     TEXT NOT NULL
) WITHOUT ROWID;
