-- Resolution by the assistant (docs/analytics.md): per day and team, the conversations counted (those in which the
-- assistant answered with a cited source or refused) and what became of them, each in exactly one of resolved by
-- the assistant, a person took part, disliked (a thumbs-down on an AI answer or a CSAT of 1-2), unanswered (only
-- refusals, no person) or not ended yet. Rows rolled up before this migration hold zeros until their day is
-- recomputed. Frozen.
ALTER TABLE analytics_daily ADD COLUMN assistant_counted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE analytics_daily ADD COLUMN assistant_resolved INTEGER NOT NULL DEFAULT 0;
ALTER TABLE analytics_daily ADD COLUMN assistant_person INTEGER NOT NULL DEFAULT 0;
ALTER TABLE analytics_daily ADD COLUMN assistant_disliked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE analytics_daily ADD COLUMN assistant_open INTEGER NOT NULL DEFAULT 0;
ALTER TABLE analytics_daily ADD COLUMN assistant_unanswered INTEGER NOT NULL DEFAULT 0;

-- A takeover that was released again leaves no mark on the conversation; the rollup finds it in the audit trail
-- (conversation.assigned on target conversation:<id>), which this index lets it read without a scan.
CREATE INDEX audit_events_target ON audit_events(target, action);
