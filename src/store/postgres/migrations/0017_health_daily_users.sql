-- Release health: distinct users per UTC day next to the hourly sets of 0013. A period reads
-- its whole days from here and only its edge hours from health_users, so a 14-day union reads
-- one row per user and day instead of one per user and hour. Written in the same transaction
-- as the hourly row; flags are the OR of the day's hours (1 errored, 2 crashed, 4 abnormal,
-- 8 unhandled). Errored session ids need no daily set: a session is filed under the hour it
-- started, so its hour's set already dedups it and periods just sum the hourly counts.

CREATE TABLE health_users_daily (
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release_id  BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    day         BIGINT NOT NULL,                 -- unix seconds of UTC midnight
    environment TEXT COLLATE "C" NOT NULL,
    "user"        BIGINT NOT NULL,
    flags       BIGINT NOT NULL DEFAULT 0,
    -- Release first: pages read a list of releases, and deleting a release finds its rows
    -- without a second index (every write pays for each index).
    PRIMARY KEY (release_id, project_id, day, environment, "user")
);

-- (No backfill: a PostgreSQL store starts empty at the schema of SQLite's 0017; see ../mod.rs.)
