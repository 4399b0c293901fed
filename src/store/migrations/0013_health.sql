-- Release health: sessions counted into hourly rollups per (project, release, hour the sessions
-- started in, environment). Distinct users and errored session ids are kept as exact per-hour
-- sets (ids are 64-bit hashes), so any period is the union of its hours.

CREATE TABLE health_rollups (
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release_id      INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    bucket          INTEGER NOT NULL,             -- unix seconds of the hour
    environment     TEXT NOT NULL DEFAULT '',     -- '' = none
    sessions        INTEGER NOT NULL DEFAULT 0,
    errored_preaggr INTEGER NOT NULL DEFAULT 0,
    errored_sids    INTEGER NOT NULL DEFAULT 0,
    crashed         INTEGER NOT NULL DEFAULT 0,
    abnormal        INTEGER NOT NULL DEFAULT 0,
    unhandled       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, release_id, bucket, environment)
) WITHOUT ROWID;
CREATE INDEX health_rollups_by_bucket ON health_rollups (project_id, bucket);
CREATE INDEX health_rollups_by_release ON health_rollups (release_id);

CREATE TABLE health_errored_sids (
    project_id  INTEGER NOT NULL,
    release_id  INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    environment TEXT NOT NULL,
    sid         INTEGER NOT NULL,
    PRIMARY KEY (project_id, release_id, bucket, environment, sid),
    FOREIGN KEY (project_id, release_id, bucket, environment)
        REFERENCES health_rollups (project_id, release_id, bucket, environment) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE health_users (
    project_id  INTEGER NOT NULL,
    release_id  INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    environment TEXT NOT NULL,
    user        INTEGER NOT NULL,
    flags       INTEGER NOT NULL DEFAULT 0,       -- 1 errored, 2 crashed, 4 abnormal, 8 unhandled
    PRIMARY KEY (project_id, release_id, bucket, environment, user),
    FOREIGN KEY (project_id, release_id, bucket, environment)
        REFERENCES health_rollups (project_id, release_id, bucket, environment) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX health_users_by_bucket ON health_users (project_id, bucket);

CREATE TABLE health_durations (
    project_id  INTEGER NOT NULL,
    release_id  INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    environment TEXT NOT NULL,
    bin         INTEGER NOT NULL,                 -- model::health::duration_bin
    count       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, release_id, bucket, environment, bin),
    FOREIGN KEY (project_id, release_id, bucket, environment)
        REFERENCES health_rollups (project_id, release_id, bucket, environment) ON DELETE CASCADE
) WITHOUT ROWID;

-- Session items refused at ingest, per project and reason, for operators.
CREATE TABLE health_refusals (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    reason      TEXT NOT NULL,
    count       INTEGER NOT NULL DEFAULT 0,
    last_seen   TEXT NOT NULL,
    PRIMARY KEY (project_id, reason)
) WITHOUT ROWID;

-- Adoption stages (Sentry's ReleaseProjectEnvironment.adopted / unadopted).
CREATE TABLE health_adoption (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release_id  INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    environment TEXT NOT NULL,
    adopted     TEXT,
    unadopted   TEXT,
    PRIMARY KEY (project_id, release_id, environment)
) WITHOUT ROWID;
