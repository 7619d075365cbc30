-- Conversations and their messages (the answer engine's first users; the conversation features extend these
-- tables), the provenance of every AI message, knowledge gaps and golden questions. Frozen.
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    channel TEXT NOT NULL DEFAULT 'api',
    status TEXT NOT NULL DEFAULT 'active',
    started_by TEXT NOT NULL,
    escalation_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    escalated_at TEXT
);
CREATE INDEX conversations_org_status ON conversations(org_id, status);

-- role: customer | ai | agent. For customer messages, query is the standalone query the question resolved to.
-- For AI messages: outcome answered | refused | blocked, confidence 0-100, sources (JSON list of cited passages)
-- and provenance (JSON: article versions, chunk ids, models and their SHA-256, template and calibration versions,
-- confidence features).
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    query TEXT,
    outcome TEXT,
    confidence INTEGER,
    mode TEXT,
    sources TEXT NOT NULL DEFAULT '[]',
    provenance TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, id);
CREATE INDEX messages_org_created ON messages(org_id, created_at);

-- Questions the assistant refused for lack of knowledge, with the best article it found and its score.
CREATE TABLE knowledge_gaps (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    message_id INTEGER REFERENCES messages(id),
    question TEXT NOT NULL,
    query TEXT NOT NULL,
    reason TEXT NOT NULL,
    best_article_id INTEGER,
    best_version INTEGER,
    best_score REAL,
    confidence INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX knowledge_gaps_org_created ON knowledge_gaps(org_id, created_at);

-- Golden questions: an expected article (expected_article_id) or "must refuse" (expected_article_id NULL).
CREATE TABLE golden_questions (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    question TEXT NOT NULL,
    expected_article_id INTEGER REFERENCES articles(id),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, question)
);
