-- The web console: staff notes on conversations (never shown to the customer), and how far each person has read
-- each conversation (the inbox's unread counts). Both go with their conversation when retention purges it. Frozen.

CREATE TABLE conversation_notes (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    author_id INTEGER NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX conversation_notes_conversation ON conversation_notes(conversation_id, id);

-- last_read_message_id: the newest message the person had seen when they last opened the conversation.
CREATE TABLE conversation_reads (
    user_id INTEGER NOT NULL REFERENCES users(id),
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    last_read_message_id INTEGER NOT NULL,
    read_at TEXT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
CREATE INDEX conversation_reads_conversation ON conversation_reads(conversation_id);
