-- Releases core: organizations, projects, tokens, releases, deploys, activity.
-- Timestamps are UTC RFC 3339 text with six fractional digits (see model::time): fixed width,
-- so text order is time order.

CREATE TABLE organizations (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    date_added  TEXT NOT NULL
);

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES organizations(id),
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    platform    TEXT,
    date_added  TEXT NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE api_tokens (
    id              INTEGER PRIMARY KEY,
    org_id          INTEGER NOT NULL REFERENCES organizations(id),
    name            TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,   -- sha256 hex of the whole token; the token itself is never stored
    token_tail      TEXT NOT NULL,          -- last characters, so `token list` can tell tokens apart
    scopes          TEXT NOT NULL,          -- JSON array
    date_added      TEXT NOT NULL,
    date_last_used  TEXT,
    date_revoked    TEXT
);

CREATE TABLE releases (
    id              INTEGER PRIMARY KEY,
    org_id          INTEGER NOT NULL REFERENCES organizations(id),
    version         TEXT NOT NULL,
    ref             TEXT,
    url             TEXT,
    date_added      TEXT NOT NULL,
    date_started    TEXT,
    date_released   TEXT,
    status          INTEGER NOT NULL DEFAULT 0,   -- 0 open, 1 archived (Sentry's ReleaseStatus)
    data            TEXT NOT NULL DEFAULT '{}',
    owner           TEXT,
    user_agent      TEXT,
    commit_count    INTEGER NOT NULL DEFAULT 0,
    last_commit_id  INTEGER,
    authors         TEXT NOT NULL DEFAULT '[]',   -- JSON array of commit author ids
    total_deploys   INTEGER NOT NULL DEFAULT 0,
    last_deploy_id  INTEGER,
    -- Parsed version (sentry-semantics §1.4); NULL unless the version is `package@semver`.
    package         TEXT,
    major           INTEGER,
    minor           INTEGER,
    patch           INTEGER,
    revision        INTEGER,
    prerelease      TEXT,
    prerelease_case INTEGER,
    build_code      TEXT,
    build_number    INTEGER,
    UNIQUE (org_id, version)
);
CREATE INDEX releases_by_date   ON releases (org_id, status, date_added DESC, id DESC);
CREATE INDEX releases_by_semver ON releases (org_id, major DESC, minor DESC, patch DESC, revision DESC,
                                             prerelease_case DESC, prerelease DESC, date_added DESC);
CREATE INDEX releases_by_build  ON releases (org_id, build_number DESC) WHERE build_number IS NOT NULL;

CREATE TABLE release_projects (
    release_id  INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    project_id  INTEGER NOT NULL REFERENCES projects(id),
    new_groups  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (release_id, project_id)
) WITHOUT ROWID;
CREATE INDEX release_projects_by_project ON release_projects (project_id, release_id);

CREATE TABLE environments (
    id      INTEGER PRIMARY KEY,
    org_id  INTEGER NOT NULL REFERENCES organizations(id),
    name    TEXT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE deploys (
    id              INTEGER PRIMARY KEY,
    org_id          INTEGER NOT NULL REFERENCES organizations(id),
    release_id      INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    environment_id  INTEGER NOT NULL REFERENCES environments(id),
    name            TEXT,
    url             TEXT,
    date_started    TEXT,
    date_finished   TEXT NOT NULL,
    notified        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deploys_by_release ON deploys (release_id, date_finished DESC);

-- Sentry's ReleaseProjectEnvironment: per (release, project, environment), the latest deploy.
CREATE TABLE release_project_environments (
    release_id        INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    project_id        INTEGER NOT NULL REFERENCES projects(id),
    environment_id    INTEGER NOT NULL REFERENCES environments(id),
    new_issues_count  INTEGER NOT NULL DEFAULT 0,
    first_seen        TEXT,
    last_seen         TEXT,
    last_deploy_id    INTEGER REFERENCES deploys(id) ON DELETE SET NULL,
    PRIMARY KEY (release_id, project_id, environment_id)
) WITHOUT ROWID;

-- What happened, for release pages and notifications (Sentry's Activity; types in model docs).
CREATE TABLE activities (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES organizations(id),
    project_id  INTEGER REFERENCES projects(id),
    release_id  INTEGER REFERENCES releases(id) ON DELETE SET NULL,
    type        INTEGER NOT NULL,
    ident       TEXT,
    data        TEXT NOT NULL DEFAULT '{}',
    datetime    TEXT NOT NULL
);
CREATE INDEX activities_by_release ON activities (release_id);

-- The durable inbox every input writes to before the pipeline worker applies it (DESIGN.md).
CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY,
    idem_key      TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    processed_at  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    not_before    TEXT,                 -- a failed event is retried after this time
    last_error    TEXT
);
CREATE INDEX inbox_pending ON inbox (id) WHERE processed_at IS NULL;
