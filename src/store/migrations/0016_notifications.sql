-- Notifications (issue 14): the targets the config names, and the durable outbox of
-- deliveries to them, written in the same transaction as the change that causes them.

-- One row per configured target, replaced from the config at start. `key` is the kind and a
-- hash of the URL, so secrets never reach the database; `events`/`environments` are JSON
-- arrays, empty meaning all.
CREATE TABLE notification_targets (
    key          TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    events       TEXT NOT NULL,
    environments TEXT NOT NULL
);

-- One row per (event, target). `subject` is a JSON reference to what the event is about
-- (release, deploy or issue ids), rendered when it is sent. `state` is pending, delivered
-- or failed.
CREATE TABLE notification_deliveries (
    id           INTEGER PRIMARY KEY,
    org_id       INTEGER NOT NULL,
    target       TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    subject      TEXT NOT NULL,
    created      TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt TEXT NOT NULL,
    last_error   TEXT,
    finished     TEXT
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt);
