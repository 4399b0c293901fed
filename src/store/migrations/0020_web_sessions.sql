-- The web pages' sign-in: one-time links (`shiplog open`) and browser sessions.
-- Only SHA-256 hashes of their secrets are stored; both expire.
CREATE TABLE web_signin_links (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    date_created TEXT NOT NULL,
    date_expires TEXT NOT NULL,
    date_used TEXT
);

CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    -- How it was made: 'link' or 'token:<token name>'.
    origin TEXT NOT NULL,
    date_created TEXT NOT NULL,
    date_expires TEXT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (date_expires);
