-- A link made by resolving an issue "in a commit" through the API (Sentry's inCommit), not read
-- from the commit's message: re-reading the message must not remove it.
ALTER TABLE issue_commit_links ADD COLUMN manual BIGINT NOT NULL DEFAULT 0;
