"""The dense index on real faiss, small sizes: exact search is brute force, both kinds add, replace, remove and
re-add by id, the index switches kind at its threshold, survives a round trip through bytes and refuses a damaged
or foreign blob, the approximate kind keeps its recall, and searches run beside a writer."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from appliance.errors import InvalidValue, SchemaError, StorageError
from appliance.retrieval.vectors import APPROXIMATE, EXACT, HEADER, VectorIndex

DIM = 32
Matrix = npt.NDArray[np.float32]


def unit(rows: npt.NDArray[np.floating]) -> Matrix:
    out: Matrix = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return out


def clustered(n: int, seed: int = 0, clusters: int = 40) -> Matrix:
    """Gaussian clusters with different spreads, normalised: neighbours are meaningful, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM))
    spread = rng.uniform(0.3, 0.8, clusters)
    member = rng.integers(0, clusters, n)
    return unit(centres[member] + spread[member, None] * rng.standard_normal((n, DIM)))


def brute_force(base: Matrix, ids: npt.NDArray[np.int64], query: Matrix, k: int) -> list[int]:
    scores = base @ unit(query[None, :])[0]
    return [int(ids[i]) for i in np.argsort(-scores, kind="stable")[:k]]


def approximate_index(n: int = 600, seed: int = 0) -> tuple[VectorIndex, Matrix]:
    """An index past its threshold (approximate_above=100), with ids 1000..1000+n-1."""
    vectors = clustered(n, seed)
    index = VectorIndex(DIM, approximate_above=100)
    index.add(np.arange(1000, 1000 + n), vectors)
    assert index.kind == APPROXIMATE
    return index, vectors


def test_exact_search_is_brute_force() -> None:
    rng = np.random.default_rng(1)
    vectors = unit(rng.standard_normal((500, DIM)))
    ids = rng.choice(10**12, size=500, replace=False).astype(np.int64)
    index = VectorIndex(DIM)
    index.add(ids, vectors)
    assert index.kind == EXACT and len(index) == 500
    queries = rng.standard_normal((20, DIM)).astype(np.float32) * 3.0  # not normalised: the index normalises
    for query, hits in zip(queries, index.search_many(queries, 10)):
        assert [h[0] for h in hits] == brute_force(vectors, ids, query, 10)
        expected = np.sort(vectors @ unit(query[None, :])[0])[::-1][:10]
        assert np.allclose([h[1] for h in hits], expected, atol=1e-5)
    assert index.search(queries[0], 10) == index.search_many(queries[:1], 10)[0]


def test_search_edges() -> None:
    index = VectorIndex(DIM)
    assert index.search(np.ones(DIM), 5) == []
    index.add([7, 8, 9], clustered(3))
    assert len(index.search(np.ones(DIM), 50)) == 3  # fewer than k: all of them
    assert index.search_many(np.empty((0, DIM), np.float32), 5) == []


@pytest.mark.parametrize("approximate", [False, True])
def test_add_replace_remove_and_re_add(approximate: bool) -> None:
    if approximate:
        index, vectors = approximate_index()
    else:
        vectors = clustered(600)
        index = VectorIndex(DIM)
        index.add(np.arange(1000, 1600), vectors)
    size = len(index)

    assert index.search(vectors[5], 1)[0][0] == 1005
    assert index.remove([1005, 1006, 424242]) == 2  # an id it never held is ignored
    assert len(index) == size - 2
    found = {h[0] for h in index.search(vectors[5], size)}
    assert 1005 not in found and 1006 not in found

    fresh = unit(np.random.default_rng(9).standard_normal((2, DIM)))
    index.add([1005, 1010], fresh)  # 1005 comes back; 1010 is there and gets the new vector
    assert len(index) == size - 1
    for vector, key in zip(fresh, (1005, 1010)):
        best = index.search(vector, 1)[0]
        assert best[0] == key and best[1] == pytest.approx(1.0, abs=1e-5)
    assert all(h[0] != 1010 for h in index.search(vectors[10], 1))  # the old vector is gone
    assert index.kind == (APPROXIMATE if approximate else EXACT)


def test_switches_to_approximate_past_the_threshold_and_back() -> None:
    vectors = clustered(1000)
    index = VectorIndex(DIM, approximate_above=200)
    index.add(np.arange(150), vectors[:150])
    index.add(np.arange(150, 200), vectors[150:200])
    assert index.kind == EXACT and len(index) == 200 and index.params == {}
    index.add(np.arange(100, 150), vectors[100:150])  # replacing ids does not grow it
    assert index.kind == EXACT
    index.add([200], vectors[200:201])
    assert index.kind == APPROXIMATE and len(index) == 201
    assert index.params["trained_on"] == 201 and index.params["probes"] <= index.params["lists"]
    assert all(index.search(vectors[i], 1)[0][0] == i for i in range(201))  # nothing lost in the rebuild

    index.add(np.arange(201, 1000), vectors[201:1000])  # past 4x what it was trained on: lists resized
    assert index.params["trained_on"] == 1000 and len(index) == 1000
    index.remove(np.arange(901))
    assert index.kind == EXACT and len(index) == 99  # under half the threshold: exact again
    assert [h[0] for h in index.search(vectors[950], 3)] == brute_force(vectors[901:], np.arange(901, 1000),
                                                                        vectors[950], 3)  # fmt: skip


