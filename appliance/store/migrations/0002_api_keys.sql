-- Scoped API keys for integrations; only a SHA-256 of the secret is kept. Frozen.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_keys_org ON api_keys(org_id);

ALTER TABLE users ADD COLUMN last_login_at TEXT;
