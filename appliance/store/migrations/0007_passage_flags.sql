-- Passages of published articles that the injection scanner held out of the retrieval index until an editor
-- decides. A flag names its passage by the SHA-256 of the passage text, so a decision follows that exact text from
-- version to version and an edited passage is scanned afresh. status: pending | approved | rejected; an approved
-- passage is indexed, a pending or rejected one never is. Frozen.
CREATE TABLE passage_flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    article_id INTEGER NOT NULL REFERENCES articles(id),
    version INTEGER NOT NULL,
    chunk_index INTEGER NOT NULL,
    text_sha256 TEXT NOT NULL,
    sentence TEXT NOT NULL,
    score REAL NOT NULL,
    reason TEXT NOT NULL,
    scanner TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending',
    reviewed_by TEXT,
    reviewed_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, article_id, text_sha256)
);
CREATE INDEX passage_flags_org_status ON passage_flags(org_id, status, id);
