-- Facts about this shiplog instance that code without the config needs, written by the daemon
-- at start. `public_url`: the URL shiplog answers at, which `Fixes <issue URL>` must name.
CREATE TABLE settings (
    key    TEXT COLLATE "C" PRIMARY KEY,
    value  TEXT COLLATE "C" NOT NULL
);
