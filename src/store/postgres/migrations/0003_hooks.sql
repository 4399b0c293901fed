-- Releases from git (hooks, watcher, reconcile): what shiplog last saw of each repository's
-- refs, and which tag of which release policy made each release.

-- The refs of a local repository as shiplog last applied them. Reconcile and the watcher
-- compare the repository with these rows; a difference is a change that was missed.
CREATE TABLE ref_snapshots (
    repository_id  BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    ref_name       TEXT COLLATE "C" NOT NULL,           -- refs/tags/v1.2.0
    target         TEXT COLLATE "C" NOT NULL,           -- what the ref points at (the tag object for an annotated tag)
    peeled         TEXT COLLATE "C",                    -- the commit it peels to; NULL when it is not a commit
    updated_at     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repository_id, ref_name)
);

-- When shiplog first listed a repository's refs. Tags that existed then are history and make
-- no releases; tags that appear afterwards (also while the daemon is stopped) do.
CREATE TABLE ref_baselines (
    repository_id  BIGINT PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
    taken_at       TEXT COLLATE "C" NOT NULL,
    reconciled_at  TEXT COLLATE "C"
);

-- The tag (and policy) a release was made from, per repository: "the previous release of the
-- same policy" is found here, and a tag seen again is recognised as already applied.
CREATE TABLE release_sources (
    release_id     BIGINT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    repository_id  BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    policy_key     TEXT COLLATE "C" NOT NULL,           -- identifies the release policy (tag pattern -> version template)
    tag            TEXT COLLATE "C" NOT NULL,           -- the short tag name, e.g. v1.2.0
    target_commit  TEXT COLLATE "C" NOT NULL,           -- the commit the tag peeled to
    trigger        TEXT COLLATE "C" NOT NULL,           -- tag | push
    date_added     TEXT COLLATE "C" NOT NULL,
    date_updated   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (release_id, repository_id, policy_key)
);
CREATE INDEX release_sources_by_policy ON release_sources (repository_id, policy_key);
