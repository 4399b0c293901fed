-- Grouping versions and user counts (model/grouping.rs, model/event_tags.rs).
--
-- An issue keeps the grouping version it was created with. `issue_hashes` holds every hash an
-- issue answers to, with the version that made it: an event joins the issue of its first hash
-- found, current version first. Issues made before version 2 answer to their version-1 hash
-- (the old `fingerprint`) for a transition period (`expires`, Sentry's secondary grouping);
-- every current-version hash of an event that matched that way is added to the issue for
-- good, so an upgrade regroups nothing.
ALTER TABLE issues ADD COLUMN grouping_version INTEGER NOT NULL DEFAULT 1;

CREATE TABLE issue_hashes (
    project_id        INTEGER NOT NULL REFERENCES projects(id),
    hash              TEXT NOT NULL,           -- sha1 hex
    issue_id          INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    grouping_version  INTEGER NOT NULL,
    expires           TEXT,                    -- NULL: never
    PRIMARY KEY (project_id, hash)
) WITHOUT ROWID;
CREATE INDEX issue_hashes_by_issue ON issue_hashes (issue_id);

INSERT INTO issue_hashes (project_id, hash, issue_id, grouping_version, expires)
    SELECT project_id, fingerprint, id, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+90 days')
    FROM issues;

-- The distinct users of an issue (Sentry's userCount), by their `user` tag value:
-- `id:…`, else `email:…`, else `username:…`, else `ip:…`.
ALTER TABLE issues ADD COLUMN user_count INTEGER NOT NULL DEFAULT 0;

CREATE TABLE issue_users (
    issue_id  INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (issue_id, tag)
) WITHOUT ROWID;

WITH fields AS (
    SELECT issue_id,
           CASE WHEN json_type(data, '$.user.id') IN ('text', 'integer', 'real')
                THEN json_extract(data, '$.user.id') END AS id,
           CASE WHEN json_type(data, '$.user.email') IN ('text', 'integer', 'real')
                THEN json_extract(data, '$.user.email') END AS email,
           CASE WHEN json_type(data, '$.user.username') IN ('text', 'integer', 'real')
                THEN json_extract(data, '$.user.username') END AS username,
           CASE WHEN json_type(data, '$.user.ip_address') IN ('text', 'integer', 'real')
                     AND json_extract(data, '$.user.ip_address') <> '{{auto}}'
                THEN json_extract(data, '$.user.ip_address') END AS ip
    FROM events WHERE json_valid(data)
)
INSERT OR IGNORE INTO issue_users (issue_id, tag)
    SELECT issue_id, tag FROM (
        SELECT issue_id, CASE
            WHEN trim(id) <> '' THEN 'id:' || id
            WHEN trim(email) <> '' THEN 'email:' || email
            WHEN trim(username) <> '' THEN 'username:' || username
            WHEN trim(ip) <> '' THEN 'ip:' || ip
        END AS tag FROM fields
    ) WHERE tag IS NOT NULL;

UPDATE issues SET user_count = (SELECT count(*) FROM issue_users u WHERE u.issue_id = issues.id);
