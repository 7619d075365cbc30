"""Numbered, forward-only migrations. Each is a frozen SQL file in migrations/; PRAGMA user_version records the
last one applied, and each migration commits together with its version number, so a crash leaves either the old
schema or the new one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from sqlcipher3 import dbapi2

from appliance.errors import SchemaError
from appliance.store.db import Connection, Database

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """Split on statement boundaries the way SQLite itself does (trigger bodies hold semicolons)."""
        out: list[str] = []
        current = ""
        for line in self.sql.splitlines(keepends=True):
            current += line
            if dbapi2.complete_statement(current):
                if current.strip() and not all(
                    ln.strip().startswith("--") or not ln.strip() for ln in current.splitlines()
                ):
                    out.append(current.strip())
                current = ""
        if current.strip() and not all(ln.strip().startswith("--") for ln in current.splitlines() if ln.strip()):
            raise SchemaError(f"migration {self.version:04d}_{self.name}: incomplete statement at the end")
        return out


def all_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("appliance.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise SchemaError(f"migrations are not numbered 1..n: expected {expected:04d}, found {migration.version:04d}")
    return found


def head_version() -> int:
    return len(all_migrations())


def current_version(conn: Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def pending(db: Database) -> list[Migration]:
    with db.read() as conn:
        version = current_version(conn)
    migrations = all_migrations()
    if version > len(migrations):
        raise SchemaError(
            f"the database schema ({version}) is newer than this release knows ({len(migrations)}); "
            "upgrade the appliance instead of downgrading"
        )
    return migrations[version:]


def migrate(db: Database, target: int | None = None) -> list[Migration]:
    """Apply pending migrations up to target (default: all), each in its own transaction. Returns those applied."""
    applied = []
    for migration in pending(db):
        if target is not None and migration.version > target:
            break
        with db.write() as conn:
            if current_version(conn) != migration.version - 1:
                continue  # another process applied it between our read and our write
            for statement in migration.statements():
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {migration.version}")
        applied.append(migration)
    return applied


def require_current(db: Database) -> None:
    waiting = pending(db)
    if waiting:
        raise SchemaError(
            f"database schema is at {waiting[0].version - 1}, this release needs {waiting[-1].version}: "
            "run `appliance migrate`"
        )
