-- Two-step verification: a TOTP secret per person (RFC 6238), enabled once a first code from it is confirmed.
-- last_step is the newest time step accepted, so a code is never accepted twice; recovery holds the SHA-256 of the
-- unused one-time recovery codes (JSON list); failures counts wrong codes in a row, which lock it until locked_until.
CREATE TABLE user_mfa (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    secret TEXT NOT NULL,
    enabled_at TEXT,
    last_step INTEGER NOT NULL DEFAULT 0,
    recovery TEXT NOT NULL DEFAULT '[]',
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
