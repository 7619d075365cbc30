"""The dense leg's indexes, one per organisation, kept in memory and persisted sealed (AES-256-GCM) in the data dir.

The database is the source of truth: every chunk's embedding is stored with it. A sealed index file is only a fast
way to start; it is bound (as associated data) to its organisation and to the index generation it was written at.
A file from another generation, a damaged file or a missing one is rebuilt from the database, so a crash at any
point leaves a usable index: either the previous generation's (the database transaction did not commit) or a
rebuild of the new one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from appliance.crypto import aead
from appliance.errors import ApplianceError
from appliance.store import Connection, Database

if TYPE_CHECKING:  # faiss is imported only where a search or an index build needs it
    from appliance.retrieval.vectors import VectorIndex

log = logging.getLogger("appliance.retrieval")
KEY_PURPOSE = "vector-index"


@dataclass(frozen=True)
class IndexState:
    generation: int
    embedder: str
    dim: int


def read_state(conn: Connection, org_id: int) -> IndexState:
    row = conn.execute("SELECT generation, embedder, dim FROM index_state WHERE org_id = ?", (org_id,)).fetchone()
    return IndexState(0, "", 0) if row is None else IndexState(int(row[0]), str(row[1]), int(row[2]))


def to_blob(vector: npt.NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes, dim: int) -> npt.NDArray[np.float32]:
    return np.frombuffer(blob, dtype="<f4", count=dim).astype(np.float32)


class DenseIndexes:
    def __init__(self, db: Database, directory: Path, key: bytes, approximate_above: int) -> None:
        self.db = db
        self.directory = directory
        self._key = key
        self.approximate_above = approximate_above
        self._lock = threading.Lock()
        self._cache: dict[int, tuple[int, VectorIndex]] = {}

    def path(self, org_id: int) -> Path:
        return self.directory / f"org-{int(org_id)}.vectors"

    @staticmethod
    def _bound(org_id: int, generation: int) -> bytes:
        return f"org={int(org_id)};generation={int(generation)}".encode()

    def get(self, org_id: int) -> tuple[IndexState, VectorIndex | None]:
        """The organisation's index at the database's current generation (None when it holds no vectors)."""
        with self.db.read() as conn:
            state = read_state(conn, org_id)
        if state.dim == 0:
            return state, None
        with self._lock:
            cached = self._cache.get(org_id)
            if cached is not None and cached[0] == state.generation:
                return state, cached[1]
            index = self._load(org_id, state)
            self._cache[org_id] = (state.generation, index)
            return state, index

    def _load(self, org_id: int, state: IndexState) -> VectorIndex:
        from appliance.retrieval.vectors import VectorIndex

        path = self.path(org_id)
        if path.exists():
            try:
                blob = aead.read_sealed(path, self._key, self._bound(org_id, state.generation))
                index = VectorIndex.from_bytes(blob)
                if index.dim == state.dim:
                    return index
            except (ApplianceError, OSError) as exc:
                log.info("rebuilding dense index", extra={"fields": {"org_id": org_id, "reason": str(exc)}})
        index = self._rebuild(org_id, state)
        self._write(org_id, state.generation, index)
        return index

    def _rebuild(self, org_id: int, state: IndexState) -> VectorIndex:
        from appliance.retrieval.vectors import VectorIndex

        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT id, embedding FROM chunks WHERE org_id = ? AND embedding IS NOT NULL AND embedder = ?",
                (org_id, state.embedder),
            ).fetchall()
        index = VectorIndex(state.dim, approximate_above=self.approximate_above)
        if rows:
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.stack([from_blob(r[1], state.dim) for r in rows])
            index.add(ids, vectors)
        return index

    def _write(self, org_id: int, generation: int, index: VectorIndex) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            aead.write_sealed(self.path(org_id), self._key, index.to_bytes(), self._bound(org_id, generation))
        except OSError as exc:  # the index stays usable in memory and is rebuilt from the database next time
            log.warning("cannot persist dense index", extra={"fields": {"org_id": org_id, "error": exc.strerror}})

    def apply(
        self, org_id: int, before: int, after: IndexState, removed: Sequence[int], added: Sequence[int],
        vectors: npt.NDArray[np.float32] | None,
    ) -> None:  # fmt: skip
        """Bring the cached index from generation `before` to `after` (a committed change). An index that was not at
        `before` is dropped and reloaded on next use. `persist` writes it out once a batch of changes is done."""
        with self._lock:
            cached = self._cache.get(org_id)
            if cached is None or cached[0] != before or cached[1].dim != after.dim:
                self._cache.pop(org_id, None)
                return
            index = cached[1]
            if removed:
                index.remove(np.asarray(removed, dtype=np.int64))
            if added and vectors is not None:
                index.add(np.asarray(added, dtype=np.int64), vectors)
            self._cache[org_id] = (after.generation, index)

    def persist(self, org_id: int) -> None:
        """Write the organisation's index out at its current generation (loading or rebuilding it if needed)."""
        with self._lock:
            cached = self._cache.get(org_id)
            if cached is not None:
                self._write(org_id, cached[0], cached[1])
                return
        self.get(org_id)  # not in memory: rebuilt from the database, which writes it out

    def forget(self, org_id: int) -> None:
        with self._lock:
            self._cache.pop(org_id, None)
