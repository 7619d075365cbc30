-- Models installed on this box, with the SHA-256 of every file each one needs. Frozen.
CREATE TABLE models (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    format TEXT NOT NULL,
    path TEXT NOT NULL,
    files TEXT NOT NULL,
    origin TEXT NOT NULL,
    licence TEXT NOT NULL DEFAULT '',
    answer_capable INTEGER NOT NULL DEFAULT 0,
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL
);
