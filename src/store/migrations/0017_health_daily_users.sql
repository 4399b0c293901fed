-- Release health: distinct users per UTC day next to the hourly sets of 0013. A period reads
-- its whole days from here and only its edge hours from health_users, so a 14-day union reads
-- one row per user and day instead of one per user and hour. Written in the same transaction
-- as the hourly row; flags are the OR of the day's hours (1 errored, 2 crashed, 4 abnormal,
-- 8 unhandled). Errored session ids need no daily set: a session is filed under the hour it
-- started, so its hour's set already dedups it and periods just sum the hourly counts.

CREATE TABLE health_users_daily (
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    release_id  INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    day         INTEGER NOT NULL,                 -- unix seconds of UTC midnight
    environment TEXT NOT NULL,
    user        INTEGER NOT NULL,
    flags       INTEGER NOT NULL DEFAULT 0,
    -- Release first: pages read a list of releases, and deleting a release finds its rows
    -- without a second index (every write pays for each index).
    PRIMARY KEY (release_id, project_id, day, environment, user)
) WITHOUT ROWID;

-- Backfill from the hourly sets of an existing store.
INSERT INTO health_users_daily (project_id, release_id, day, environment, user, flags)
SELECT project_id, release_id, bucket - bucket % 86400, environment, user,
       max(flags & 1) | max(flags & 2) | max(flags & 4) | max(flags & 8)
FROM health_users
GROUP BY project_id, release_id, bucket - bucket % 86400, environment, user;
