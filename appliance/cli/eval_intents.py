"""eval intents: the topic classifier trained on one labelled file and measured on another (docs/evaluation.md).

Topics are defined per organisation, so no intent model ships: --train is required. The classifier embeds with
the configured embedder, installed into a throwaway data dir (or `--data-dir`, reused) as the appliance uses it.

A row is out of scope when its --oos-field is true (CLINC150's `is_oos`) or its label equals --oos-label. Out-of-
scope rows of the training file become the classifier's out-of-scope examples.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from appliance.cli.eval_cmds import emit, eval_group, json_lines
from appliance.cli.eval_injection import eval_embedder
from appliance.cli.main import Obj, pass_obj
from appliance.errors import BadInput, InvalidValue, ModelMissing


@dataclass(frozen=True)
class Example:
    text: str
    label: str | None  # None: out of scope


def read_intents(path: Path, label_field: str | None, oos_field: str, oos_label: str | None) -> list[Example]:
    """JSON Lines with `text` and a label (string or int) in label_field; without one given, `label`, or
    `intent` where a row has no `label`."""
    out: list[Example] = []
    for where, row in json_lines(path):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadInput(f"{where}: 'text' must be a non-empty string")
        field = label_field or ("label" if "label" in row or "intent" not in row else "intent")
        flag = row.get(oos_field, False)
        if not isinstance(flag, bool):
            raise BadInput(f"{where}: '{oos_field}' must be true or false")
        label = row.get(field)
        if label is None and flag:
            out.append(Example(text, None))
            continue
        if isinstance(label, bool) or not isinstance(label, str | int) or not str(label).strip():
            raise BadInput(f"{where}: '{field}' must be a non-empty string or an integer")
        out.append(Example(text, None if flag or str(label) == oos_label else str(label)))
    if not out:
        raise BadInput(f"{path}: no labelled texts")
    return out


def figures(gold: list[str | None], predicted: list[str | None], times: list[float]) -> dict[str, Any]:
    """The contract's keys. oos_recall and oos_precision are null when the test file has no out-of-scope rows."""
    in_scope = [p == g for g, p in zip(gold, predicted, strict=True) if g is not None]
    oos = [p is None for g, p in zip(gold, predicted, strict=True) if g is None]
    flagged = [g is None for g, p in zip(gold, predicted, strict=True) if p is None]
    return {
        "n": len(gold),
        "accuracy": sum(p == g for g, p in zip(gold, predicted, strict=True)) / len(gold),
        "in_scope_accuracy": sum(in_scope) / len(in_scope) if in_scope else None,
        "oos_recall": sum(oos) / len(oos) if oos else None,
        "oos_precision": (sum(flagged) / len(flagged) if flagged else 0.0) if oos else None,
        "ms_per_text": statistics.median(times),
    }


@eval_group.command("intents")
@click.option("--train", "train", type=click.Path(path_type=Path),
              help="Labelled texts to train on (JSON Lines). Required: no intent model ships.")
@click.option("--test", "test", type=click.Path(path_type=Path), required=True, help="Labelled texts to measure on.")
@click.option("--oos-label", help="The label that marks out-of-scope rows (e.g. oos).")
@click.option("--label-field", help="Field holding the label [default: label, or intent where a row has no label].")
@click.option("--oos-field", default="is_oos", show_default=True,
              help="Boolean field marking out-of-scope rows (ignored where absent).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--data-dir", "eval_dir", type=click.Path(path_type=Path),
              help="Keep the data dir with the installed embedder here (reused by later runs).")
@pass_obj
def eval_intents(obj: Obj, train: Path | None, test: Path, oos_label: str | None, label_field: str | None,
                 oos_field: str, as_json: bool, eval_dir: Path | None) -> None:  # fmt: skip
    """Accuracy and out-of-scope detection of the topic classifier, trained on --train, and its latency."""
    if train is None:
        raise BadInput("--train FILE is required: topics are defined per organisation, so no intent model ships")
    learn = read_intents(train, label_field, oos_field, oos_label)
    items = read_intents(test, label_field, oos_field, oos_label)
    from appliance.inference.intents import IntentClassifier

    with eval_embedder(obj, eval_dir) as embedder:
        if embedder is None:
            raise ModelMissing("eval intents: the configured embedder could not be loaded (see `appliance check`)")
        examples = [e for e in learn if e.label is not None]
        oos = [e.text for e in learn if e.label is None]
        click.echo(f"training on {len(examples)} texts and {len(oos)} out-of-scope texts ...", err=True)
        started = time.perf_counter()
        try:
            model = IntentClassifier.train(embedder, [e.text for e in examples], [str(e.label) for e in examples], oos)
        except InvalidValue as exc:
            raise BadInput(f"{train}: {exc.message}") from None
        click.echo(
            f"trained {model.version} on {len(model.labels)} topics in {time.perf_counter() - started:.1f} s, "
            f"threshold {model.threshold:.3f}, held-out {model.stats}", err=True,
        )  # fmt: skip
        model.predict([items[0].text])  # warm up
        predicted: list[str | None] = []
        times: list[float] = []
        for number, item in enumerate(items, start=1):
            began = time.perf_counter()
            predicted.append(model.predict([item.text])[0].label)
            times.append((time.perf_counter() - began) * 1000)
            if number % 1000 == 0:
                click.echo(f"{number}/{len(items)} texts", err=True)
    result = figures([e.label for e in items], predicted, times)
    emit(result, as_json, f"intents: {train} -> {test} ({len(items)} texts)")
    sys.stdout.flush()
