-- Issues (sentry-semantics.md §4): DSN keys, issues (Sentry's groups), their events, the links
-- commit messages make to them ("Fixes WEB-1"), and resolutions in releases.

-- Sentry's ProjectKey: every project has one, whose public key is the `<key>@` of its DSN.
-- The key is not a secret (SDKs ship it in client code); it only names the project.
CREATE TABLE project_keys (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    public_key  TEXT NOT NULL UNIQUE,          -- 32 lowercase hex
    label       TEXT NOT NULL DEFAULT 'Default',
    status      INTEGER NOT NULL DEFAULT 0,    -- 0 active, 1 inactive
    date_added  TEXT NOT NULL
);
CREATE INDEX project_keys_by_project ON project_keys (project_id);

INSERT INTO project_keys (project_id, public_key, date_added)
    SELECT id, lower(hex(randomblob(16))), date_added FROM projects;

-- New projects get their key where they are made, whichever code path makes them.
CREATE TRIGGER project_keys_for_new_project AFTER INSERT ON projects
BEGIN
    INSERT INTO project_keys (project_id, public_key, date_added)
        VALUES (NEW.id, lower(hex(randomblob(16))), NEW.date_added);
END;

-- The per-project counter behind short ids (WEB-1, WEB-2, ...).
CREATE TABLE issue_counters (
    project_id  INTEGER PRIMARY KEY REFERENCES projects(id),
    value       INTEGER NOT NULL
);

-- Sentry's Group. status: 0 unresolved, 1 resolved, 2 ignored (GroupStatus);
-- substatus: new | ongoing | regressed | archived_forever, NULL when resolved.
CREATE TABLE issues (
    id                INTEGER PRIMARY KEY,
    org_id            INTEGER NOT NULL REFERENCES organizations(id),
    project_id        INTEGER NOT NULL REFERENCES projects(id),
    short_id          INTEGER NOT NULL,
    fingerprint       TEXT NOT NULL,          -- sha1 hex of the grouping components
    title             TEXT NOT NULL,
    culprit           TEXT,
    level             TEXT NOT NULL DEFAULT 'error',
    type              TEXT NOT NULL DEFAULT 'error',   -- error (has an exception) | default
    platform          TEXT,
    metadata          TEXT NOT NULL DEFAULT '{}',
    status            INTEGER NOT NULL DEFAULT 0,
    substatus         TEXT,
    first_seen        TEXT NOT NULL,
    last_seen         TEXT NOT NULL,
    active_at         TEXT NOT NULL,
    resolved_at       TEXT,
    times_seen        INTEGER NOT NULL DEFAULT 0,
    -- RESTRICT: Sentry refuses to delete a release that issues first appeared in.
    first_release_id  INTEGER REFERENCES releases(id),
    last_release_id   INTEGER REFERENCES releases(id) ON DELETE SET NULL,
    UNIQUE (project_id, short_id),
    UNIQUE (project_id, fingerprint)
);
CREATE INDEX issues_by_last_seen ON issues (org_id, last_seen DESC, id DESC);
CREATE INDEX issues_by_first_release ON issues (first_release_id);

-- One stored event. `frames` keeps the stack frames' file paths for suspect commits; `data`
-- is the event as received, trimmed of bulky parts when it is large.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL,           -- 32 lowercase hex
    project_id       INTEGER NOT NULL REFERENCES projects(id),
    issue_id         INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    release_id       INTEGER REFERENCES releases(id) ON DELETE SET NULL,
    environment      TEXT,
    platform         TEXT,
    level            TEXT,
    timestamp        TEXT NOT NULL,
    received         TEXT NOT NULL,
    message          TEXT,
    exception_type   TEXT,
    exception_value  TEXT,
    frames           TEXT NOT NULL DEFAULT '[]',
    data             TEXT NOT NULL,
    UNIQUE (project_id, event_id)
);
CREATE INDEX events_by_issue ON events (issue_id, timestamp DESC);
CREATE INDEX events_by_release ON events (release_id, issue_id);

-- Sentry's GroupLink(commit, resolves), keyed by the short id as written so that a commit may
-- name an issue that does not exist yet: the link resolves once it does. `project_slug` and
-- `short_number` are the decoded short id (NULL number when it does not decode).
-- `resolved_release_id` is the last release this link resolved its issue in, so that setting
-- the same release's commits again does not undo a regression seen since.
CREATE TABLE issue_commit_links (
    id                   INTEGER PRIMARY KEY,
    org_id               INTEGER NOT NULL REFERENCES organizations(id),
    commit_id            INTEGER NOT NULL REFERENCES commits(id) ON DELETE CASCADE,
    short_id             TEXT NOT NULL,       -- uppercased, e.g. WEB-1A
    project_slug         TEXT NOT NULL,
    short_number         INTEGER,
    relationship         INTEGER NOT NULL DEFAULT 1,   -- GroupLink.Relationship.resolves
    datetime             TEXT NOT NULL,
    resolved_release_id  INTEGER REFERENCES releases(id) ON DELETE SET NULL,
    UNIQUE (commit_id, short_id)
);
CREATE INDEX issue_commit_links_by_issue ON issue_commit_links (org_id, project_slug, short_number);

-- Sentry's GroupResolution. type: 0 in_release, 1 in_next_release; status: 0 pending, 1 resolved.
CREATE TABLE issue_resolutions (
    id                       INTEGER PRIMARY KEY,
    issue_id                 INTEGER NOT NULL UNIQUE REFERENCES issues(id) ON DELETE CASCADE,
    release_id               INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    type                     INTEGER,
    status                   INTEGER NOT NULL DEFAULT 0,
    current_release_version  TEXT,
    actor                    TEXT,
    datetime                 TEXT NOT NULL
);
CREATE INDEX issue_resolutions_by_release ON issue_resolutions (release_id);

-- Issue activity (REFERENCED_IN_COMMIT, SET_RESOLVED_IN_RELEASE, SET_REGRESSION, ...) lives in
-- the shared activity log; this names the issue an entry is about.
ALTER TABLE activities ADD COLUMN issue_id INTEGER REFERENCES issues(id) ON DELETE CASCADE;
CREATE INDEX activities_by_issue ON activities (issue_id) WHERE issue_id IS NOT NULL;
