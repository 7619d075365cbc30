-- Conversations in real time: customers, the conversation's state (assignment, sentiment, topic, priority,
-- resolution, CSAT), message delivery ids, teams and agents, escalation rules and their decisions, topics, widget
-- keys, canned replies and outbound webhooks. Frozen.

-- A customer: known by an external id (the intranet's user id, from a signed identity) or an email; the totals
-- are kept up to date as conversations change.
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    external_id TEXT,
    email TEXT COLLATE NOCASE,
    name TEXT NOT NULL DEFAULT '',
    lifetime_value REAL NOT NULL DEFAULT 0,
    total_conversations INTEGER NOT NULL DEFAULT 0,
    total_messages INTEGER NOT NULL DEFAULT 0,
    sentiment_sum REAL NOT NULL DEFAULT 0,
    sentiment_count INTEGER NOT NULL DEFAULT 0,
    last_contact_at TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX customers_external ON customers(org_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX customers_email ON customers(org_id, email);

-- Teams route escalations; business_hours is JSON {"timezone": "...", "days": {"mon": [["09:00", "17:00"]], ...}}
-- (empty: always open).
CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    business_hours TEXT NOT NULL DEFAULT '{}',
    out_of_hours_message TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (team_id, user_id)
);

-- An agent's availability (online | away | offline) and how many open conversations they take at once.
CREATE TABLE agents (
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    availability TEXT NOT NULL DEFAULT 'offline',
    capacity INTEGER NOT NULL DEFAULT 5,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

ALTER TABLE conversations ADD COLUMN customer_id INTEGER REFERENCES customers(id);
ALTER TABLE conversations ADD COLUMN visitor_id TEXT;
ALTER TABLE conversations ADD COLUMN team_id INTEGER REFERENCES teams(id);
ALTER TABLE conversations ADD COLUMN assigned_agent_id INTEGER REFERENCES users(id);
ALTER TABLE conversations ADD COLUMN assigned_at TEXT;
-- handled_by: ai (the assistant answers) | agent (a person took over; the assistant is silent)
ALTER TABLE conversations ADD COLUMN handled_by TEXT NOT NULL DEFAULT 'ai';
ALTER TABLE conversations ADD COLUMN sentiment REAL;
ALTER TABLE conversations ADD COLUMN sentiment_label TEXT;
ALTER TABLE conversations ADD COLUMN topic TEXT;
ALTER TABLE conversations ADD COLUMN priority TEXT NOT NULL DEFAULT 'medium';
ALTER TABLE conversations ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE conversations ADD COLUMN resolution_type TEXT;
ALTER TABLE conversations ADD COLUMN bot_turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN first_response_at TEXT;
ALTER TABLE conversations ADD COLUMN resolved_at TEXT;
ALTER TABLE conversations ADD COLUMN closed_at TEXT;
ALTER TABLE conversations ADD COLUMN csat INTEGER;
ALTER TABLE conversations ADD COLUMN csat_comment TEXT;
ALTER TABLE conversations ADD COLUMN csat_at TEXT;
CREATE INDEX conversations_agent ON conversations(org_id, assigned_agent_id, status);
CREATE INDEX conversations_queue ON conversations(org_id, team_id, status);
CREATE INDEX conversations_customer ON conversations(customer_id);

-- sender: visitor:<id> | user:<id> | apikey:<id> | ai. client_id: the sender's id for the message; a resend with
-- the same id from the same sender is the same message. feedback: up | down (a customer's thumbs on an AI answer).
ALTER TABLE messages ADD COLUMN sender TEXT;
ALTER TABLE messages ADD COLUMN client_id TEXT;
ALTER TABLE messages ADD COLUMN model TEXT;
ALTER TABLE messages ADD COLUMN tokens INTEGER;
ALTER TABLE messages ADD COLUMN sentiment REAL;
ALTER TABLE messages ADD COLUMN sentiment_label TEXT;
ALTER TABLE messages ADD COLUMN feedback TEXT;
CREATE UNIQUE INDEX messages_client_id ON messages(org_id, sender, client_id) WHERE client_id IS NOT NULL;

-- Escalation rules, evaluated in priority order (lowest first). trigger_type: sentiment | keyword | topic |
-- customer_value | confidence | repeated_failure | customer_request; action: escalate | tag | route_to_team.
CREATE TABLE escalation_rules (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    trigger_type TEXT NOT NULL,
    trigger_value TEXT NOT NULL,
    action TEXT NOT NULL,
    target_team_id INTEGER REFERENCES teams(id),
    tag TEXT,
    priority INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX escalation_rules_org ON escalation_rules(org_id, priority);

-- Every decision taken on a conversation (a rule or a built-in trigger fired), with its inputs.
CREATE TABLE escalation_decisions (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    message_id INTEGER REFERENCES messages(id),
    rule_id INTEGER,
    trigger_type TEXT NOT NULL,
    action TEXT NOT NULL,
    team_id INTEGER,
    reason TEXT NOT NULL,
    inputs TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX escalation_decisions_conversation ON escalation_decisions(conversation_id, id);

-- Topics: the routing taxonomy, each with example questions; the trained classifier is stored per organisation.
CREATE TABLE topics (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    examples TEXT NOT NULL DEFAULT '[]',
    team_id INTEGER REFERENCES teams(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE topic_models (
    org_id INTEGER PRIMARY KEY REFERENCES orgs(id),
    version TEXT NOT NULL,
    model BLOB NOT NULL,
    examples_sha256 TEXT NOT NULL,
    trained_at TEXT NOT NULL
);

-- Widget keys: the public key a widget names in its script tag, the secret an intranet signs identities with,
-- and the widget theme (JSON).
CREATE TABLE widget_keys (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    public_key TEXT NOT NULL UNIQUE,
    identity_secret TEXT NOT NULL,
    theme TEXT NOT NULL DEFAULT '{}',
    revoked INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE canned_replies (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, title)
);

-- Outbound webhooks: events (JSON list) signed with the secret; each event to each hook is a delivery row written
-- in the same transaction as the change (nothing is lost), then sent with retries. status: pending | delivered |
-- failed (given up after the last attempt).
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    webhook_id INTEGER NOT NULL REFERENCES webhooks(id),
    event TEXT NOT NULL,
    event_id TEXT NOT NULL,
    conversation_id INTEGER,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status_code INTEGER,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);
