-- GitHub webhooks (feat/github): the hooks that have pinged shiplog, and what each applied
-- delivery did. The deliveries themselves (raw JSON) live in `inbox`; this is the readable log
-- behind `shiplog github deliveries` and `shiplog github hooks`.

CREATE TABLE github_hooks (
    hook_id        TEXT PRIMARY KEY,        -- X-GitHub-Hook-ID / ping's hook_id
    target         TEXT,                    -- owner/name of the repository it is installed on, if any
    hook_type      TEXT,                    -- Repository | Organization | App ...
    events         TEXT NOT NULL DEFAULT '[]',  -- JSON array of subscribed events
    content_type   TEXT,                    -- json | form
    zen            TEXT,
    first_ping_at  TEXT NOT NULL,
    last_ping_at   TEXT NOT NULL
);

CREATE TABLE github_deliveries (
    id            INTEGER PRIMARY KEY,
    hook_id       TEXT NOT NULL,
    delivery      TEXT NOT NULL,            -- X-GitHub-Delivery
    event         TEXT NOT NULL,            -- X-GitHub-Event
    action        TEXT,
    repository    TEXT,                     -- repository.full_name in the payload
    received_at   TEXT NOT NULL,
    processed_at  TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('applied', 'ignored', 'pending', 'failed')),
    detail        TEXT NOT NULL DEFAULT '',
    UNIQUE (hook_id, delivery)
);
CREATE INDEX github_deliveries_by_time ON github_deliveries (processed_at);
