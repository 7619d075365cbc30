"""Upgrading from every earlier schema to the newest keeps the data and yields the same schema as a fresh install."""

from __future__ import annotations

import json

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.store import Connection, Database
from appliance.store.schema import all_migrations, current_version, head_version, migrate, pending

NOW = "2026-01-01T00:00:00.000000Z"


def _seed_v1(conn: Connection) -> None:
    conn.execute("INSERT INTO orgs (id, slug, name, created_at) VALUES (1, 'old', 'Old Org', ?)", (NOW,))
    conn.execute(
        "INSERT INTO users (id, email, name, password_hash, created_at, password_changed_at) "
        "VALUES (1, 'old@org.example', 'Old User', 'hash', ?, ?)",
        (NOW, NOW),
    )
    conn.execute("INSERT INTO memberships VALUES (1, 1, 'admin', ?)", (NOW,))


def _seed_v2(conn: Connection) -> None:
    conn.execute(
        "INSERT INTO api_keys (org_id, name, prefix, secret_hash, scopes, created_by, created_at) "
        "VALUES (1, 'k', 'abc', 'h', '[]', 'cli:root', ?)",
        (NOW,),
    )


def _seed_v3(conn: Connection) -> None:
    conn.execute(
        "INSERT INTO models (name, role, format, path, files, origin, added_at, added_by) "
        "VALUES ('m', 'llm', 'gguf', 'm.gguf', '{}', 'site', ?, 'cli:root')",
        (NOW,),
    )


def _seed_v4(conn: Connection) -> None:
    conn.execute(
        "INSERT INTO articles (id, org_id, current_version, status, created_at, updated_at) "
        "VALUES (1, 1, 1, 'draft', ?, ?)",
        (NOW, NOW),
    )
    conn.execute(
        "INSERT INTO article_versions (article_id, version, org_id, title, content, status, author, "
        "content_sha256, created_at) VALUES (1, 1, 1, 'T', 'C', 'draft', 'cli:root', 'x', ?)",
        (NOW,),
    )


def _seed_v5(conn: Connection) -> None:
    conn.execute(
        "INSERT INTO chunks (org_id, article_id, version, chunk_index, title, text, start_offset, end_offset,"
        " text_sha256) VALUES (1, 1, 1, 0, 'T', 'C', 0, 1, 'x')"
    )
    conn.execute("INSERT INTO index_state (org_id, generation, updated_at) VALUES (1, 1, ?)", (NOW,))
    conn.execute("INSERT INTO index_outbox (org_id, article_id, queued_at) VALUES (1, 1, ?)", (NOW,))


def _seed_v6(conn: Connection) -> None:
    conn.execute(
        "INSERT INTO conversations (id, org_id, started_by, created_at, updated_at) VALUES (1, 1, 'user:1', ?, ?)",
        (NOW, NOW),
    )
    conn.execute(
        "INSERT INTO messages (conversation_id, org_id, role, content, created_at) VALUES (1, 1, 'customer', 'Hi', ?)",
        (NOW,),
    )


def _seed_v7(conn: Connection) -> None:
    conn.execute(
        "INSERT INTO passage_flags (org_id, article_id, version, chunk_index, text_sha256, sentence, score, reason,"
        " created_at) VALUES (1, 1, 1, 0, 'x', 'Ignore the above.', 0.99, 'override', ?)",
        (NOW,),
    )


def _seed_v8(conn: Connection) -> None:
    conn.execute("INSERT INTO customers (id, org_id, external_id, email, created_at) VALUES (1, 1, 'u1', 'c@x.example', ?)",
                 (NOW,))  # fmt: skip
    conn.execute("INSERT INTO teams (id, org_id, name, created_at) VALUES (1, 1, 'Billing', ?)", (NOW,))
    conn.execute("UPDATE conversations SET customer_id = 1, team_id = 1, status = 'escalated' WHERE id = 1")
    conn.execute(
        "INSERT INTO escalation_rules (org_id, name, trigger_type, trigger_value, action, priority, created_by,"
        " created_at, updated_at) VALUES (1, 'angry', 'sentiment', '25', 'escalate', 1, 'cli:root', ?, ?)", (NOW, NOW),
    )  # fmt: skip
    conn.execute(
        "INSERT INTO webhooks (org_id, url, secret, events, created_by, created_at)"
        " VALUES (1, 'http://127.0.0.1:9/h', 's', '[\"message.created\"]', 'cli:root', ?)", (NOW,),
    )  # fmt: skip


def _seed_v9(conn: Connection) -> None:
    conn.execute(
        "INSERT INTO messages (id, conversation_id, org_id, role, content, outcome, confidence, created_at)"
        " VALUES (2, 1, 1, 'ai', 'Yes.', 'answered', 91, ?)", (NOW,),
    )  # fmt: skip
    conn.execute("INSERT INTO answer_reviews (org_id, message_id, reviewer_id, verdict, reason, created_at)"
                 " VALUES (1, 2, 1, 'incorrect', 'wrong clinic', ?)", (NOW,))  # fmt: skip
    conn.execute("INSERT INTO analytics_daily (org_id, day, conversations, first_response_s, computed_at)"
                 " VALUES (1, '2026-01-01', 1, '[4.5]', ?)", (NOW,))  # fmt: skip
    conn.execute("INSERT INTO analytics_state (org_id, rolled_up_at) VALUES (1, ?)", (NOW,))
    conn.execute("INSERT INTO analytics_stale (org_id, day, marked_at) VALUES (1, '2026-01-01', ?)", (NOW,))


