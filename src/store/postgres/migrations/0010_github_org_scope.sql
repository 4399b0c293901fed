-- GitHub hooks and deliveries belong to the organization the daemon applies them to (the
-- configured one): another organization's token must not list them.
ALTER TABLE github_hooks ADD COLUMN org_id BIGINT REFERENCES organizations(id);
ALTER TABLE github_deliveries ADD COLUMN org_id BIGINT REFERENCES organizations(id);

-- (No backfill: a PostgreSQL store starts empty at the schema of SQLite's 0017; see ../mod.rs.)

CREATE INDEX github_deliveries_by_org ON github_deliveries (org_id, processed_at);
