"""eval injection: the two injection defences measured on labelled texts, as docs/evaluation.md specifies.

`--kind message` runs the customer-message prompt-attack detector; `--kind passage` runs the knowledge-passage
injection scanner, with the configured embedder installed into a throwaway data dir (or `--data-dir`, reused) as
the indexer would use it. Labels: 1 = attack, 0 = benign.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from appliance.cli.eval_cmds import emit, eval_group, eval_installation, json_lines
from appliance.cli.main import Obj, pass_obj
from appliance.errors import BadInput
from appliance.inference.base import Embedder

_LABELS: dict[object, int] = {1: 1, 0: 0, "1": 1, "0": 0, "attack": 1, "benign": 0}


def read_labelled(path: Path) -> list[tuple[str, int]]:
    """JSON Lines with `text` and `label` (1 or "1" or "attack"; 0 or "0" or "benign")."""
    out: list[tuple[str, int]] = []
    for where, row in json_lines(path):
        text, label = row.get("text"), row.get("label")
        if not isinstance(text, str):
            raise BadInput(f"{where}: 'text' must be a string")
        if isinstance(label, bool) or not isinstance(label, int | str) or label not in _LABELS:
            raise BadInput(f"{where}: 'label' must be 1 (attack) or 0 (benign)")
        out.append((text, _LABELS[label]))
    if not out:
        raise BadInput(f"{path}: no labelled texts")
    return out


@contextmanager
def eval_embedder(obj: Obj, data_dir: Path | None) -> Iterator[Embedder | None]:
    """The configured embedder of an evaluation installation (eval_cmds.eval_installation); None when it cannot be
    loaded (the scanner then runs lexically)."""
    with eval_installation(obj, data_dir) as inst:
        yield inst.knowledge.embedder


def measure(items: list[tuple[str, int]], flag: Callable[[str], bool], threshold: float) -> dict[str, float | int]:
    flagged: list[bool] = []
    times: list[float] = []
    flag(items[0][0])  # warm up (first-call allocations, lazy model loads)
    for number, (text, _) in enumerate(items, start=1):
        started = time.perf_counter()
        flagged.append(flag(text))
        times.append((time.perf_counter() - started) * 1000)
        if number % 500 == 0:
            click.echo(f"{number}/{len(items)} texts", err=True)
    attacks = [f for f, (_, label) in zip(flagged, items, strict=True) if label == 1]
    benign = [f for f, (_, label) in zip(flagged, items, strict=True) if label == 0]
    return {
        "n": len(items),
        "tpr": sum(attacks) / len(attacks) if attacks else 0.0,
        "fpr": sum(benign) / len(benign) if benign else 0.0,
        "threshold": threshold,
        "ms_per_text": statistics.median(times),
    }


@eval_group.command("injection")
@click.option("--kind", type=click.Choice(["message", "passage"]), required=True,
              help="message: the prompt-attack detector; passage: the knowledge-passage injection scanner.")
@click.option("--data", "data", type=click.Path(path_type=Path), required=True,
              help="Labelled texts (JSON Lines: text, label 1 = attack / 0 = benign).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--data-dir", "eval_dir", type=click.Path(path_type=Path),
              help="passage: keep the data dir with the installed embedder here (reused by later runs).")
@pass_obj
def eval_injection(obj: Obj, kind: str, data: Path, as_json: bool, eval_dir: Path | None) -> None:
    """True- and false-positive rates of an injection defence at its shipped threshold, and its latency."""
    items = read_labelled(data)
    if kind == "message":
        from appliance.inference.guard import load_prompt_guard

        guard = load_prompt_guard()
        click.echo(f"detector {guard.version} (SHA-256 {guard.sha256[:12]}...)", err=True)
        figures = measure(items, guard.is_attack, guard.threshold)
    else:
        from appliance.inference.scanner import load_passage_scanner

        with eval_embedder(obj, eval_dir) as embedder:
            scanner = load_passage_scanner(embedder)
            click.echo(f"scanner {scanner.version} (SHA-256 {scanner.model.sha256[:12]}...)", err=True)
            figures = measure(items, lambda text: scanner.scan(text).flagged, scanner.threshold)
    emit(figures, as_json, f"injection ({kind}): {data} ({len(items)} texts)")
    sys.stdout.flush()
