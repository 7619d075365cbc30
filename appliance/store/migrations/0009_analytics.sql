-- Analytics: reviewers' labels on AI answers, and the daily rollups the dashboard reads. Frozen.

-- A reviewer's label on one AI reply (outcome answered, refused or blocked): was it the right reply? One label per
-- message; a new review replaces the old one. A reason is required when the verdict is incorrect. Purged with the
-- message.
CREATE TABLE answer_reviews (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    message_id INTEGER NOT NULL UNIQUE REFERENCES messages(id),
    reviewer_id INTEGER NOT NULL REFERENCES users(id),
    verdict TEXT NOT NULL CHECK (verdict IN ('correct', 'incorrect')),
    reason TEXT CHECK (reason IS NULL OR length(reason) <= 1000),
    created_at TEXT NOT NULL,
    CHECK (verdict = 'correct' OR length(trim(coalesce(reason, ''))) > 0)
);
CREATE INDEX answer_reviews_org ON answer_reviews(org_id, created_at);

-- One row per organisation, UTC day and team (team_id 0: conversations with no team, the assistant's alone). Counts
-- and sums add up over days and teams; durations are kept as sorted JSON arrays of seconds, so medians and
-- percentiles over any range are computed from every value, not from daily medians. Maps are JSON objects keyed by
-- topic name, value band, "trigger_type:rule_id", agent user id or confidence band. No customer text is stored
-- here: rows outlive the conversations they were computed from.
CREATE TABLE analytics_daily (
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    day TEXT NOT NULL,
    team_id INTEGER NOT NULL DEFAULT 0,
    conversations INTEGER NOT NULL DEFAULT 0,
    customer_messages INTEGER NOT NULL DEFAULT 0,
    resolved INTEGER NOT NULL DEFAULT 0,
    ai_resolved INTEGER NOT NULL DEFAULT 0,
    agent_resolved INTEGER NOT NULL DEFAULT 0,
    escalated INTEGER NOT NULL DEFAULT 0,
    escalations_unanswered INTEGER NOT NULL DEFAULT 0,
    first_response_s TEXT NOT NULL DEFAULT '[]',
    agent_first_reply_s TEXT NOT NULL DEFAULT '[]',
    resolution_s TEXT NOT NULL DEFAULT '[]',
    csat_count INTEGER NOT NULL DEFAULT 0,
    csat_sum INTEGER NOT NULL DEFAULT 0,
    csat_counts TEXT NOT NULL DEFAULT '[0, 0, 0, 0, 0]',
    sentiment_count INTEGER NOT NULL DEFAULT 0,
    sentiment_sum REAL NOT NULL DEFAULT 0,
    sentiment_by_topic TEXT NOT NULL DEFAULT '{}',
    sentiment_by_segment TEXT NOT NULL DEFAULT '{}',
    escalation_reasons TEXT NOT NULL DEFAULT '{}',
    agents TEXT NOT NULL DEFAULT '{}',
    ai_answers INTEGER NOT NULL DEFAULT 0,
    ai_reviewed INTEGER NOT NULL DEFAULT 0,
    ai_correct INTEGER NOT NULL DEFAULT 0,
    ai_by_band TEXT NOT NULL DEFAULT '{}',
    computed_at TEXT NOT NULL,
    PRIMARY KEY (org_id, day, team_id)
);

-- When each organisation's rollup last ran: changes after it (less a safety overlap) mark their days for the next.
CREATE TABLE analytics_state (
    org_id INTEGER PRIMARY KEY REFERENCES orgs(id),
    rolled_up_at TEXT NOT NULL
);

-- Days to recompute that no timestamp shows, such as a review cleared (the row is gone).
CREATE TABLE analytics_stale (
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    day TEXT NOT NULL,
    marked_at TEXT NOT NULL,
    PRIMARY KEY (org_id, day)
);
