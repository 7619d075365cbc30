"""The one place that opens the SQLCipher database.

Every connection gets its key first, then is proved to be ours (it decrypts, and its application_id is the
appliance's) before any pragma that could write. So a wrong key or a foreign file is refused without a byte on disk
changing. Writes go through one writer connection behind a lock (one write path); reads use a small pool.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote
from typing import TYPE_CHECKING, Any

import sqlcipher3
from sqlcipher3 import dbapi2

from appliance.errors import DataDirError, StorageError, StorageFull, WrongKey

# "APL1": marks a SQLCipher file as an appliance database, so a valid database of something else is refused.
APPLICATION_ID = 0x41504C31
CACHE_KIB = 32 * 1024
READ_POOL_SIZE = 4

if TYPE_CHECKING:
    # sqlcipher3 ships no type information; its API is the standard library's sqlite3 API.
    from sqlite3 import Connection, Row
else:
    Connection = dbapi2.Connection
    Row = dbapi2.Row


def now_iso() -> str:
    """UTC timestamps as fixed-width ISO strings, so text order is time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def translate_error(exc: dbapi2.Error) -> Exception:
    text = str(exc)
    if "database or disk is full" in text:
        return StorageFull("storage is full: the change was rolled back")
    if "readonly database" in text:
        return DataDirError("the database is read-only: check the data dir's permissions")
    if "file is not a database" in text:
        return WrongKey()
    if isinstance(exc, dbapi2.IntegrityError):
        return exc  # callers turn constraint violations into domain errors
    return StorageError(f"database error: {text}")


def _reraise(exc: dbapi2.Error) -> None:
    translated = translate_error(exc)
    if translated is exc:
        raise exc
    raise translated from exc


class Database:
    def __init__(self, path: Path, key: bytes) -> None:
        if len(key) != 32:
            raise WrongKey("database key must be 256 bits")
        self.path = path
        self._key_pragma = f"PRAGMA key = \"x'{key.hex()}'\""
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: queue.LifoQueue[Connection] = queue.LifoQueue()
        self._reader_count = 0
        self._reader_guard = threading.Lock()
        self._writer: Connection | None = None
        self._closed = False

    # -- opening ---------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, key: bytes) -> Database:
        if path.exists():
            raise DataDirError(f"{path} already exists; refusing to overwrite a database")
        db = cls(path, key)
        conn = db._connect(create=True)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.close()
        path.chmod(0o600)
        return db

    @classmethod
    def open(cls, path: Path, key: bytes) -> Database:
        if not path.exists():
            raise DataDirError(f"no database at {path}; run `appliance init` first")
        db = cls(path, key)
        # Prove the key first on a connection that touches nothing: closing a read-write connection that failed to
        # decrypt would still checkpoint a leftover WAL into the file, and even a read-only one rebuilds -shm after
        # a crash. immutable=1 reads only the main file (page 1 carries the key check and the application_id).
        db._connect(mode="ro&immutable=1").close()
        return db

    def _connect(self, create: bool = False, mode: str = "rw") -> Connection:
        mode = "rwc" if create else mode
        try:
            conn = sqlcipher3.connect(
                f"file:{quote(str(self.path))}?mode={mode}",  # quoted: a '?' or '#' in the path is not a URI part
                uri=True, isolation_level=None, check_same_thread=False, timeout=10,
            )  # fmt: skip
        except dbapi2.Error as exc:
            raise DataDirError(f"cannot open database {self.path}: {exc}") from None
        try:
            # SQLCipher prints decryption failures to stderr itself; the error we raise says it once, clearly.
            conn.execute("PRAGMA cipher_log_level = NONE")
            conn.execute(self._key_pragma)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        except dbapi2.DatabaseError:
            conn.close()
            raise WrongKey() from None
        if not create and app_id != APPLICATION_ID:
            conn.close()
            raise WrongKey()
        if mode.startswith("ro"):
            return conn
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        # FULL: a committed message or audit event survives power loss, not just a process crash.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 10000")
        # Decrypted pages kept per connection: search reads the same FTS5 and passage pages question after question.
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.row_factory = dbapi2.Row
        return conn

    # -- reads -----------------------------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads; inside a write transaction, the writer itself (it sees its own changes)."""
        tx = getattr(self._local, "tx", None)
        if tx is not None:
            yield tx
            return
        conn = self._take_reader()
        try:
            yield conn
        except dbapi2.Error as exc:
            _reraise(exc)
        finally:
            if conn.in_transaction:
                conn.rollback()
            self._readers.put(conn)

    def _take_reader(self) -> Connection:
        if self._closed:
            raise StorageError("database is closed")
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            pass
        with self._reader_guard:
            if self._reader_count < READ_POOL_SIZE:
                self._reader_count += 1
                return self._connect()
        return self._readers.get(timeout=30)

    # -- the write path --------------------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction on the single writer. Nested calls join the outer transaction; any exception rolls
        the whole of it back, so nothing is half-written."""
        tx = getattr(self._local, "tx", None)
        if tx is not None:
            yield tx
            return
        with self._write_lock:
            if self._closed:
                raise StorageError("database is closed")
            if self._writer is None:
                self._writer = self._connect()
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except dbapi2.Error as exc:
                raise translate_error(exc) from exc
            self._local.tx = conn
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, dbapi2.Error):
                    _reraise(exc)
                raise
            finally:
                self._local.tx = None

    def writer_connection(self) -> Connection:
        """The writer itself, for maintenance that must run outside a transaction (VACUUM, limits in tests)."""
        with self._write_lock:
            if self._writer is None:
                self._writer = self._connect()
            return self._writer

    # -- housekeeping ----------------------------------------------------------------------------------------

    def integrity_check(self) -> list[str]:
        with self.read() as conn:
            return [row[0] for row in conn.execute("PRAGMA integrity_check")]

    def close(self) -> None:
        with self._write_lock:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break


_UNIQUE = re.compile(r"UNIQUE constraint failed: (\S+)")


def unique_violation(exc: Exception) -> str | None:
    """The column a UNIQUE constraint failed on, or None when exc is something else."""
    if isinstance(exc, dbapi2.IntegrityError):
        match = _UNIQUE.search(str(exc))
        if match:
            return match.group(1)
    return None


def rows_to_dicts(rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in rows]
