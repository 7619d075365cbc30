"""The dense leg's in-memory index for one organisation: FAISS over L2-normalised float32 vectors, scored by inner
product (so a score is a cosine), keyed by the caller's int64 chunk ids.

Two kinds, chosen by size:

- "exact" (`IndexIDMap2(IndexFlatIP)`) while it holds at most `approximate_above` vectors: every search scans them
  all, which stays cheap at that size and needs no training.
- "ivf-flat" (`IndexIVFFlat`, spherical k-means lists, vectors kept unquantised) above it. Chosen with
  bench/retrieval.py at 500K 384-d vectors on 2 cores: it meets p95 <= 20 ms at recall@10 ~0.98, builds 3x faster
  than HNSW (which answers faster still, but holds 17% more memory and cannot remove an id, so it needs tombstones
  and full rebuilds), removes ids natively (no tombstones, no compaction) and keeps exact cosines (SQ8 and PQ
  trade them, and recall, for memory). Its lists are sized for the count it was trained on, so it is rebuilt
  (retrained) once it holds RETRAIN_GROWTH times that, and rebuilt exact under half of `approximate_above`.

Adding an id that is already there replaces its vector. Searches run concurrently; a writer excludes them only
while it changes the index, not while it trains a replacement (writers are serialised, so nothing changes the index
under a rebuild). `to_bytes()` is a versioned, checksummed blob; `from_bytes()` refuses anything else with a
StorageError (SchemaError for a version this code does not know).
"""

from __future__ import annotations

import importlib
import json
import math
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.errors import ConfigError, InvalidValue, SchemaError, StorageError

EXACT = "exact"
APPROXIMATE = "ivf-flat"
# Exact search reads every vector per query: at 384-d, p95 2.3 ms at 30K and 4.2 ms at 50K on a 2-core box, but
# 13 ms at 50K with another process holding a core. Up to 30K it stays a small part of the 20 ms budget either
# way; above, ivf-flat answers in 0.6 ms p95 at 60K (2.3 ms at 500K) at recall@10 0.98 and trains in seconds.
APPROXIMATE_ABOVE = 30_000
LISTS_PER_SQRT = 4  # nlist ~ 4 sqrt(n), rounded to a power of two: ~120-250 vectors per list when trained
MIN_PER_LIST = 39  # k-means needs this many training points per centroid to be meaningful (faiss's own floor)
TRAIN_PER_LIST = 64  # training sample per list: enough for stable centroids, 4x faster than faiss's default 256
# Recall follows the number of lists probed far more than their share: 64 gave recall@10 0.98-0.99 from 30K to
# 500K vectors (32 gave ~0.955 everywhere), at ~2 ms a query at 500K.
PROBES = 64
PARALLEL_FROM = 1_000  # rows; a smaller in-place add runs on one thread (see _threads_for)
RETRAIN_GROWTH = 2  # retrain at 2x the vectors the lists were sized for: lists stay near size, rebuilds cost 2x

MAGIC = b"APVECIDX"
VERSION = 1
HEADER = struct.Struct("<8sBII")  # magic, version, metadata length, crc32 of everything after the header

Part = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]  # ids and their vectors, row for row


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError("the dense index needs faiss: pip install faiss-cpu") from None
    return faiss


class _ReadWriteLock:
    """Many readers or one writer. A waiting writer holds back new readers, so a stream of searches cannot starve
    it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@contextmanager
def _one_thread(faiss: Any) -> Iterator[None]:
    """Run this thread's faiss calls on one OpenMP thread (the setting is per thread). A single query gains nothing
    from a thread team, and pays for one: when another process holds the other core, each parallel region waits a
    scheduler slice (measured: 8 ms per search instead of 0.07 ms). Concurrent searches use the cores instead."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _threads_for(faiss: Any, rows: int) -> AbstractContextManager[None]:
    """In-place writes hold the lock searches wait on: small ones run on one thread, like a search."""
    return _one_thread(faiss) if rows < PARALLEL_FROM else nullcontext()


