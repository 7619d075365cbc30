"""Storage benchmark: SQLCipher (the appliance's real storage layer) against plain SQLite, same schema, same code.

What is measured, per engine, on a fresh database migrated to the current schema (`users` table, ~250-byte rows):

- insert/s, single: one INSERT per `with db.write()` transaction (BEGIN IMMEDIATE ... COMMIT, synchronous=FULL), as
  the appliance's write path does; each commit waits for an fsync of the WAL, so this figure is mostly the disk's.
- insert/s, batched: 100 INSERTs per transaction; the fsync is amortised, so encryption cost shows more here.
- read/s: SELECT by primary key of a random existing id, each in its own `with db.read()` block.

Both engines go through the same `Database` class (write lock, read pool, WAL, synchronous=FULL, temp_store=MEMORY,
foreign_keys=ON); the plain engine only swaps the connection for the standard library's `sqlite3`, without a key.
Each figure is the median of --reps repetitions (engines alternate, fresh files each time) after a short warm-up.
The ratio is SQLCipher/plain throughput: 1.0 means encryption is free, 0.5 means half the speed. The goal checked is
SQLCipher >= 0.5x plain on both write figures. This prints figures only; it never fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.store.db import APPLICATION_ID, Connection, Database, now_iso
from appliance.store.schema import migrate

BATCH = 100
BATCH_FACTOR = 10  # batched rows = BATCH_FACTOR x --rows
WARMUP_ROWS, WARMUP_READS = 50, 500
WRITE_GOAL = 0.5
KEY = bytes(range(32))
# An argon2id PHC string, the length the appliance stores (97 characters).
PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$" + "c2FsdHNhbHRzYWx0c2FsdA" + "$" + "h" * 43


class PlainDatabase(Database):
    """The appliance's Database with stdlib sqlite3 connections: same pragmas, same write path, no key."""

    def _connect(self, create: bool = False, mode: str = "rw") -> Connection:  # mirrors Database._connect
        mode = "rwc" if create else mode
        conn = sqlite3.connect(
            f"file:{self.path}?mode={mode}", uri=True, isolation_level=None, check_same_thread=False, timeout=10
        )
        if not create and conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise RuntimeError(f"{self.path} is not a benchmark database")
        if mode.startswith("ro"):
            return conn
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.row_factory = sqlite3.Row
        return conn


