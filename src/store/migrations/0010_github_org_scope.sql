-- GitHub hooks and deliveries belong to the organization the daemon applies them to (the
-- configured one): another organization's token must not list them.
ALTER TABLE github_hooks ADD COLUMN org_id INTEGER REFERENCES organizations(id);
ALTER TABLE github_deliveries ADD COLUMN org_id INTEGER REFERENCES organizations(id);

-- Rows recorded before: the organization owning the repository they name, else the first
-- organization (the configured one, which webhooks have always been applied to).
UPDATE github_deliveries SET org_id = COALESCE(
    (SELECT r.org_id FROM repositories r WHERE r.name = github_deliveries.repository ORDER BY r.id LIMIT 1),
    (SELECT min(id) FROM organizations));
UPDATE github_hooks SET org_id = COALESCE(
    (SELECT r.org_id FROM repositories r WHERE r.name = github_hooks.target ORDER BY r.id LIMIT 1),
    (SELECT min(id) FROM organizations));

CREATE INDEX github_deliveries_by_org ON github_deliveries (org_id, processed_at);
