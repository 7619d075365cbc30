"""Train the appliance's sentiment model and write it into the package:

    appliance/inference/data/sentiment-v1/head.onnx, labels.json

    python models/train_sentiment.py [--datasets ../shared/datasets] [--out appliance/inference/data/sentiment-v1]
                                     [--embedder DIR] [--cache DIR]

Trains on tweeteval_sentiment/train_cleaned.jsonl and picks the recipe (appliance.inference.sentiment.HeadRecipe:
regularisation and the weight of the embedding block against the n-gram block) by macro recall on val.jsonl;
nothing else is read. Every text goes through the appliance's own cleaner (sentiment.clean_text, the cleaner the
training tweets were made with) and its own embedder and n-gram features, so training and serving cannot drift
apart. The chosen recipe is refitted on nothing else: the written head is the one measured on val.

Embeddings of every text are cached in --cache (keyed by the embedder's model file), so a rerun only fits.
Threads: one (OMP_NUM_THREADS=1 is set before numpy loads), as the build box is shared.

After a retrain, paste the printed digests into SENTIMENT_SHA256 (appliance/inference/sentiment.py) and the
sha256/size of head.onnx into models/manifest.toml: the loader refuses any other file.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.inference import sentiment  # noqa: E402
from appliance.inference.sentiment import HeadRecipe  # noqa: E402

EMBEDDER_NAME = "all-minilm-l6-v2"
# Searched on val (macro recall). Measured on val with the same features: embedding-only LR 0.646-0.653 (C 0.3-10),
# n-gram-only LR 0.639-0.658 (C 1-10), the joint fit 0.679-0.683 over C 0.5-2 and embedding scale 1-3; the grid
# keeps the corner of that flat region.
CANDIDATES = [HeadRecipe(c=c, embedding_scale=s) for s in (1.0, 2.0) for c in (0.5, 1.0)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CachedEmbedder:
    """Embeds each distinct text once, keeping the vectors on disk between runs."""

    def __init__(self, inner: Any, cache_dir: Path) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        key = sha256(Path(inner.model_dir) / "model.onnx")[:16]
        self.path = cache_dir / f"embeddings-{inner.name}-{key}.npz"
        self.cache: dict[str, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as npz:
                self.cache = dict(zip(npz["texts"].tolist(), npz["vectors"], strict=True))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            print(f"embedding {len(todo)} texts ...", file=sys.stderr)
            for text, vector in zip(todo, self.inner.embed(todo), strict=True):
                self.cache[text] = vector
            self.path.parent.mkdir(parents=True, exist_ok=True)
            texts_all = list(self.cache)
            np.savez(self.path, texts=np.array(texts_all), vectors=np.array([self.cache[t] for t in texts_all]))
        return np.array([self.cache[t] for t in texts], dtype=np.float32).reshape(len(texts), self.dim)


def load_embedder(directory: Path | None) -> Any:
    from appliance.inference.embedders import OnnxEmbedder

    if directory is None:
        sys.path.insert(0, str(ROOT / "models"))
        from export_embedder import default_source, export_embedder

        directory = Path(tempfile.mkdtemp(prefix="sentiment-embedder-")) / EMBEDDER_NAME
        export_embedder(default_source(), directory)
    return OnnxEmbedder(directory, threads=1, batch_size=64, name=EMBEDDER_NAME)


def macro_figures(gold: Sequence[int], predicted: Sequence[int]) -> dict[str, float]:
    """Macro recall (the TweetEval metric), accuracy and macro F1 over the three labels."""
    g, p = np.asarray(gold), np.asarray(predicted)
    recalls, f1s = [], []
    for k in range(len(sentiment.LABELS)):
        tp = float(((g == k) & (p == k)).sum())
        recall = tp / max(float((g == k).sum()), 1.0)
        precision = tp / max(float((p == k).sum()), 1.0)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {
        "macro_recall": float(np.mean(recalls)), "accuracy": float((g == p).mean()), "macro_f1": float(np.mean(f1s))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=ROOT / "appliance" / "inference" / "data" / sentiment.SENTIMENT_DIR)
    parser.add_argument("--embedder", type=Path, help="an exported embedder dir (default: export one now)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sentiment-work")
    args = parser.parse_args()
    data = args.datasets / "tweeteval_sentiment"
    train, val = read_jsonl(data / "train_cleaned.jsonl"), read_jsonl(data / "val.jsonl")
    embedder = CachedEmbedder(load_embedder(args.embedder), args.cache)
    started = time.perf_counter()

    texts, labels = [], []
    for row in train:
        if cleaned := sentiment.clean_text(row["text"]):
            texts.append(cleaned)
            labels.append(int(row["label"]))
    train_x, train_n = embedder.embed(texts), sentiment.ngram_matrix(texts, HeadRecipe().ngram_dim)
    embedder.embed([c for r in val if (c := sentiment.clean_text(r["text"]))])
    print(f"train {len(texts)} texts, val {len(val)}; {time.perf_counter() - started:.0f} s", file=sys.stderr)

    best: tuple[float, HeadRecipe, Path] | None = None
    work = Path(tempfile.mkdtemp(prefix="sentiment-heads-"))
    for number, recipe in enumerate(CANDIDATES):
        fit_started = time.perf_counter()
        weights = sentiment.fit_head(train_x, train_n, labels, recipe)
        out = work / str(number)
        sentiment.write_head(weights, out, {
            "text_cleaner": "yzse", "version": sentiment.SENTIMENT_VERSION, "embedder": EMBEDDER_NAME,
            "recipe": f"c={recipe.c} embedding_scale={recipe.embedding_scale}",
            "trained_on": "tweeteval_sentiment/train_cleaned.jsonl (selected on val.jsonl)",
        })  # fmt: skip
        scorer = sentiment.EmbeddingHeadScorer(embedder, out, name=sentiment.SENTIMENT_VERSION)
        predicted = [sentiment.LABELS.index(s.label) for s in scorer.score([r["text"] for r in val])]
        figures = macro_figures([int(r["label"]) for r in val], predicted)
        print(f"{recipe}: val {json.dumps({k: round(v, 4) for k, v in figures.items()})}; "
              f"{time.perf_counter() - fit_started:.0f} s", file=sys.stderr)  # fmt: skip
        if best is None or figures["macro_recall"] > best[0]:
            best = (figures["macro_recall"], recipe, out)
    assert best is not None
    print(f"chosen: {best[1]} (val macro recall {best[0]:.4f})", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in (sentiment.HEAD_FILE, sentiment.LABELS_FILE):
        (args.out / name).write_bytes((best[2] / name).read_bytes())
        print(f'"{name}": "{sha256(args.out / name)}",  ({(args.out / name).stat().st_size} bytes)')


if __name__ == "__main__":
    main()
