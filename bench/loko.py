"""Leave-one-KB-out: how the answer engine's learned parts do on a KB they were never fitted to.

    python bench/loko_data.py ../shared/datasets --work /tmp/loko            # search every question once
    python bench/loko.py --work /tmp/loko [--features a,b,...] [--l2 X] [--threshold T] [--sweep] [--json]

For each development KB in turn, the confidence model is fitted on the other KBs' questions only (each KB
weighing the same) and the KB left out is answered with it, as the engine would: the features of the best
article give the calibrated confidence, and the gate answers at or above the threshold. The report gives,
per KB left out, the figures of shared/EVALUATION.md over its own questions (and with CLINC150's out-of-scope
queries added), then the worst and the mean. Nothing here is fitted on the KB it reports.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from appliance.answering import calibration, features, recalibration  # noqa: E402
from appliance.answering.features import QuestionTerms  # noqa: E402
from appliance.retrieval.search import ArticleHit, Passage, SearchResult  # noqa: E402
from appliance.answering.engine import DEFAULT_THRESHOLD  # noqa: E402
from loko_data import KBS, load  # noqa: E402  # type: ignore[import-not-found]

SEEDS = 5
MIN_SCORED = 30  # questions left to score, at least, after an organisation's labels are taken
THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
# The shipped calibration's features (models/fit_confidence.py), chosen with --select: forward selection over
# answering/features.py, each step adding the feature that most raises the held-out coverage at precision 0.95
# (mean plus worst over the KBs left out), stopping when none raises it by MIN_GAIN (with four KBs, smaller steps
# are one question's noise).
CHOSEN = ("cos_margin", "margin_third", "dense", "distinct_coverage")
L2 = 1.0
MIN_GAIN = 0.005


def ece(p: Sequence[float], y: Sequence[float]) -> float:
    bins: dict[int, list[int]] = {}
    for i, v in enumerate(p):
        bins.setdefault(min(int(v * 10), 9), []).append(i)
    return sum(abs(sum(p[i] for i in b) - sum(y[i] for i in b)) for b in bins.values()) / max(len(p), 1)


def figures(rows: list[dict[str, Any]], p: list[float], threshold: float) -> dict[str, float]:
    y = [r["_correct"] for r in rows]
    answered = [i for i, v in enumerate(p) if v >= threshold]
    n_ans = sum(r["answerable"] for r in rows)
    unans = [i for i, r in enumerate(rows) if not r["answerable"]]
    correct = sum(y[i] for i in answered)
    best = 0.0
    for t in sorted(set(p)):
        picked = [i for i, v in enumerate(p) if v >= t]
        hits = sum(y[i] for i in picked)
        if picked and hits / len(picked) >= 0.95:
            best = max(best, hits / max(n_ans, 1))
    return {
        "n": len(rows), "answered": len(answered), "precision": correct / len(answered) if answered else 1.0,
        "coverage": correct / max(n_ans, 1),
        "refused_unanswerable": sum(p[i] < threshold for i in unans) / len(unans) if unans else float("nan"),
        "ece": ece(p, y), "coverage_at_precision_95": best,
        "recall_at_1": sum(y) / max(n_ans, 1),
    }  # fmt: skip


def search_result(row: dict[str, Any]) -> SearchResult:
    """The cached search as the retrieval returned it (for the retrieval features of answering/features.py)."""
    arts = [ArticleHit(i, 1, a["title"], a["score"], tuple(
        Passage(i * 100 + j, i, 1, a["title"], tuple(p.get("heading", ())), p["text"], 0, len(p["text"]), p["score"],
                p["lexical"], p["dense"]) for j, p in enumerate(a["passages"])), a["lexical"], a["dense"])
        for i, a in enumerate(row["articles"])]  # fmt: skip
    return SearchResult(row["question"], arts, bool(row["dense_used"]), 0.0)


def prepare(rows: list[dict[str, Any]]) -> None:
    """Each row's correctness and its features as the engine computes them (answering/features.py)."""
    for row in rows:
        row["_values"] = features.compute(QuestionTerms.from_weights(row["weights"]), search_result(row))
        top = row["articles"][0]["id"] if row["articles"] else None
        row["_correct"] = float(row["answerable"] and top in set(row["gold"]))


def fold(rows: list[dict[str, Any]], held: str, names: tuple[str, ...], l2: float) -> tuple[list[dict[str, Any]],
                                                                                             list[float]]:
    train = [r for r in rows if r["kb"] != held]
    test = [r for r in rows if r["kb"] == held]
    # Each training KB weighs the same, whatever its number of questions: the next KB is one organisation.
    weight = {kb: 1.0 / max(sum(r["kb"] == kb for r in train), 1) for kb in {r["kb"] for r in train}}
    model = calibration.fit([r["_values"] for r in train], [r["_correct"] for r in train], names, l2,
                     [weight[r["kb"]] * len(train) / len(weight) for r in train])  # fmt: skip
    return test, [model.probability(r["_values"]) for r in test]


