-- Source maps uploaded for a release that does not exist yet (many CI scripts upload before
-- `releases new`). In Sentry a bundle's release is a label (ReleaseArtifactBundle.release_name),
-- so the bundle is kept and served once the release appears. Here the bundle is stored as
-- usual and its index entries wait in this table under the release's name; creating a release
-- of that name moves them to artifact_index and links the bundles to it.
CREATE TABLE pending_artifact_index (
    id                  INTEGER PRIMARY KEY,
    org_id              INTEGER NOT NULL REFERENCES organizations(id),
    release_name        TEXT NOT NULL,
    dist                TEXT,
    url                 TEXT NOT NULL,
    artifact_bundle_id  INTEGER NOT NULL REFERENCES artifact_bundles(id) ON DELETE CASCADE,
    bundle_path         TEXT NOT NULL,
    type                TEXT NOT NULL,
    headers             TEXT NOT NULL DEFAULT '{}',
    size                INTEGER NOT NULL,
    sha1                TEXT,
    date_created        TEXT NOT NULL
);
CREATE INDEX pending_artifact_index_by_release ON pending_artifact_index (org_id, release_name);
CREATE INDEX pending_artifact_index_by_bundle ON pending_artifact_index (artifact_bundle_id);

-- A project's events, newest first (`GET /projects/{org}/{project}/events/`, `sentry-cli
-- events list`), read a page at a time.
CREATE INDEX events_by_project ON events (project_id, timestamp DESC);
