-- Knowledge base articles and their immutable versions. Frozen.
CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    external_id TEXT,
    current_version INTEGER NOT NULL,
    published_version INTEGER,
    status TEXT NOT NULL,
    views INTEGER NOT NULL DEFAULT 0,
    helpful INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (org_id, external_id)
);
CREATE INDEX articles_org_status ON articles(org_id, status);

CREATE TABLE article_versions (
    article_id INTEGER NOT NULL REFERENCES articles(id),
    version INTEGER NOT NULL,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    title TEXT NOT NULL,
    content TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    author TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    content_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (article_id, version)
);

CREATE TRIGGER article_versions_immutable BEFORE UPDATE ON article_versions
BEGIN
    SELECT RAISE(ABORT, 'article versions are immutable');
END;
