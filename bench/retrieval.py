"""Retrieval benchmarks, one section per subcommand.

kb: import + index throughput on a KB folder: the markdown importer into a fresh encrypted data dir, then the
  indexer (60-word passages, ONNX embeddings of passages and titles, FTS5, the sealed dense index), each timed.
  `python bench/retrieval.py kb --kb ../shared/datasets/supportbench_medical/kb`

vectors: the dense leg's index (appliance.retrieval.vectors.VectorIndex) and the FAISS index kinds it could use.

  Data: --n base vectors and --queries held-out query vectors, --dim dimensions, drawn alike so that they resemble
  sentence embeddings rather than uniform noise: a fixed random rotation with a power-law spectrum (axis i has
  scale i^-0.6, so a few directions carry most of the variance, as in real embedding spaces); 300 topic centres and
  --clusters cluster centres, each cluster sitting near one topic (clusters overlap within a topic), all shifted
  along one common direction (embeddings share a mean direction, which lifts random-pair cosines above zero); cluster
  sizes Zipf-like (weight ~ rank^-0.7); a point is its cluster centre plus Gaussian noise through the same anisotropic
  rotation, scaled per cluster (log-normal around 1.0), then L2-normalised. At the defaults a random pair has cosine
  ~0.1 (5th-95th percentile -0.28 to 0.43) and a query's nearest neighbour ~0.75, close to all-MiniLM-L6-v2 over
  support articles. Queries are not members of the base set. The generator is seeded, so runs are comparable.

  Measured, for exact search and each candidate approximate index (each search-time setting a row): build time
  (train + add), memory (serialised index bytes, which is what it holds in RAM, and the process's RSS growth),
  single-query latency p50/p95 (k=10, one query per call, as the search path calls it) and recall@10 against exact
  search. Exact latency is also shown at smaller sizes, which is what `approximate_above` is chosen from. Then
  VectorIndex itself, fed through add() in --batch batches as an import would: its build time, latency through its
  lock and without it, latency with two searching threads and a writer at once, recall, and to_bytes/from_bytes.
  The goal checked is p95 <= 20 ms at recall@10 >= 0.95. This prints figures only; it never fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import threading
import time
from pathlib import Path
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.retrieval.vectors import (
    APPROXIMATE,
    APPROXIMATE_ABOVE,
    LISTS_PER_SQRT,
    RETRAIN_GROWTH,
    VectorIndex,
    ivf_lists,
    ivf_probes,
)

K = 10
P95_GOAL_MS = 20.0
RECALL_GOAL = 0.95
TOPICS = 300
EXACT_SIZES = (10_000, 20_000, 30_000, 50_000, 100_000, 200_000)
WARMUP = 20
WRITE_EVERY_S = 0.02
Matrix = npt.NDArray[np.float32]


def clustered_vectors(n: int, queries: int, dim: int, clusters: int, seed: int = 0) -> tuple[Matrix, Matrix]:
    """(base, queries): see the module docstring."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    spectrum = np.arange(1, dim + 1) ** -0.6
    basis = (spectrum[:, None] / np.linalg.norm(spectrum) * rotation.T).astype(np.float32)
    common = rng.standard_normal(dim).astype(np.float32)
    common /= np.linalg.norm(common)

    def unit(rows: Matrix) -> Matrix:
        out: Matrix = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        return out

    topics = unit(rng.standard_normal((TOPICS, dim)).astype(np.float32) @ basis)
    offsets = unit(rng.standard_normal((clusters, dim)).astype(np.float32) @ basis)
    centres = unit(topics[rng.integers(0, TOPICS, clusters)] + 0.7 * offsets + 0.5 * common)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.7
    weights /= weights.sum()
    spread = rng.lognormal(0.0, 0.3, clusters).astype(np.float32)

    def draw(count: int) -> Matrix:
        out = np.empty((count, dim), dtype=np.float32)
        for start in range(0, count, 50_000):
            size = min(50_000, count - start)
            member = rng.choice(clusters, size, p=weights)
            noise = rng.standard_normal((size, dim)).astype(np.float32) @ basis
            out[start : start + size] = unit(centres[member] + spread[member, None] * noise)
        return out

    return draw(n), draw(queries)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def cpu_used_by_others() -> float | None:
    """CPU seconds the whole machine has been busy minus this process's own (Linux /proc/stat); None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # minus idle and iowait
    mine = resource.getrusage(resource.RUSAGE_SELF)
    return busy / os.sysconf("SC_CLK_TCK") - (mine.ru_utime + mine.ru_stime)


def single_queries(search: Callable[[Matrix], npt.NDArray[np.int64]], queries: Matrix) -> tuple[list[float], Any]:
    """Latencies in ms and the ids found, one query per call, after a warm-up; on one OpenMP thread, as VectorIndex
    searches (a single query gains nothing from a thread team)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return _single_queries(search, queries)
    finally:
        faiss.omp_set_num_threads(threads)


