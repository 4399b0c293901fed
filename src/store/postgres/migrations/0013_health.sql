-- Release health: sessions counted into hourly rollups per (project, release, hour the sessions
-- started in, environment). Distinct users and errored session ids are kept as exact per-hour
-- sets (ids are 64-bit hashes), so any period is the union of its hours.

CREATE TABLE health_rollups (
    project_id      BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release_id      BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    bucket          BIGINT NOT NULL,             -- unix seconds of the hour
    environment     TEXT COLLATE "C" NOT NULL DEFAULT '',     -- '' = none
    sessions        BIGINT NOT NULL DEFAULT 0,
    errored_preaggr BIGINT NOT NULL DEFAULT 0,
    errored_sids    BIGINT NOT NULL DEFAULT 0,
    crashed         BIGINT NOT NULL DEFAULT 0,
    abnormal        BIGINT NOT NULL DEFAULT 0,
    unhandled       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, release_id, bucket, environment)
);
CREATE INDEX health_rollups_by_bucket ON health_rollups (project_id, bucket);
CREATE INDEX health_rollups_by_release ON health_rollups (release_id);

CREATE TABLE health_errored_sids (
    project_id  BIGINT NOT NULL,
    release_id  BIGINT NOT NULL,
    bucket      BIGINT NOT NULL,
    environment TEXT COLLATE "C" NOT NULL,
    sid         BIGINT NOT NULL,
    PRIMARY KEY (project_id, release_id, bucket, environment, sid),
    FOREIGN KEY (project_id, release_id, bucket, environment)
        REFERENCES health_rollups (project_id, release_id, bucket, environment) ON DELETE CASCADE
);

CREATE TABLE health_users (
    project_id  BIGINT NOT NULL,
    release_id  BIGINT NOT NULL,
    bucket      BIGINT NOT NULL,
    environment TEXT COLLATE "C" NOT NULL,
    "user"        BIGINT NOT NULL,
    flags       BIGINT NOT NULL DEFAULT 0,       -- 1 errored, 2 crashed, 4 abnormal, 8 unhandled
    PRIMARY KEY (project_id, release_id, bucket, environment, "user"),
    FOREIGN KEY (project_id, release_id, bucket, environment)
        REFERENCES health_rollups (project_id, release_id, bucket, environment) ON DELETE CASCADE
);
CREATE INDEX health_users_by_bucket ON health_users (project_id, bucket);

CREATE TABLE health_durations (
    project_id  BIGINT NOT NULL,
    release_id  BIGINT NOT NULL,
    bucket      BIGINT NOT NULL,
    environment TEXT COLLATE "C" NOT NULL,
    bin         BIGINT NOT NULL,                 -- model::health::duration_bin
    count       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, release_id, bucket, environment, bin),
    FOREIGN KEY (project_id, release_id, bucket, environment)
        REFERENCES health_rollups (project_id, release_id, bucket, environment) ON DELETE CASCADE
);

-- Session items refused at ingest, per project and reason, for operators.
CREATE TABLE health_refusals (
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    reason      TEXT COLLATE "C" NOT NULL,
    count       BIGINT NOT NULL DEFAULT 0,
    last_seen   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, reason)
);

-- Adoption stages (Sentry's ReleaseProjectEnvironment.adopted / unadopted).
CREATE TABLE health_adoption (
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release_id  BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    environment TEXT COLLATE "C" NOT NULL,
    adopted     TEXT COLLATE "C",
    unadopted   TEXT COLLATE "C",
    PRIMARY KEY (project_id, release_id, environment)
);
