-- Suggestions: the articles a refusal offers to read instead of an answer (a JSON list of {article_id, version,
-- title, url}); NULL for every other message.
ALTER TABLE messages ADD COLUMN suggestions TEXT;
