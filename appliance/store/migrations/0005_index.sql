-- The retrieval index of published articles. Frozen.
-- chunks: the passages of each article's published version, with their embedding (float32, little-endian) so the
-- dense index can always be rebuilt from the database without re-embedding; index_articles: each indexed article's
-- version and title embedding. Lexical search uses FTS5 tables per organisation (fts_chunks_<id>, rowid = chunk
-- id; fts_articles_<id>, rowid = article id), created on first use, so term statistics never mix organisations.
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    article_id INTEGER NOT NULL REFERENCES articles(id),
    version INTEGER NOT NULL,
    chunk_index INTEGER NOT NULL,
    title TEXT NOT NULL,
    heading_path TEXT NOT NULL DEFAULT '[]',
    text TEXT NOT NULL,
    start_offset INTEGER NOT NULL,
    end_offset INTEGER NOT NULL,
    text_sha256 TEXT NOT NULL,
    embedder TEXT NOT NULL DEFAULT '',
    embedding BLOB
);
CREATE INDEX chunks_org_article ON chunks(org_id, article_id);

CREATE TABLE index_articles (
    article_id INTEGER PRIMARY KEY REFERENCES articles(id),
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    embedder TEXT NOT NULL DEFAULT '',
    title_embedding BLOB
);
CREATE INDEX index_articles_org ON index_articles(org_id);

-- One row per organisation: the generation counts committed index changes; a dense index file is valid only for
-- the generation it was written at.
CREATE TABLE index_state (
    org_id INTEGER PRIMARY KEY REFERENCES orgs(id),
    generation INTEGER NOT NULL DEFAULT 0,
    embedder TEXT NOT NULL DEFAULT '',
    dim INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);

-- Articles whose index entry must be refreshed. Written in the same transaction as the article change, so no
-- change is lost if the process stops before the index task runs; the task queue carries only organisation ids.
CREATE TABLE index_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    article_id INTEGER NOT NULL REFERENCES articles(id),
    queued_at TEXT NOT NULL
);
CREATE INDEX index_outbox_org ON index_outbox(org_id, article_id);
