-- Redaction: what was masked in a message before it was stored, as kinds and counts (a JSON object such as
-- {"pan": 1, "cvv": 1}); NULL when nothing was. Never the values: they are gone from the database.
ALTER TABLE messages ADD COLUMN redactions TEXT;