def test_approximate_recall_against_exact() -> None:
    base, queries = clustered(5000, seed=3, clusters=60), clustered(200, seed=4, clusters=60)
    ids = np.arange(5000, dtype=np.int64)
    approximate, exact = VectorIndex(DIM, approximate_above=1000), VectorIndex(DIM, approximate_above=10**6)
    for index in (approximate, exact):
        index.add(ids, base)
    assert approximate.kind == APPROXIMATE and exact.kind == EXACT
    found = approximate.search_many(queries, 10)
    truth = exact.search_many(queries, 10)
    recall = np.mean([len({h[0] for h in f} & {h[0] for h in t}) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.9


@pytest.mark.parametrize("approximate", [False, True])
def test_round_trip_through_bytes(approximate: bool) -> None:
    if approximate:
        index, vectors = approximate_index()
    else:
        vectors = clustered(300)
        index = VectorIndex(DIM, approximate_above=5000)
        index.add(np.arange(1000, 1300), vectors)
    index.remove([1001])
    copy = VectorIndex.from_bytes(index.to_bytes())
    assert (copy.kind, len(copy), copy.dim, copy.params) == (index.kind, len(index), index.dim, index.params)
    assert copy.approximate_above == index.approximate_above
    assert copy.search_many(vectors[:20], 5) == index.search_many(vectors[:20], 5)
    copy.add([1001], vectors[1:2])  # a loaded index takes writes like any other
    assert copy.search(vectors[1], 1)[0][0] == 1001


def test_a_damaged_or_foreign_blob_is_refused() -> None:
    index = VectorIndex(DIM)
    index.add(np.arange(50), clustered(50))
    blob = index.to_bytes()
    flipped = bytearray(blob)
    flipped[-100] ^= 0x01
    for bad in (b"", b"not an index", blob[:HEADER.size + 10], blob[:-1], bytes(flipped), b"\x00" * 64):
        with pytest.raises(StorageError):
            VectorIndex.from_bytes(bad)
    newer = bytearray(blob)
    newer[8] = 99  # the version byte, after the 8-byte magic
    with pytest.raises(SchemaError, match="version 99"):
        VectorIndex.from_bytes(bytes(newer))


def test_bad_input_is_refused() -> None:
    index = VectorIndex(DIM)
    good = clustered(2)
    cases: list[Callable[[], object]] = [
        lambda: index.add([1, 2], np.ones((2, DIM + 1), np.float32)),  # wrong dimension
        lambda: index.add([1, 2], np.vstack([good[0], np.full(DIM, np.nan)])),
        lambda: index.add([1, 2], np.vstack([good[0], np.full(DIM, np.inf)])),
        lambda: index.add([1, 2], np.vstack([good[0], np.zeros(DIM)])),  # no direction
        lambda: index.add([1, 1], good),  # duplicate ids in one call
        lambda: index.add([1], good),  # count mismatch
        lambda: index.add([-1, 2], good),  # faiss's "no result"
        lambda: index.add([1.5, 2.5], good),
        lambda: index.add([[1, 2]], good),
        lambda: index.add([1, 2], [["a"] * DIM, ["b"] * DIM]),
        lambda: index.search(np.ones(DIM + 1), 3),
        lambda: index.search(good, 3),  # two queries: search_many
        lambda: index.search(np.ones(DIM), 0),
        lambda: VectorIndex(0),
        lambda: VectorIndex(DIM, approximate_above=-1),
    ]
    for case in cases:
        with pytest.raises(InvalidValue):
            case()
    assert len(index) == 0  # nothing half-applied


def test_searches_run_beside_a_writer() -> None:
    index, vectors = approximate_index(n=800)
    queries = clustered(50, seed=5)
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                for hits in index.search_many(queries, 10):
                    assert len(hits) == 10 and len({h[0] for h in hits}) == 10
        except BaseException as exc:  # surfaced below: an assert in a thread fails nothing by itself
            errors.append(exc)

    readers = [threading.Thread(target=search) for _ in range(3)]
    for reader in readers:
        reader.start()
    for round_ in range(30):
        keys = np.arange(1000 + round_ * 10, 1000 + round_ * 10 + 10)
        index.remove(keys)
        index.add(keys, vectors[round_ * 10 : round_ * 10 + 10])
    index.add(np.arange(5000, 5000 + 2500), clustered(2500, seed=6))  # past 4x growth: a rebuild under readers
    stop.set()
    for reader in readers:
        reader.join()
    assert errors == []
    assert len(index) == 800 + 2500 and index.params["trained_on"] == 3300