ENGINES: dict[str, type[Database]] = {"sqlcipher": Database, "plain": PlainDatabase}
INSERT = (
    "INSERT INTO users (email, name, password_hash, created_at, password_changed_at, last_login_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
SELECT = "SELECT * FROM users WHERE id = ?"


def user_row(n: int) -> tuple[str, ...]:
    ts = now_iso()
    email, name = f"agent.{n:07d}@support.example-bank.com", f"Support Agent {n:07d} (Tier 2, EMEA)"
    return (email, name, PASSWORD_HASH, ts, ts, ts)


def rate(count: int, work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return count / (time.perf_counter() - start)


def run_once(engine: type[Database], path: Path, rows: int, reads: int, seed: int) -> dict[str, float]:
    db = engine.create(path, KEY)
    migrate(db)
    counter = iter(range(10**9))

    def single(n: int) -> None:
        for _ in range(n):
            with db.write() as conn:
                conn.execute(INSERT, user_row(next(counter)))

    def batched(n: int) -> None:
        for start in range(0, n, BATCH):
            with db.write() as conn:
                conn.executemany(INSERT, [user_row(next(counter)) for _ in range(min(BATCH, n - start))])

    def point_reads(ids: list[int]) -> None:
        for user_id in ids:
            with db.read() as conn:
                if conn.execute(SELECT, (user_id,)).fetchone() is None:
                    raise RuntimeError(f"user {user_id} missing")

    try:
        single(WARMUP_ROWS)
        out = {"insert_single": rate(rows, lambda: single(rows))}
        out["insert_batched"] = rate(rows * BATCH_FACTOR, lambda: batched(rows * BATCH_FACTOR))
        with db.read() as conn:
            top = int(conn.execute("SELECT max(id) FROM users").fetchone()[0])
        rng = random.Random(seed)  # same ids for both engines
        point_reads([rng.randint(1, top) for _ in range(WARMUP_READS)])
        ids = [rng.randint(1, top) for _ in range(reads)]
        out["read_point"] = rate(reads, lambda: point_reads(ids))
        return out
    finally:
        db.close()


def filesystem(path: Path) -> str:
    """The type of the filesystem holding path (Linux), since single-row inserts measure its fsync."""
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) >= 3 and str(path).startswith(fields[1]) and len(fields[1]) > len(best):
                    best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def versions() -> dict[str, str]:
    db_dir = Path(tempfile.mkdtemp(prefix="bench-ver-"))
    try:
        db = Database.create(db_dir / "v.db", KEY)
        with db.read() as conn:
            cipher = str(conn.execute("PRAGMA cipher_version").fetchone()[0])
            cipher_sqlite = str(conn.execute("SELECT sqlite_version()").fetchone()[0])
        db.close()
    finally:
        shutil.rmtree(db_dir)
    return {"sqlcipher": cipher, "sqlcipher_sqlite": cipher_sqlite, "plain_sqlite": sqlite3.sqlite_version}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=2000, help=f"single-row inserts (batched: {BATCH_FACTOR}x this)")
    parser.add_argument("--reads", type=int, default=20000, help="point reads by primary key")
    parser.add_argument("--reps", type=int, default=3, help="repetitions; the median is reported")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    if args.rows < 1 or args.reads < 1 or args.reps < 1:
        parser.error("--rows, --reads and --reps must be positive")

    work = Path(tempfile.mkdtemp(prefix="appliance-bench-", dir=args.dir)).resolve()
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in ENGINES}
    started = time.perf_counter()
    try:
        for rep in range(args.reps):
            order = list(ENGINES) if rep % 2 == 0 else list(reversed(ENGINES))
            for name in order:
                result = run_once(ENGINES[name], work / f"{name}-{rep}.db", args.rows, args.reads, seed=rep)
                for metric, value in result.items():
                    samples[name].setdefault(metric, []).append(value)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results: dict[str, dict[str, float]] = {}
    for metric in samples["plain"]:
        cipher, plain = (statistics.median(samples[name][metric]) for name in ("sqlcipher", "plain"))
        results[metric] = {"sqlcipher": round(cipher, 1), "plain": round(plain, 1), "ratio": round(cipher / plain, 3)}
    goal_met = all(results[m]["ratio"] >= WRITE_GOAL for m in ("insert_single", "insert_batched"))
    report: dict[str, Any] = {
        "versions": versions(),
        "cpu_count": os.cpu_count(),
        "dir": str(work.parent),
        "filesystem": filesystem(work),
        "params": {"rows": args.rows, "batched_rows": args.rows * BATCH_FACTOR, "batch": BATCH, "reads": args.reads,
                   "reps": args.reps},
        "results": results,
        "write_goal": {"min_ratio": WRITE_GOAL, "met": goal_met},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(report))
        return
    v = report["versions"]
    print(f"SQLCipher {v['sqlcipher']} (SQLite {v['sqlcipher_sqlite']}) vs stdlib sqlite3 (SQLite {v['plain_sqlite']})")
    print(f"CPUs: {report['cpu_count']}   dir: {report['dir']} ({report['filesystem']})   "
          f"median of {args.reps}, {report['elapsed_s']} s in all")
    labels = {"insert_single": f"insert/s, 1 row/tx ({args.rows})",
              "insert_batched": f"insert/s, {BATCH} rows/tx ({args.rows * BATCH_FACTOR})",
              "read_point": f"point read/s ({args.reads})"}
    print(f"{'':34}{'sqlcipher':>12}{'plain':>12}{'ratio':>8}")
    for metric, row in results.items():
        print(f"{labels[metric]:34}{row['sqlcipher']:>12,.0f}{row['plain']:>12,.0f}{row['ratio']:>8.2f}")
    verdict = "met" if goal_met else "NOT met"
    print(f"write goal (SQLCipher >= {WRITE_GOAL}x plain, both write figures): {verdict}")


if __name__ == "__main__":
    main()
