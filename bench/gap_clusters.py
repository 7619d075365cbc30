"""How well knowledge gaps are grouped: the clustering of appliance/analytics/gaps.py at several similarity
thresholds, on labelled customer questions (each label is one intent, so one true gap).

    .venv/bin/python bench/gap_clusters.py [--embedder DIR] [--data FILE ...] [--limit N] [--json]

Default data: Banking77 dev and the in-scope questions of CLINC150 val (../shared/datasets). For each threshold it
prints the number of clusters (against the number of intents), pairwise precision (two questions put together
share an intent), pairwise recall (two questions of one intent are put together), their F1, the adjusted Rand index
and the seconds the clustering took. --embedder takes an exported embedder folder (models/export_embedder.py);
without it one is exported first (needs the `build` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.analytics.gaps import SIMILARITY_THRESHOLD, cluster  # noqa: E402
from appliance.inference.embedders import OnnxEmbedder  # noqa: E402
from sentiment_support import default_embedder  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"
DEFAULT_DATA = [DATA / "banking77" / "dev.jsonl", DATA / "clinc150" / "val.jsonl"]
THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
OUT_OF_SCOPE = "oos"


def read(path: Path, limit: int) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    labelled = [(r["text"], r.get("label", r.get("intent"))) for r in rows]  # Banking77: label; CLINC150: intent
    kept = [(text, label) for text, label in labelled if label != OUT_OF_SCOPE][:limit]
    return [t for t, _ in kept], [str(label) for _, label in kept]


def pairs(groups: list[int]) -> int:
    return sum(n * (n - 1) // 2 for n in groups)


def score(found: list[list[int]], labels: list[str]) -> dict[str, float]:
    """Pairwise precision, recall and F1, and the adjusted Rand index, from the contingency table."""
    together = Counter((k, labels[i]) for k, members in enumerate(found) for i in members)
    both = pairs(list(together.values()))
    predicted = pairs([len(m) for m in found])
    true = pairs(list(Counter(labels).values()))
    total = pairs([len(labels)])
    precision = both / predicted if predicted else 1.0
    recall = both / true if true else 1.0
    expected = predicted * true / total
    top = (predicted + true) / 2
    ari = (both - expected) / (top - expected) if top != expected else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "ari": ari}


def run(embedder: OnnxEmbedder, path: Path, limit: int) -> dict[str, Any]:
    texts, labels = read(path, limit)
    vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
    rows = []
    for threshold in THRESHOLDS:
        started = time.perf_counter()
        found = cluster(vectors, threshold)
        seconds = time.perf_counter() - started
        rows.append({"threshold": threshold, "clusters": len(found), "seconds": round(seconds, 2),
                     **{k: round(v, 3) for k, v in score(found, labels).items()}})  # fmt: skip
    return {"data": str(path), "questions": len(texts), "intents": len(set(labels)),
            "rows": rows}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", type=Path, help="an exported embedder dir (default: export one now)")
    parser.add_argument("--data", type=Path, nargs="+", default=DEFAULT_DATA, help="JSONL files with text and label")
    parser.add_argument("--limit", type=int, default=2000, help="questions per file (the product clusters 2000)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file instead of tables")
    args = parser.parse_args()
    embedder = OnnxEmbedder(args.embedder or default_embedder(), threads=1, name="all-minilm-l6-v2")
    for path in args.data:
        result = run(embedder, path, args.limit)
        if args.json:
            print(json.dumps(result))
            continue
        print(f"{result['data']}: {result['questions']} questions, {result['intents']} intents "
              f"(the product's threshold: {SIMILARITY_THRESHOLD})")  # fmt: skip
        print(f"{'threshold':>9} {'clusters':>8} {'precision':>9} {'recall':>7} {'f1':>6} {'ari':>6} {'seconds':>7}")
        for r in result["rows"]:
            print(f"{r['threshold']:>9} {r['clusters']:>8} {r['precision']:>9} {r['recall']:>7} {r['f1']:>6} "
                  f"{r['ari']:>6} {r['seconds']:>7}")  # fmt: skip


if __name__ == "__main__":
    main()
