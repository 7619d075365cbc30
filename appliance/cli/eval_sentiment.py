"""eval sentiment: the sentiment model measured on labelled texts, as docs/evaluation.md specifies.

Without --train the shipped model (sentiment-v1) runs on the configured embedder, installed into a throwaway data
dir (or --data-dir, reused) as the appliance would use it. With --train FILE a head is trained on that file alone
with the shipped model's recipe (needs the `build` extra) and evaluated instead. Labels: `label_name` or `label`,
negative/neutral/positive or 0/1/2.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import click

from appliance.cli.eval_cmds import emit, eval_group, eval_installation, json_lines
from appliance.cli.main import Obj, pass_obj
from appliance.errors import BadInput, ConfigError
from appliance.inference.base import TextScorer

LABELS = ("negative", "neutral", "positive")
_LABELS: dict[object, int] = {**{name: k for k, name in enumerate(LABELS)}, **{k: k for k in range(3)},
                              **{str(k): k for k in range(3)}}  # fmt: skip


def read_sentiment(path: Path) -> list[tuple[str, int]]:
    """JSON Lines with `text` and `label_name` or `label` (negative/neutral/positive or 0/1/2)."""
    out: list[tuple[str, int]] = []
    for where, row in json_lines(path):
        text = row.get("text")
        label = row["label_name"] if "label_name" in row else row.get("label")
        if not isinstance(text, str):
            raise BadInput(f"{where}: 'text' must be a string")
        if isinstance(label, bool) or not isinstance(label, int | str) or label not in _LABELS:
            raise BadInput(f"{where}: 'label_name' or 'label' must be negative/neutral/positive or 0/1/2")
        out.append((text, _LABELS[label]))
    if not out:
        raise BadInput(f"{path}: no labelled texts")
    return out


def figures(gold: Sequence[int], predicted: Sequence[int], times: Sequence[float]) -> dict[str, float | int]:
    """Macro recall (the TweetEval metric), accuracy and macro F1 over the three labels, and the median latency."""
    recalls, f1s = [], []
    for k in range(len(LABELS)):
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == k and p == k)
        support, chosen = sum(1 for g in gold if g == k), sum(1 for p in predicted if p == k)
        recall = tp / support if support else 0.0
        precision = tp / chosen if chosen else 0.0
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {
        "n": len(gold),
        "macro_recall": sum(recalls) / len(LABELS),
        "accuracy": sum(1 for g, p in zip(gold, predicted, strict=True) if g == p) / len(gold),
        "macro_f1": sum(f1s) / len(LABELS),
        "ms_per_text": statistics.median(times),
    }


def measure(items: list[tuple[str, int]], scorer: TextScorer) -> dict[str, float | int]:
    """Each text scored alone, as a chat message is: the latency includes cleaning and embedding."""
    predicted: list[int] = []
    times: list[float] = []
    scorer.score([items[0][0]])  # warm up (first-call allocations)
    for number, (text, _) in enumerate(items, start=1):
        started = time.perf_counter()
        label = scorer.score([text])[0].label
        times.append((time.perf_counter() - started) * 1000)
        predicted.append(LABELS.index(label))
        if number % 500 == 0:
            click.echo(f"{number}/{len(items)} texts", err=True)
    return figures([label for _, label in items], predicted, times)


@eval_group.command("sentiment")
@click.option("--data", "data", type=click.Path(path_type=Path), required=True,
              help="Labelled texts (JSON Lines: text, label_name or label: negative/neutral/positive or 0/1/2).")
@click.option("--train", "train", type=click.Path(path_type=Path),
              help="Train a head on this file only (the shipped recipe) and evaluate it instead of the shipped one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--data-dir", "eval_dir", type=click.Path(path_type=Path),
              help="Keep the data dir with the installed embedder here (reused by later runs).")
@pass_obj
def eval_sentiment(obj: Obj, data: Path, train: Path | None, as_json: bool, eval_dir: Path | None) -> None:
    """Macro recall, accuracy and macro F1 of the sentiment model, and its single-text latency."""
    from appliance.inference import sentiment

    items = read_sentiment(data)
    training = read_sentiment(train) if train is not None else None
    if training is not None:
        missing = [name for k, name in enumerate(LABELS) if all(label != k for _, label in training)]
        if missing:
            raise BadInput(f"{train}: no texts labelled {', '.join(missing)}; training needs all three labels")
    with eval_installation(obj, eval_dir) as inst:
        embedder = inst.knowledge.embedder
        if embedder is None:
            raise ConfigError(f"the sentiment model needs the embedder: {inst.knowledge.embedder_error}")
        threads = inst.settings.inference_threads
        if training is None:
            scorer = sentiment.load_sentiment(embedder, threads=threads)
            click.echo(f"model {scorer.version} (SHA-256 {scorer.sha256[:12]}...) on {embedder.name}", err=True)
            results = measure(items, scorer)
        else:
            click.echo(f"training a head on {train} ({len(training)} texts) ...", err=True)
            with tempfile.TemporaryDirectory(prefix="sentiment-head-") as tmp:
                sentiment.train_head(
                    embedder.embed, [t for t, _ in training], [y for _, y in training], Path(tmp),
                    sentiment.HeadRecipe(), {"version": f"trained on {train}", "embedder": embedder.name},
                )  # fmt: skip
                results = measure(items, sentiment.EmbeddingHeadScorer(embedder, Path(tmp), threads, "trained"))
    emit(results, as_json, f"sentiment: {data} ({len(items)} texts)")
    sys.stdout.flush()
