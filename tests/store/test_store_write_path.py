"""The one write path: full disk rolls back whole, wrong keys and foreign files are refused unchanged."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from pathlib import Path

import pytest

from appliance.errors import StorageFull, WrongKey
from appliance.instance import Instance
from appliance.store import Database
from appliance.store.schema import migrate
from tests.conftest import PASSWORD, Seed, client_for


def _digest_dir(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_full_disk_rolls_back_the_whole_change(inst: Instance, seed: Seed) -> None:
    admin = client_for(inst, Seed.email("admin"))
    with inst.db.read() as conn:
        users_before = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        events_before = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    # SQLite answers SQLITE_FULL exactly as on a full disk once the file may not grow past its current size.
    inst.db.writer_connection().execute(f"PRAGMA max_page_count = {pages}")
    big_name = "n" * 150
    failures = 0
    for i in range(40):
        response = admin.post(
            "/api/users",
            json={"email": f"filler{i}@north.example", "password": PASSWORD, "role": "agent", "name": big_name},
        )
        if response.status_code == 507:
            assert response.json()["code"] == "storage_full"
            assert response.json()["retryable"] is True
            failures += 1
            break
        assert response.status_code == 201
    assert failures == 1, "the database never filled up"
    with inst.db.read() as conn:
        users_after = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        events_after = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
        # Every user that was created has its audit event: the failed one has neither.
        assert users_after - users_before == events_after - events_before
        assert conn.execute("SELECT count(*) FROM users WHERE email = ?", (f"filler{i}@north.example",)).fetchone()[0] == 0
    assert inst.db.integrity_check() == ["ok"]
    # Space freed: writes work again.
    inst.db.writer_connection().execute("PRAGMA max_page_count = 1073741823")
    again = admin.post("/api/users", json={"email": f"filler{i}@north.example", "password": PASSWORD, "role": "agent"})
    assert again.status_code == 201


def test_exception_in_a_write_rolls_back(tmp_path: Path) -> None:
    db = Database.create(tmp_path / "x.db", secrets.token_bytes(32))
    migrate(db)
    with pytest.raises(RuntimeError):
        with db.write() as conn:
            conn.execute("INSERT INTO orgs (slug, name, created_at) VALUES ('a', 'A', 'now')")
            raise RuntimeError("boom")
    with db.read() as conn:
        assert conn.execute("SELECT count(*) FROM orgs").fetchone()[0] == 0
    db.close()


def test_concurrent_writers_are_serialised(tmp_path: Path) -> None:
    db = Database.create(tmp_path / "x.db", secrets.token_bytes(32))
    migrate(db)

    def worker(n: int) -> None:
        for i in range(25):
            with db.write() as conn:
                count = conn.execute("SELECT count(*) FROM orgs").fetchone()[0]
                conn.execute("INSERT INTO orgs (slug, name, created_at) VALUES (?, ?, 'now')", (f"o{n}-{i}", str(count)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as conn:
        names = sorted(int(r[0]) for r in conn.execute("SELECT name FROM orgs"))
    assert names == list(range(100))  # each write saw every earlier one: no lost update
    db.close()


def test_wrong_key_and_foreign_files_are_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    db = Database.create(path, secrets.token_bytes(32))
    migrate(db)
    db.close()
    before = _digest_dir(tmp_path)
    with pytest.raises(WrongKey, match="cannot open database: wrong key or not an appliance database"):
        Database.open(path, secrets.token_bytes(32))
    assert _digest_dir(tmp_path) == before

    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
    text = tmp_path / "notes.txt"
    text.write_text("just some text, not a database at all " * 100)
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    before = _digest_dir(tmp_path)
    for foreign in (plain, text, empty):
        with pytest.raises(WrongKey):
            Database.open(foreign, secrets.token_bytes(32))
    assert _digest_dir(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x.db", "plain.db", "notes.txt", "empty.db"])


def test_full_error_maps_to_storage_full(tmp_path: Path) -> None:
    db = Database.create(tmp_path / "x.db", secrets.token_bytes(32))
    migrate(db)
    with db.read() as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    db.writer_connection().execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StorageFull):
        with db.write() as conn:
            for i in range(2000):
                conn.execute("INSERT INTO orgs (slug, name, created_at) VALUES (?, ?, 'now')", (f"s{i}", "x" * 300))
    with db.read() as conn:
        assert conn.execute("SELECT count(*) FROM orgs").fetchone()[0] == 0
    db.close()


def test_paths_with_uri_characters_open(tmp_path: Path) -> None:
    odd = tmp_path / "data dir #1?x=y"
    odd.mkdir()
    key = secrets.token_bytes(32)
    db = Database.create(odd / "x.db", key)
    migrate(db)
    db.close()
    reopened = Database.open(odd / "x.db", key)
    assert reopened.integrity_check() == ["ok"]
    reopened.close()
    assert sorted(p.name for p in odd.iterdir() if p.name.startswith("x.db")) == ["x.db"]  # nothing created beside it
