-- Grouping versions and user counts (model/grouping.rs, model/event_tags.rs).
--
-- An issue keeps the grouping version it was created with. `issue_hashes` holds every hash an
-- issue answers to, with the version that made it: an event joins the issue of its first hash
-- found, current version first. Issues made before version 2 answer to their version-1 hash
-- (the old `fingerprint`) for a transition period (`expires`, Sentry's secondary grouping);
-- every current-version hash of an event that matched that way is added to the issue for
-- good, so an upgrade regroups nothing.
ALTER TABLE issues ADD COLUMN grouping_version BIGINT NOT NULL DEFAULT 1;

CREATE TABLE issue_hashes (
    project_id        BIGINT NOT NULL REFERENCES projects(id),
    hash              TEXT COLLATE "C" NOT NULL,           -- sha1 hex
    issue_id          BIGINT NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    grouping_version  BIGINT NOT NULL,
    expires           TEXT COLLATE "C",                    -- NULL: never
    PRIMARY KEY (project_id, hash)
);
CREATE INDEX issue_hashes_by_issue ON issue_hashes (issue_id);

-- (No backfill: a PostgreSQL store starts empty at the schema of SQLite's 0017; see ../mod.rs.)

-- The distinct users of an issue (Sentry's userCount), by their `user` tag value:
-- `id:…`, else `email:…`, else `username:…`, else `ip:…`.
ALTER TABLE issues ADD COLUMN user_count BIGINT NOT NULL DEFAULT 0;

CREATE TABLE issue_users (
    issue_id  BIGINT NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    tag       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (issue_id, tag)
);

-- (No backfill: a PostgreSQL store starts empty at the schema of SQLite's 0017; see ../mod.rs.)
