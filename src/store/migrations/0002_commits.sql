-- Repositories and commits (sentry-semantics.md §3.1). Every commit source (local git, the
-- set-commits API, GitHub) writes the same rows.

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES organizations(id),
    name        TEXT NOT NULL,              -- owner/repo, as sentry-cli and GitHub name it
    url         TEXT,                       -- web URL; sentry-cli --auto matches it to `origin`
    provider    TEXT NOT NULL DEFAULT 'git',  -- git (local path), integrations:github, or none (auto-created by set-commits)
    path        TEXT,                       -- local clone or bare repository, when on disk
    external    TEXT,                       -- owner/repo on GitHub, when reached through the API
    status      TEXT NOT NULL DEFAULT 'active',   -- active | hidden (removed from config, rows kept)
    date_added  TEXT NOT NULL,
    origin      TEXT NOT NULL DEFAULT 'api',  -- config | cli (`shiplog repos add`) | api (auto-created by set-commits)
    initial_depth INTEGER,                  -- commits for a range with no start (config's first release policy)
    UNIQUE (org_id, name)
);

CREATE TABLE commit_authors (
    id      INTEGER PRIMARY KEY,
    org_id  INTEGER NOT NULL REFERENCES organizations(id),
    name    TEXT,
    email   TEXT NOT NULL,                  -- lowercased; `<name>@localhost` when the commit had none
    UNIQUE (org_id, email)
);

CREATE TABLE commits (
    id              INTEGER PRIMARY KEY,
    org_id          INTEGER NOT NULL REFERENCES organizations(id),
    repository_id   INTEGER NOT NULL REFERENCES repositories(id),
    key             TEXT NOT NULL,          -- the sha, up to 64 characters
    author_id       INTEGER REFERENCES commit_authors(id),
    message         TEXT,
    date_added      TEXT NOT NULL,          -- author time in UTC (canonical form)
    timestamp       TEXT,                   -- author time as given, offset kept
    UNIQUE (repository_id, key)
);
CREATE INDEX commits_by_key ON commits (org_id, key);

CREATE TABLE commit_file_changes (
    commit_id  INTEGER NOT NULL REFERENCES commits(id) ON DELETE CASCADE,
    filename   TEXT NOT NULL,
    type       TEXT NOT NULL CHECK (type IN ('A', 'M', 'D')),
    PRIMARY KEY (commit_id, filename)
) WITHOUT ROWID;
CREATE INDEX commit_file_changes_by_name ON commit_file_changes (filename);

-- The commits of a release; `position` 0 is the newest (Sentry's ReleaseCommit.order).
CREATE TABLE release_commits (
    release_id  INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    commit_id   INTEGER NOT NULL REFERENCES commits(id),
    position    INTEGER NOT NULL,
    PRIMARY KEY (release_id, commit_id),
    UNIQUE (release_id, position)
) WITHOUT ROWID;
CREATE INDEX release_commits_by_commit ON release_commits (commit_id);

-- The head commit of each repository in a release: where the next release's range starts.
CREATE TABLE release_head_commits (
    release_id     INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    repository_id  INTEGER NOT NULL REFERENCES repositories(id),
    commit_id      INTEGER NOT NULL REFERENCES commits(id),
    PRIMARY KEY (release_id, repository_id)
) WITHOUT ROWID;