def relabelled(test: list[dict[str, Any]], p: list[float], keep: list[int], labelled: int,
               threshold: float) -> dict[str, float]:  # fmt: skip
    """The figures after the organisation's recalibration (answering/recalibration.py) from `labelled` of its own
    questions, drawn at random, scored on the others; the mean over SEEDS draws."""
    runs = []
    own = [i for i in keep if not test[i]["oos"]]
    for seed in range(SEEDS):
        drawn = list(own)
        random.Random(seed).shuffle(drawn)
        picked = set(drawn[:labelled])
        adjustment = recalibration.fit([(round(100 * p[i]), bool(test[i]["_correct"])) for i in picked], "bench")
        rest = [i for i in keep if i not in picked]
        runs.append(figures([test[i] for i in rest], [adjustment.apply(round(100 * p[i])) / 100 for i in rest],
                            threshold))  # fmt: skip
    return {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}


def run(rows: list[dict[str, Any]], names: tuple[str, ...], l2: float, threshold: float,
        with_oos: bool, labelled: int = 0) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for held in KBS:
        if not any(r["kb"] == held for r in rows):
            continue
        test, p = fold(rows, held, names, l2)
        keep = [i for i, r in enumerate(test) if with_oos or not r["oos"]]
        if labelled and sum(not test[i]["oos"] for i in keep) < labelled + MIN_SCORED:
            continue  # too few questions left to score after taking the labels
        out[held] = (relabelled(test, p, keep, labelled, threshold) if labelled
                     else figures([test[i] for i in keep], [p[i] for i in keep], threshold))  # fmt: skip
    keys = ("precision", "coverage", "refused_unanswerable", "ece", "coverage_at_precision_95", "recall_at_1")
    vals = list(out.values())
    worst = {k: (max if k == "ece" else min)(v[k] for v in vals if not math.isnan(v[k])) for k in keys}
    mean = {k: sum(v[k] for v in vals if not math.isnan(v[k])) / len([v for v in vals if not math.isnan(v[k])])
            for k in keys}  # fmt: skip
    return {"folds": out, "worst": worst, "mean": mean}


def select(rows: list[dict[str, Any]], l2: float, threshold: float, steps: int = 8) -> list[tuple[str, ...]]:
    chosen: list[str] = []
    best, path = -1.0, []
    for _ in range(steps):
        tried = []
        for name in features.FEATURES:
            if name not in chosen:
                rep = run(rows, (*chosen, name), l2, threshold, False)
                tried.append((rep["mean"]["coverage_at_precision_95"] + rep["worst"]["coverage_at_precision_95"], name))
        value, name = max(tried)
        if value / 2 < best / 2 + MIN_GAIN:
            break
        best = value
        chosen.append(name)
        path.append(tuple(chosen))
        print(f"{value / 2:.3f} (mean and worst coverage at precision 0.95, averaged) with {', '.join(chosen)}",
              file=sys.stderr)  # fmt: skip
    return path


def table(report: dict[str, Any], title: str) -> str:
    lines = [title, f"{'KB left out':24} {'n':>5} {'answered':>8} {'prec':>6} {'cov':>6} {'unans':>6} {'ece':>6}"
             f" {'cov@p95':>7} {'R@1':>6}"]  # fmt: skip
    for name, f in [*report["folds"].items(), ("worst", report["worst"]), ("mean", report["mean"])]:
        lines.append(f"{name:24} {f.get('n', ''):>5} {f.get('answered', ''):>8} {f['precision']:6.3f}"
                     f" {f['coverage']:6.3f} {f['refused_unanswerable']:6.3f} {f['ece']:6.3f}"
                     f" {f['coverage_at_precision_95']:7.3f} {f['recall_at_1']:6.3f}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--features", default=",".join(CHOSEN), help="comma-separated feature names")
    parser.add_argument("--l2", type=float, default=L2)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD / 100)
    parser.add_argument("--sweep", action="store_true", help="also print the figures at other thresholds")
    parser.add_argument("--select", action="store_true", help="choose the features by forward selection first")
    parser.add_argument("--labelled", type=int, default=0, help="also report after each KB's own recalibration from "
                        "this many of its questions (answering/recalibration.py; at least 20)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [r for r in load(args.work) if r["kb"] in KBS]
    names = tuple(n for n in args.features.split(",") if n)
    prepare(rows)
    if args.select:
        names = select(rows, args.l2, args.threshold)[-1]
    report = {"own questions": run(rows, names, args.l2, args.threshold, False),
              "with out-of-scope": run(rows, names, args.l2, args.threshold, True)}  # fmt: skip
    if args.labelled:
        report[f"own questions, recalibrated from {args.labelled} of them (scored on the rest)"] = run(
            rows, names, args.l2, args.threshold, False, args.labelled)  # fmt: skip
    if args.json:
        print(json.dumps({"features": names, "threshold": args.threshold, **report}, indent=1))
        return
    print(f"features: {', '.join(names)}\nthreshold {args.threshold}; ABCD has no questions and serves no fold")
    for title, rep in report.items():
        print(table(rep, f"\n{title}"))
    if args.sweep:
        for t in THRESHOLDS:
            rep = run(rows, names, args.l2, t, False)
            print(f"threshold {t}: worst precision {rep['worst']['precision']:.3f}, mean coverage "
                  f"{rep['mean']['coverage']:.3f}, worst coverage {rep['worst']['coverage']:.3f}, worst unans "
                  f"{rep['worst']['refused_unanswerable']:.3f}, worst ece {rep['worst']['ece']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
