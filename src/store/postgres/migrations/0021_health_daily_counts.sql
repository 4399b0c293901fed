-- Release health: the session counts and duration histogram per UTC day next to the hourly
-- ones of 0013, and each user's latest hours per release. A period reads its whole days from
-- the daily rows and only its edge hours from the hourly ones (model::health::split_window):
-- counts and bins are sums, so the day and hour parts add up exactly. Written in the same
-- transaction as the hourly rows.

CREATE TABLE health_rollups_daily (
    project_id      BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release_id      BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    day             BIGINT NOT NULL,             -- unix seconds of UTC midnight
    environment     TEXT COLLATE "C" NOT NULL,
    sessions        BIGINT NOT NULL DEFAULT 0,
    errored_preaggr BIGINT NOT NULL DEFAULT 0,
    errored_sids    BIGINT NOT NULL DEFAULT 0,
    crashed         BIGINT NOT NULL DEFAULT 0,
    abnormal        BIGINT NOT NULL DEFAULT 0,
    unhandled       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, release_id, day, environment)
);

CREATE TABLE health_durations_daily (
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release_id  BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    day         BIGINT NOT NULL,
    environment TEXT COLLATE "C" NOT NULL,
    bin         BIGINT NOT NULL,
    count       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, release_id, day, environment, bin)
);

-- Per user of a release and environment: the latest hour it was seen in, and the latest hour
-- it errored, crashed, was abnormal in (0 = never). For a period that no row has passed yet
-- (the releases page's periods end at the current hour), "seen in the period" is exactly
-- "seen >= start", so distinct users come from one row per user instead of a union of sets.
CREATE TABLE health_user_last (
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release_id  BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    environment TEXT COLLATE "C" NOT NULL,
    "user"      BIGINT NOT NULL,
    seen        BIGINT NOT NULL,
    errored     BIGINT NOT NULL DEFAULT 0,
    crashed     BIGINT NOT NULL DEFAULT 0,
    abnormal    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, release_id, "user", environment)
);

-- Backfill from the hourly rows of an existing store.
INSERT INTO health_rollups_daily (project_id, release_id, day, environment, sessions,
    errored_preaggr, errored_sids, crashed, abnormal, unhandled)
SELECT project_id, release_id, bucket - bucket % 86400, environment, sum(sessions),
       sum(errored_preaggr), sum(errored_sids), sum(crashed), sum(abnormal), sum(unhandled)
FROM health_rollups
GROUP BY project_id, release_id, bucket - bucket % 86400, environment;

INSERT INTO health_durations_daily (project_id, release_id, day, environment, bin, count)
SELECT project_id, release_id, bucket - bucket % 86400, environment, bin, sum(count)
FROM health_durations
GROUP BY project_id, release_id, bucket - bucket % 86400, environment, bin;

INSERT INTO health_user_last (project_id, release_id, environment, "user", seen, errored,
    crashed, abnormal)
SELECT project_id, release_id, environment, "user", max(bucket),
       max(CASE WHEN flags & 1 <> 0 THEN bucket ELSE 0 END),
       max(CASE WHEN flags & 2 <> 0 THEN bucket ELSE 0 END),
       max(CASE WHEN flags & 4 <> 0 THEN bucket ELSE 0 END)
FROM health_users
GROUP BY project_id, release_id, environment, "user";