def ivf_lists(n: int) -> int:
    """How many inverted lists an approximate index over n vectors gets."""
    target = 1 << round(math.log2(max(1.0, LISTS_PER_SQRT * math.sqrt(n))))
    return max(1, min(target, n // MIN_PER_LIST))


def ivf_probes(lists: int) -> int:
    return min(lists, PROBES)


def _ids(ids: Sequence[int] | npt.ArrayLike) -> npt.NDArray[np.int64]:
    keys = np.asarray(ids)
    if keys.ndim != 1:
        raise InvalidValue(f"vector index: ids must be a flat sequence, got shape {keys.shape}")
    if keys.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.issubdtype(keys.dtype, np.integer):
        raise InvalidValue(f"vector index: ids must be integers, got {keys.dtype}")
    if keys.min() < 0 or (keys.dtype == np.uint64 and keys.max() > np.iinfo(np.int64).max):
        raise InvalidValue("vector index: ids must be between 0 and 2**63-1")  # faiss answers -1 for "no result"
    return keys.astype(np.int64, copy=False)


def _unit_rows(values: npt.ArrayLike, dim: int, what: str) -> npt.NDArray[np.float32]:
    """values as a C-contiguous (n, dim) float32 matrix with unit rows; (dim,) counts as one row."""
    try:
        matrix = np.array(values, dtype=np.float32, ndmin=2)
    except (TypeError, ValueError) as exc:
        raise InvalidValue(f"vector index: {what} must be numbers: {exc}") from None
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise InvalidValue(f"vector index: {what} must be {dim}-dimensional, got shape {np.shape(values)}")
    if not np.isfinite(matrix).all():
        raise InvalidValue(f"vector index: {what} contain NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if matrix.size and not (norms > 0).all():
        raise InvalidValue(f"vector index: {what} contain a zero vector, which has no direction")
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


def _sample(parts: Sequence[Part], size: int) -> npt.NDArray[np.float32]:
    """At most `size` rows drawn at random across the parts, without first joining them into one copy."""
    total = sum(len(ids) for ids, _ in parts)
    picks = np.sort(np.random.default_rng(0).choice(total, min(size, total), replace=False))
    chosen, offset = [], 0
    for _, rows in parts:
        mine = picks[(picks >= offset) & (picks < offset + len(rows))] - offset
        chosen.append(rows[mine])
        offset += len(rows)
    return np.concatenate(chosen)


def _build(faiss: Any, dim: int, kind: str, parts: Sequence[Part]) -> Any:
    if kind == EXACT:
        index = faiss.index_factory(dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
    else:
        lists = ivf_lists(sum(len(ids) for ids, _ in parts))
        index = faiss.index_factory(dim, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
        index.cp.spherical = True  # centroids on the unit sphere, like the vectors they stand for
        index.cp.max_points_per_centroid = TRAIN_PER_LIST
        index.cp.min_points_per_centroid = 1  # ivf_lists() already keeps MIN_PER_LIST; this only silences faiss
        index.train(_sample(parts, lists * TRAIN_PER_LIST))
        index.nprobe = ivf_probes(lists)
    for ids, rows in parts:
        if len(ids):
            index.add_with_ids(rows, ids)
    return index


def _contents(faiss: Any, index: Any) -> Part:
    """Every (id, vector) the index holds, copied once out of its storage."""
    if isinstance(index, faiss.IndexIDMap2):
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        return ids, faiss.downcast_index(index.index).reconstruct_n(0, index.ntotal)
    get_invlist = importlib.import_module("faiss.contrib.inspect_tools").get_invlist
    ids, rows = np.empty(index.ntotal, dtype=np.int64), np.empty((index.ntotal, index.d), dtype=np.float32)
    at = 0
    for i in range(index.nlist):
        list_ids, codes = get_invlist(index.invlists, i)
        ids[at : at + len(list_ids)] = list_ids
        rows[at : at + len(list_ids)] = codes.view(np.float32)
        at += len(list_ids)
    return ids, rows


class VectorIndex:
    """One organisation's dense index. Thread-safe: any number of concurrent searches, writers serialised."""

    def __init__(self, dim: int, approximate_above: int = APPROXIMATE_ABOVE) -> None:
        if dim < 1 or approximate_above < 0:
            raise InvalidValue(f"vector index: dim ({dim}) must be >= 1 and approximate_above ({approximate_above}) "
                               ">= 0")  # fmt: skip
        self._faiss = _faiss()
        self.dim = dim
        self.approximate_above = approximate_above
        self._kind = EXACT
        self._trained_on = 0  # vectors the approximate index's lists were sized for
        self._index: Any = _build(self._faiss, dim, EXACT, [])
        self._lock = _ReadWriteLock()
        self._writer = threading.Lock()

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def params(self) -> dict[str, int]:
        """The approximate index's shape (lists, probes, trained_on); empty for the exact kind."""
        with self._lock.read():
            if self._kind == EXACT:
                return {}
            return {"lists": int(self._index.nlist), "probes": int(self._index.nprobe), "trained_on": self._trained_on}

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def _wanted(self, n: int) -> str | None:
        """The kind to rebuild as when holding n vectors, or None when the current index still fits."""
        if self._kind == EXACT:
            return APPROXIMATE if n > self.approximate_above else None
        if n < self.approximate_above // 2:
            return EXACT
        return APPROXIMATE if n > RETRAIN_GROWTH * max(self._trained_on, 1) else None

    def _replace(self, kind: str, parts: Sequence[Part]) -> None:
        """Build the new index without blocking searches (the caller holds self._writer), then swap it in."""
        fresh = _build(self._faiss, self.dim, kind, parts)
        with self._lock.write():
            self._index, self._kind = fresh, kind
            self._trained_on = int(fresh.ntotal) if kind != EXACT else 0

    def add(self, ids: Sequence[int] | npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add vectors (n, dim) under ids (n,); an id already present gets the new vector. Rows are normalised."""
        keys = _ids(ids)
        rows = _unit_rows(vectors, self.dim, "vectors")
        if len(keys) != len(rows):
            raise InvalidValue(f"vector index: {len(keys)} ids for {len(rows)} vectors")
        if len(np.unique(keys)) != len(keys):
            raise InvalidValue("vector index: duplicate ids in one add")
        if not len(keys):
            return
        with self._writer:
            if self._wanted(len(self) + len(keys)) is not None:  # at most this many; count exactly before rebuilding
                old_ids, old_rows = _contents(self._faiss, self._index)
                replaced = np.isin(old_ids, keys)
                if replaced.any():
                    old_ids, old_rows = old_ids[~replaced], old_rows[~replaced]
                kind = self._wanted(len(old_ids) + len(keys))
                if kind is not None:
                    self._replace(kind, [(old_ids, old_rows), (keys, rows)])
                    return
            selector = self._faiss.IDSelectorBatch(keys)
            with self._lock.write(), _threads_for(self._faiss, len(keys)):
                self._index.remove_ids(selector)
                self._index.add_with_ids(rows, keys)

    def remove(self, ids: Sequence[int] | npt.ArrayLike) -> int:
        """Remove these ids; ids not present are ignored. Returns how many were removed."""
        keys = _ids(ids)
        if not len(keys):
            return 0
        selector = self._faiss.IDSelectorBatch(keys)
        with self._writer:
            with self._lock.write(), _one_thread(self._faiss):
                removed = int(self._index.remove_ids(selector))
            kind = self._wanted(len(self))
            if kind is not None:
                self._replace(kind, [_contents(self._faiss, self._index)])
            return removed

    def search(self, query: npt.ArrayLike, k: int) -> list[tuple[int, float]]:
        """The k best (id, cosine) for one query vector (dim,), best first; fewer when the index holds fewer."""
        rows = _unit_rows(query, self.dim, "query")
        if len(rows) != 1:
            raise InvalidValue(f"vector index: search takes one query, got {len(rows)} (use search_many)")
        return self.search_many(rows, k)[0]

    def search_many(self, queries: npt.ArrayLike, k: int) -> list[list[tuple[int, float]]]:
        """search() for each row of queries (n, dim), in order."""
        rows = _unit_rows(queries, self.dim, "queries")
        if k < 1:
            raise InvalidValue(f"vector index: k must be >= 1, got {k}")
        with self._lock.read(), _one_thread(self._faiss):
            size = int(self._index.ntotal)
            if not size or not len(rows):
                return [[] for _ in range(len(rows))]
            scores, found = self._index.search(rows, min(k, size))
        return [[(int(i), float(s)) for i, s in zip(ids, row) if i >= 0] for ids, row in zip(found, scores)]

    def to_bytes(self) -> bytes:
        with self._lock.read():
            meta = json.dumps({"kind": self._kind, "dim": self.dim, "approximate_above": self.approximate_above,
                               "trained_on": self._trained_on}).encode()  # fmt: skip
            body = self._faiss.serialize_index(self._index)
        crc = zlib.crc32(body, zlib.crc32(meta))
        return b"".join((HEADER.pack(MAGIC, VERSION, len(meta), crc), meta, memoryview(body)))

    @classmethod
    def from_bytes(cls, blob: bytes) -> VectorIndex:
        """The index to_bytes() wrote. StorageError for anything else (damaged, truncated, not a vector index)."""
        if len(blob) < HEADER.size or blob[: len(MAGIC)] != MAGIC:
            raise StorageError("vector index: not a vector index blob")
        _, version, meta_size, crc = HEADER.unpack_from(blob)
        if version != VERSION:
            raise SchemaError(f"vector index: blob format version {version}, this appliance reads {VERSION}; "
                              "rebuild the index from the database")  # fmt: skip
        view = memoryview(blob)[HEADER.size :]
        if len(view) < meta_size or zlib.crc32(view) != crc:
            raise StorageError("vector index: blob is damaged (checksum mismatch)")
        try:
            meta = json.loads(bytes(view[:meta_size]))
            kind, dim, above, trained_on = meta["kind"], int(meta["dim"]), int(meta["approximate_above"]), int(
                meta["trained_on"])  # fmt: skip
            if dim < 1 or above < 0 or trained_on < 0:
                raise ValueError(f"dim {dim}, approximate_above {above}, trained_on {trained_on}")
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"vector index: unreadable metadata: {exc}") from None
        index = cls(dim, approximate_above=above)
        try:
            inner = index._faiss.deserialize_index(np.frombuffer(view[meta_size:], dtype=np.uint8))
        except RuntimeError as exc:
            raise StorageError(f"vector index: faiss cannot read the index: {str(exc).splitlines()[0]}") from None
        expected = index._faiss.IndexIDMap2 if kind == EXACT else index._faiss.IndexIVFFlat
        if kind not in (EXACT, APPROXIMATE) or not isinstance(inner, expected) or inner.d != dim:
            raise StorageError(f"vector index: blob holds a {type(inner).__name__} of dim {inner.d}, "
                               f"not a {dim}-d {kind} index")  # fmt: skip
        index._index, index._kind, index._trained_on = inner, kind, trained_on
        return index