def _single_queries(search: Callable[[Matrix], npt.NDArray[np.int64]], queries: Matrix) -> tuple[list[float], Any]:
    for row in queries[:WARMUP]:
        search(row[None, :])
    latencies, found = [], np.full((len(queries), K), -1, dtype=np.int64)
    for i, row in enumerate(queries):
        start = time.perf_counter()
        ids = search(row[None, :])
        latencies.append((time.perf_counter() - start) * 1000.0)
        found[i, : ids.shape[-1]] = ids.reshape(-1)[:K]
    return latencies, found


def recall_at_k(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found.tolist(), truth.tolist())]))


def row(label: str, latencies: Sequence[float], recall: float, **extra: Any) -> dict[str, Any]:
    out = {"config": label, "p50_ms": round(percentile(latencies, 0.5), 3),
           "p95_ms": round(percentile(latencies, 0.95), 3), "recall_at_10": round(recall, 4), **extra}  # fmt: skip
    out["meets_goal"] = out["p95_ms"] <= P95_GOAL_MS and out["recall_at_10"] >= RECALL_GOAL
    return out


def candidates(n: int, dim: int) -> list[tuple[str, str, str, list[int]]]:
    """(name, faiss factory string, search-time parameter, values swept). nlist around the size VectorIndex picks."""
    base = ivf_lists(n)
    cap = max(1, n // 39)
    lists = sorted({min(cap, max(1, base // 2)), base, min(cap, base * 2)})
    probes = [8, 16, 32, 64, 128, 256]
    out = [(f"ivf-flat nlist={nl}", f"IVF{nl},Flat", "nprobe", sorted({min(p, nl) for p in probes})) for nl in lists]
    out.append((f"ivf-sq8 nlist={base}", f"IVF{base},SQ8", "nprobe", sorted({min(p, base) for p in probes[1:]})))
    if dim % 8 == 0:
        out.append((f"ivf-pq{dim // 8}x8 nlist={base}", f"IVF{base},PQ{dim // 8}", "nprobe",
                    sorted({min(p, base) for p in probes[1:]})))  # fmt: skip
    out.append(("hnsw32 efC=40", "HNSW32,Flat", "efSearch", [16, 32, 64, 128, 256]))
    return out


def build_candidate(faiss: Any, factory: str, dim: int, base: Matrix) -> Any:
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if factory.startswith("IVF"):
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.spherical = True
        ivf.cp.max_points_per_centroid = 64
        ivf.cp.min_points_per_centroid = 1
        if hasattr(index, "do_polysemous_training"):
            index.do_polysemous_training = False  # the factory turns it on; it costs minutes and only helps Hamming search
    index.train(base)
    index.add(base)
    return index


def exact_by_size(faiss: Any, base: Matrix, queries: Matrix, sizes: Sequence[int]) -> list[dict[str, Any]]:
    out = []
    for size in sizes:
        flat = faiss.IndexFlatIP(base.shape[1])
        flat.add(base[:size])
        latencies, _ = single_queries(lambda q: flat.search(q, K)[1], queries)
        out.append({"n": size, "p50_ms": round(percentile(latencies, 0.5), 3),
                    "p95_ms": round(percentile(latencies, 0.95), 3)})  # fmt: skip
        del flat
    return out


def concurrent_p95(index: VectorIndex, queries: Matrix, writes: Matrix, readers: int = 2) -> dict[str, float]:
    """p95 of single searches from `readers` threads while a writer removes and re-adds 100 ids every WRITE_EVERY_S,
    as an import running beside customer searches would."""
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(readers)]
    write_count = [0]

    def read(mine: list[float]) -> None:
        for row_ in queries:
            start = time.perf_counter()
            index.search(row_, K)
            mine.append((time.perf_counter() - start) * 1000.0)

    def write() -> None:
        ids = np.arange(len(writes), dtype=np.int64)  # the first ids of the base set, replaced by new vectors
        while not stop.is_set():
            index.remove(ids)
            index.add(ids, writes)
            write_count[0] += 1
            stop.wait(WRITE_EVERY_S)

    writer = threading.Thread(target=write)
    threads = [threading.Thread(target=read, args=(mine,)) for mine in latencies]
    writer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    writer.join()
    merged = [x for mine in latencies for x in mine]
    return {"readers": readers, "p50_ms": round(percentile(merged, 0.5), 3),
            "p95_ms": round(percentile(merged, 0.95), 3), "writer_cycles": write_count[0]}  # fmt: skip


def product(
    base: Matrix, queries: Matrix, truth: npt.NDArray[np.int64], batch: int, concurrent: bool = True
) -> dict[str, Any]:
    """VectorIndex as the appliance runs it, fed in batches with ids 0..n-1 (so its ids are base positions)."""
    index = VectorIndex(base.shape[1])
    rss = rss_bytes()
    start = time.perf_counter()
    for first in range(0, len(base), batch):
        index.add(np.arange(first, min(first + batch, len(base))), base[first : first + batch])
    build_s = time.perf_counter() - start

    def hits(q: Matrix) -> npt.NDArray[np.int64]:
        return np.array([hit[0] for hit in index.search(q[0], K)], dtype=np.int64)

    latencies, found = single_queries(hits, queries)
    raw, _ = single_queries(lambda q: index._index.search(q, K)[1], queries)  # same index without the lock
    start = time.perf_counter()
    blob = index.to_bytes()
    save_s = time.perf_counter() - start
    start = time.perf_counter()
    loaded = VectorIndex.from_bytes(blob)
    load_s = time.perf_counter() - start
    assert len(loaded) == len(index)
    del loaded
    out = row(f"VectorIndex ({index.kind}) {index.params}", latencies, recall_at_k(found, truth),
              build_s=round(build_s, 2), rss_mb=round((rss_bytes() - rss) / 2**20, 1),
              index_mb=round(len(blob) / 2**20, 1), save_s=round(save_s, 2), load_s=round(load_s, 2),
              p95_without_lock_ms=round(percentile(raw, 0.95), 3))  # fmt: skip
    del blob
    if concurrent:
        writes = queries[: min(100, len(queries))]
        out["concurrent"] = concurrent_p95(index, queries[: max(1, len(queries) // 2)], writes)
    return out


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("faiss-cpu", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def run_vectors(args: argparse.Namespace) -> None:
    import faiss

    faiss.omp_set_num_threads(args.threads)
    started = time.perf_counter()
    clusters = args.clusters or min(3000, max(10, args.n // 50))
    base, queries = clustered_vectors(args.n, args.queries, args.dim, clusters, args.seed)

    def progress(message: str) -> None:
        if not args.json:
            print(f"  [{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    progress(f"generated {args.n:,} + {args.queries:,} vectors")
    others_at_start, timed_from = cpu_used_by_others(), time.perf_counter()

    flat = faiss.IndexFlatIP(args.dim)
    flat.add(base)
    truth_scores, truth = flat.search(queries, K)
    sample = base[np.random.default_rng(1).integers(0, args.n, 2000)]
    pair_cos = (sample[:1000] * sample[1000:]).sum(axis=1)
    data = {"clusters": clusters, "random_pair_cos_mean": round(float(pair_cos.mean()), 3),
            "nearest_cos_mean": round(float(truth_scores[:, 0].mean()), 3),
            "tenth_cos_mean": round(float(truth_scores[:, K - 1].mean()), 3)}  # fmt: skip
    exact_queries = queries[: args.exact_queries]
    latencies, found = single_queries(lambda q: flat.search(q, K)[1], exact_queries)
    rows = [row("exact (flat IP)", latencies, recall_at_k(found, truth[: len(exact_queries)]), build_s=0.0,
                index_mb=round(base.nbytes / 2**20, 1), rss_mb=round(base.nbytes / 2**20, 1))]  # fmt: skip
    del flat
    progress("exact search timed")
    sizes = [s for s in EXACT_SIZES if s < args.n]
    by_size = exact_by_size(faiss, base, exact_queries, sizes)
    progress("exact search timed by size")

    for name, factory, param, values in candidates(args.n, args.dim):
        rss = rss_bytes()
        start = time.perf_counter()
        index = build_candidate(faiss, factory, args.dim, base)
        build_s = time.perf_counter() - start
        rss_mb = round((rss_bytes() - rss) / 2**20, 1)
        index_mb = round(faiss.serialize_index(index).nbytes / 2**20, 1)
        progress(f"{name}: built in {build_s:.1f} s")
        for value in values:
            target = faiss.extract_index_ivf(index) if param == "nprobe" else index.hnsw
            setattr(target, param, value)
            latencies, found = single_queries(lambda q: index.search(q, K)[1], queries)
            rows.append(row(f"{name} {param}={value}", latencies, recall_at_k(found, truth), build_s=round(build_s, 2),
                            index_mb=index_mb, rss_mb=rss_mb))  # fmt: skip
        del index
        progress(f"{name}: searched")

    lists = ivf_lists(args.n)
    chosen = {"kind": APPROXIMATE, "lists_at_n": lists, "probes_at_n": ivf_probes(lists),
              "approximate_above": APPROXIMATE_ABOVE}  # fmt: skip
    vector_index = product(base, queries, truth, args.batch)
    progress("VectorIndex measured")
    near_threshold = None
    if 2 * APPROXIMATE_ABOVE < args.n:  # soon after the switch: the fewest lists the approximate kind has
        flat = faiss.IndexFlatIP(args.dim)
        flat.add(base[: 2 * APPROXIMATE_ABOVE])
        near_truth = flat.search(queries, K)[1]
        del flat
        near_threshold = product(base[: 2 * APPROXIMATE_ABOVE], queries, near_truth, args.batch, concurrent=False)
        progress("VectorIndex measured at 2x approximate_above")
    others_at_end = cpu_used_by_others()
    other_share = None
    if others_at_start is not None and others_at_end is not None:
        wall = (time.perf_counter() - timed_from) * (os.cpu_count() or 1)
        other_share = round(max(0.0, others_at_end - others_at_start) / wall, 3)

    report: dict[str, Any] = {
        "versions": versions(),
        "cpu_count": os.cpu_count(),
        "other_cpu_share": other_share,
        "params": {"n": args.n, "dim": args.dim, "queries": args.queries, "exact_queries": len(exact_queries),
                   "threads": args.threads, "k": K, "batch": args.batch, "seed": args.seed},
        "data": data,
        "exact_by_size": by_size,
        "results": rows,
        "vector_index": vector_index,
        "vector_index_near_threshold": near_threshold,
        "chosen": chosen,
        "goal": {"p95_ms": P95_GOAL_MS, "recall_at_10": RECALL_GOAL},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
        return
    v = report["versions"]
    print(f"dense index: faiss-cpu {v['faiss-cpu']}, numpy {v['numpy']}, threads {args.threads} of "
          f"{report['cpu_count']} CPUs, {report['elapsed_s']} s in all")  # fmt: skip
    print(f"data: {args.n:,} x {args.dim}-d base, {args.queries:,} held-out queries, {clusters} clusters in "
          f"{TOPICS} topics; cosine: random pair {data['random_pair_cos_mean']}, nearest {data['nearest_cos_mean']}, "
          f"10th nearest {data['tenth_cos_mean']}")  # fmt: skip
    if other_share is not None and other_share > 0.05:
        print(f"note: other processes used {other_share:.0%} of the CPUs while this ran; latencies and build times "
              "are high by an unknown amount")  # fmt: skip
    print("exact single-query latency by size (ms): " + ", ".join(
        f"{s['n']:,}: p50 {s['p50_ms']:.2f} p95 {s['p95_ms']:.2f}" for s in by_size))  # fmt: skip
    print(f"{'config':36}{'build s':>9}{'index MB':>10}{'RSS+ MB':>9}{'p50 ms':>9}{'p95 ms':>9}{'recall@10':>11}")
    for r in rows:
        mark = "  goal" if r["meets_goal"] else ""
        print(f"{r['config']:36}{r['build_s']:>9.1f}{r['index_mb']:>10,.0f}{r['rss_mb']:>9,.0f}{r['p50_ms']:>9.2f}"
              f"{r['p95_ms']:>9.2f}{r['recall_at_10']:>11.3f}{mark}")  # fmt: skip
    vi, c = vector_index, vector_index["concurrent"]
    print(f"VectorIndex uses {APPROXIMATE} above {APPROXIMATE_ABOVE:,} vectors: nlist {lists}, nprobe {ivf_probes(lists)} "
          f"at this n (lists ~{LISTS_PER_SQRT} sqrt(n), retrained at {RETRAIN_GROWTH}x growth)")  # fmt: skip
    print(f"  {vi['config']}, fed in batches of {args.batch:,}: build {vi['build_s']:.1f} s, index {vi['index_mb']:,.0f} "
          f"MB, RSS +{vi['rss_mb']:,.0f} MB, to_bytes {vi['save_s']:.2f} s, from_bytes {vi['load_s']:.2f} s")  # fmt: skip
    print(f"  single query p50 {vi['p50_ms']:.2f} ms, p95 {vi['p95_ms']:.2f} ms (without the lock "
          f"{vi['p95_without_lock_ms']:.2f}), recall@10 {vi['recall_at_10']:.3f}")  # fmt: skip
    if near_threshold is not None:
        vn = near_threshold
        print(f"  at {2 * APPROXIMATE_ABOVE:,} vectors: {vn['config']}, build {vn['build_s']:.1f} s, p50 "
              f"{vn['p50_ms']:.2f} ms, p95 {vn['p95_ms']:.2f} ms, recall@10 {vn['recall_at_10']:.3f}")  # fmt: skip
    print(f"  {c['readers']} searching threads + a writer (remove + re-add 100 ids every {WRITE_EVERY_S * 1000:g} ms, {c['writer_cycles']} times): "
          f"p50 {c['p50_ms']:.2f} ms, p95 {c['p95_ms']:.2f} ms")  # fmt: skip
    verdict = "met" if vi["meets_goal"] else "NOT met"
    print(f"goal (p95 <= {P95_GOAL_MS:g} ms at recall@10 >= {RECALL_GOAL}): {verdict} by VectorIndex")


def run_kb(args: argparse.Namespace) -> None:
    """Import a KB folder into a fresh encrypted data dir with the markdown importer, then index it as the task
    would (chunk, embed with the ONNX embedder, FTS5, sealed dense index); time each phase."""
    import shutil
    import tempfile

    from appliance.auth import orgs
    from appliance.config import Settings
    from appliance.inference.embedders import OnnxEmbedder
    from appliance.instance import cli_context, init_instance
    from appliance.knowledge.importers import common, markdown

    def say(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    work = Path(tempfile.mkdtemp(prefix="bench-kb-"))
    try:
        model_dir = args.model_dir
        if model_dir is None:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
            import export_embedder

            model_dir = work / "model"
            export_embedder.export_embedder(export_embedder.default_source(), model_dir)
        embedder = OnnxEmbedder(model_dir, threads=args.threads)
        inst = init_instance(Settings(data_dir=work / "data"), cli_context())  # type: ignore[call-arg]
        org = orgs.create_org(inst.db, cli_context(), "bench", "Bench")
        incoming = list(markdown.read_folder(args.kb))[: args.limit or None]
        others = cpu_used_by_others()
        started = time.perf_counter()
        report = common.apply(inst.db, cli_context(org.id), org.id, incoming, dry_run=False)
        import_s = time.perf_counter() - started
        say(f"imported {len(incoming)} articles in {import_s:.1f} s")
        knowledge = inst.knowledge_index(lambda: embedder)
        started = time.perf_counter()
        run = knowledge.indexer.process_pending(org.id)
        index_s = time.perf_counter() - started
        others_end = cpu_used_by_others()
        wall = (import_s + index_s) * (os.cpu_count() or 1)
        other_share = None if others is None or others_end is None else round(max(0.0, others_end - others) / wall, 3)
        vectors = knowledge.dense.path(org.id)
        _, index = knowledge.dense.get(org.id)
        result = {
            "articles": len(incoming), "failed": report.counts["failed"], "passages": run.chunks_added,
            "texts_embedded": run.embedded, "import_s": round(import_s, 2), "index_s": round(index_s, 2),
            "import_articles_per_s": round(len(incoming) / import_s, 1),
            "index_articles_per_s": round(len(incoming) / index_s, 2),
            "total_articles_per_s": round(len(incoming) / (import_s + index_s), 2),
            "embedded_texts_per_s": round(run.embedded / index_s, 1),
            "dense_kind": index.kind if index is not None else None,
            "vectors_file_bytes": vectors.stat().st_size if vectors.exists() else 0,
            "database_mb": round(inst.paths.database.stat().st_size / 2**20, 1),
            "cpu_share_used_by_others": other_share, "threads": args.threads,
        }  # fmt: skip
        inst.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<28} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sections = parser.add_subparsers(dest="section", required=True, metavar="SECTION")
    vectors = sections.add_parser("vectors", help="the dense index: exact vs approximate kinds, and VectorIndex")
    vectors.add_argument("--n", type=int, default=500_000, help="base vectors")
    vectors.add_argument("--dim", type=int, default=384, help="dimensions (all-MiniLM-L6-v2: 384)")
    vectors.add_argument("--queries", type=int, default=1000, help="held-out single queries timed per config")
    vectors.add_argument("--exact-queries", type=int, default=200, help="of those, timed against exact search")
    vectors.add_argument("--clusters", type=int, default=0, help="clusters in the data (default: n/50, at most 3000)")
    vectors.add_argument("--batch", type=int, default=10_000, help="vectors per VectorIndex.add() call")
    vectors.add_argument("--threads", type=int, default=2, help="faiss OpenMP threads")
    vectors.add_argument("--seed", type=int, default=0)
    vectors.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    vectors.set_defaults(run=run_vectors)
    kb = sections.add_parser("kb", help="import + index throughput on a KB folder (*.md with front matter)")
    kb.add_argument("--kb", type=Path, required=True, help="the KB folder, e.g. supportbench_medical/kb")
    kb.add_argument("--limit", type=int, default=0, help="only the first N articles (0: all)")
    kb.add_argument("--model-dir", type=Path, help="an exported embedder dir (default: export to a temp dir)")
    kb.add_argument("--threads", type=int, default=2, help="embedder threads")
    kb.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    kb.set_defaults(run=run_kb)
    args = parser.parse_args()
    if args.section == "vectors" and min(args.n, args.dim, args.queries, args.exact_queries, args.batch,
                                         args.threads) < 1:  # fmt: skip
        parser.error("--n, --dim, --queries, --exact-queries, --batch and --threads must be positive")
    args.run(args)


if __name__ == "__main__":
    main()