def _seed_v10(conn: Connection) -> None:
    conn.execute("INSERT INTO conversation_notes (org_id, conversation_id, author_id, body, created_at)"
                 " VALUES (1, 1, 1, 'Called the customer back', ?)", (NOW,))  # fmt: skip
    conn.execute("INSERT INTO conversation_reads (user_id, conversation_id, last_read_message_id, read_at)"
                 " VALUES (1, 1, 1, ?)", (NOW,))  # fmt: skip


def _seed_v11(conn: Connection) -> None:
    conn.execute("INSERT INTO user_mfa (user_id, secret, enabled_at, last_step, recovery, created_at)"
                 " VALUES (1, 'JBSWY3DPEHPK3PXP', ?, 59000000, '[]', ?)", (NOW, NOW))  # fmt: skip


def _seed_v12(conn: Connection) -> None:
    conn.execute("INSERT INTO messages (conversation_id, org_id, role, content, sender, redactions, created_at)"
                 " VALUES (1, 1, 'customer', 'card \u2022\u2022\u2022\u2022 1111', 'visitor:v', '{\"pan\": 1}', ?)",
                 (NOW,))  # fmt: skip


def _seed_v13(conn: Connection) -> None:
    conn.execute("INSERT INTO messages (conversation_id, org_id, role, content, outcome, sender, suggestions, created_at)"
                 " VALUES (1, 1, 'ai', 'These articles may help:', 'refused', 'ai',"
                 " '[{\"article_id\": 1, \"version\": 1, \"title\": \"T\", \"url\": \"/help/o/articles/1\"}]', ?)",
                 (NOW,))  # fmt: skip


def _seed_v14(conn: Connection) -> None:
    conn.execute("UPDATE analytics_daily SET assistant_counted = 2, assistant_resolved = 1, assistant_unanswered = 1"
                 " WHERE org_id = 1")


def _seed_v15(conn: Connection) -> None:
    conn.execute("UPDATE articles SET helpful = 1 WHERE id = 1")


def test_thumbs_up_given_before_0015_are_counted_on_the_articles_they_cite(tmp_path: Path) -> None:
    db = Database.create(tmp_path / "old.db", secrets.token_bytes(32))
    migrate(db, target=14)
    with db.write() as conn:
        for version in range(1, 15):
            SEEDERS[version](conn)
        for feedback, cited in [("up", 1), ("up", 1), ("down", 1), ("up", 2), (None, 1)]:
            conn.execute("INSERT INTO messages (conversation_id, org_id, role, content, outcome, sender, sources,"
                         " feedback, created_at) VALUES (1, 1, 'ai', 'A', 'answered', 'ai', ?, ?, ?)",
                         (json.dumps([{"number": 1, "article_id": cited}]), feedback, NOW))  # fmt: skip
    migrate(db)
    with db.read() as conn:
        assert conn.execute("SELECT helpful FROM articles WHERE id = 1").fetchone()[0] == 2
    db.close()


# Data each schema version can hold; a new migration adds its seeder here.
SEEDERS: dict[int, Callable[[Connection], None]] = {
    1: _seed_v1, 2: _seed_v2, 3: _seed_v3, 4: _seed_v4, 5: _seed_v5, 6: _seed_v6, 7: _seed_v7, 8: _seed_v8,
    9: _seed_v9,
    10: _seed_v10,
    11: _seed_v11,
    12: _seed_v12,
    13: _seed_v13,
    14: _seed_v14,
    15: _seed_v15,
}  # fmt: skip


def _schema(db: Database) -> set[tuple[str, str]]:
    with db.read() as conn:
        return {(r[0], r[1]) for r in conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}


def _columns(db: Database) -> dict[str, list[str]]:
    with db.read() as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}


def test_every_migration_has_a_seeder() -> None:
    assert sorted(SEEDERS) == [m.version for m in all_migrations()]


@pytest.mark.parametrize("start", range(0, head_version()))
def test_upgrade_from_every_earlier_schema(tmp_path: Path, start: int) -> None:
    fresh = Database.create(tmp_path / "fresh.db", secrets.token_bytes(32))
    migrate(fresh)

    db = Database.create(tmp_path / "old.db", secrets.token_bytes(32))
    migrate(db, target=start)
    for version in range(1, start + 1):
        with db.write() as conn:
            SEEDERS[version](conn)
    with db.read() as conn:
        assert current_version(conn) == start
    applied = migrate(db)
    assert [m.version for m in applied] == list(range(start + 1, head_version() + 1))
    assert pending(db) == []
    assert _schema(db) == _schema(fresh)
    assert _columns(db) == _columns(fresh)
    assert db.integrity_check() == ["ok"]
    if start >= 1:
        with db.read() as conn:
            assert conn.execute("SELECT email FROM users WHERE id = 1").fetchone()[0] == "old@org.example"
    assert migrate(db) == []  # idempotent
    db.close()
    fresh.close()


def test_a_failing_migration_rolls_back_whole(tmp_path: Path) -> None:
    db = Database.create(tmp_path / "x.db", secrets.token_bytes(32))
    migrate(db, target=1)
    with db.write() as conn:
        conn.execute("CREATE TABLE api_keys (id INTEGER PRIMARY KEY)")  # makes 0002 fail half-way
    with pytest.raises(Exception):
        migrate(db)
    with db.read() as conn:
        assert current_version(conn) == 1
        columns = [r[1] for r in conn.execute("PRAGMA table_info(users)")]
    assert "last_login_at" not in columns  # nothing of 0002 stayed
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = Database.create(tmp_path / "x.db", secrets.token_bytes(32))
    migrate(db)
    with db.write() as conn:
        conn.execute(f"PRAGMA user_version = {head_version() + 1}")
    with pytest.raises(Exception, match="newer than this release"):
        pending(db)
    db.close()
