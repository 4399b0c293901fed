-- Facts about this shiplog instance that code without the config needs, written by the daemon
-- at start. `public_url`: the URL shiplog answers at, which `Fixes <issue URL>` must name.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
