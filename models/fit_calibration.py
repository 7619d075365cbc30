"""Fit the answer engine's confidence calibration on the development data and write it as a versioned JSON file.

    python models/fit_calibration.py ../shared/datasets --work /tmp/calibration \
        [--out appliance/answering/calibration-v1.json] [--version calibration-v1]

For each development set the KB is imported and indexed into a data dir under --work (reused by later runs), every
question is searched, and the features of the best article are recorded with whether it is a gold article. The
sets: supportbench_emanual and supportbench_medical (questions_dev.jsonl: answerable and unanswerable questions),
StackFAQ (queries_dev.jsonl against its corpus), and CLINC150's out-of-scope queries asked of each KB as
unanswerable questions (validation queries for emanual and StackFAQ, training queries for medical). Nothing else is
read. Two logistic models are fitted: one on hybrid-search features and one on lexical-only search (used when the
dense leg is off). The file records the figures of a 5-fold cross-validation, so its fit can be judged on
questions it did not see.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.cli.main import Obj  # noqa: E402  (first: it registers every command module)
from appliance.answering import calibration, features  # noqa: E402
from appliance.cli.eval_cmds import Question, kb_instance, read_questions  # noqa: E402
from appliance.retrieval import lexical  # noqa: E402
from appliance.retrieval.search import Retriever  # noqa: E402

FOLDS = 5
SEED = 20261124


def oos_questions(path: Path, prefix: str) -> list[Question]:
    out = []
    for line in path.read_text("utf-8").splitlines():
        row = json.loads(line) if line.strip() else None
        if row and row.get("is_oos"):
            out.append(Question(f"{prefix}-{row['id']}", row["text"], False, ()))
    return out


def stackfaq_set(source: Path, work: Path) -> tuple[Path, list[Question]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from stackfaq_kb import convert  # type: ignore[import-not-found]

    out = work / "stackfaq-files"
    if not (out / "questions.jsonl").exists():
        convert(source, out, "queries_dev.jsonl")
    return out / "kb", read_questions(out / "questions.jsonl")


def collect(kb: Path, questions: list[Question], data_dir: Path, name: str) -> list[dict[str, Any]]:
    rows = []
    with kb_instance(Obj(None, None), kb, data_dir) as (inst, org_id):
        with inst.db.read() as conn:
            ext = {int(r[0]): str(r[1]) for r in conn.execute("SELECT id, external_id FROM articles WHERE org_id = ?", (org_id,))}
        knowledge = inst.knowledge
        hybrid = knowledge.retriever
        lexical_only = Retriever(inst.db, None, knowledge.dense, knowledge.fusion)

        def frequencies(terms: list[str]) -> tuple[int, dict[str, int]]:
            with inst.db.read() as conn:
                return lexical.article_frequencies(conn, org_id, terms)

        for number, q in enumerate(questions, start=1):
            terms = features.QuestionTerms(q.question, frequencies)
            row: dict[str, Any] = {"set": name, "id": q.id, "answerable": q.answerable}
            for mode, retriever in (("hybrid", hybrid), ("lexical", lexical_only)):
                result = retriever.search(org_id, q.question, 5)
                top = ext.get(result.articles[0].article_id) if result.articles else None
                row[mode] = {"features": features.compute(terms, result), "has_answer": bool(result.articles),
                             "correct": float(q.answerable and top in q.gold)}  # fmt: skip
            rows.append(row)
            if number % 100 == 0:
                print(f"{name}: {number}/{len(questions)}", file=sys.stderr)
    return rows


def scores(p: list[float], y: list[float], answerable: list[bool], threshold: float) -> dict[str, float]:
    answered = [i for i, v in enumerate(p) if v >= threshold]
    correct = sum(y[i] for i in answered)
    n_ans = sum(answerable) or 1
    unans = [i for i, a in enumerate(answerable) if not a]
    bins: dict[int, list[int]] = {}
    for i, v in enumerate(p):
        bins.setdefault(min(int(v * 10), 9), []).append(i)
    ece = sum(abs(sum(p[i] for i in b) / len(b) - sum(y[i] for i in b) / len(b)) * len(b) for b in bins.values()) / len(p)
    return {
        "n": len(p), "precision": correct / len(answered) if answered else 0.0, "coverage": correct / n_ans,
        "refused_unanswerable": sum(p[i] < threshold for i in unans) / len(unans) if unans else 0.0, "ece": ece,
    }  # fmt: skip


def fit_with_isotonic(
    x: list[dict[str, float]], y: list[float], names: tuple[str, ...], order: list[int], args: argparse.Namespace
) -> calibration.Model:
    """Boosted trees on all rows, with the isotonic map fitted on the rows' out-of-fold tree probabilities."""
    if args.kind == "logistic":
        return calibration.fit(x, y, names, args.l2)
    held = [0.0] * len(x)
    shuffled = [i for i in order]
    for k in range(FOLDS):
        test = set(shuffled[k::FOLDS])
        train = [i for i in shuffled if i not in test]
        model = calibration.fit_boosted([x[i] for i in train], [y[i] for i in train], names, seed=k,
                                        trees=args.trees, depth=args.depth, rate=args.rate)  # fmt: skip
        for i in test:
            held[i] = calibration.tree_probability(model, x[i])
    return calibration.fit_boosted(x, y, names, held_out=held, trees=args.trees, depth=args.depth, rate=args.rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "appliance/answering/calibration-v1.json")
    parser.add_argument("--version", default="calibration-v1")
    parser.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic model")
    parser.add_argument("--kind", choices=("boosted", "logistic"), default="boosted")
    parser.add_argument("--drop", default="", help="comma-separated features to leave out (experiments)")
    parser.add_argument("--trees", type=int, default=150, help="boosting rounds")
    parser.add_argument("--depth", type=int, default=2, help="depth of each tree")
    parser.add_argument("--rate", type=float, default=0.05, help="learning rate")
    args = parser.parse_args()
    d = args.datasets
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "features.json"
    if cache.exists():
        rows = json.loads(cache.read_text())
    else:
        clinc_val = oos_questions(d / "clinc150/val.jsonl", "oos-val")
        clinc_train = oos_questions(d / "clinc150/train.jsonl", "oos-train")
        sf_kb, sf_questions = stackfaq_set(d / "stackfaq", args.work)
        sets = [
            ("supportbench_emanual", d / "supportbench_emanual/kb",
             read_questions(d / "supportbench_emanual/questions_dev.jsonl") + clinc_val),
            ("supportbench_medical", d / "supportbench_medical/kb",
             read_questions(d / "supportbench_medical/questions_dev.jsonl") + clinc_train),
            ("stackfaq", sf_kb, sf_questions + clinc_val),
        ]  # fmt: skip
        rows = []
        for name, kb, questions in sets:
            rows += collect(kb, questions, args.work / name, name)
        cache.write_text(json.dumps(rows))
    models = {}
    figures: dict[str, Any] = {}
    dropped = set(filter(None, args.drop.split(",")))
    for mode, all_names in (("hybrid", features.FEATURES), ("lexical", calibration.lexical_features())):
        names = tuple(n for n in all_names if n not in dropped)
        data = [r for r in rows if r[mode]["has_answer"]]
        x = [r[mode]["features"] for r in data]
        y = [r[mode]["correct"] for r in data]
        order = list(range(len(data)))
        random.Random(SEED).shuffle(order)
        models[mode] = fit_with_isotonic(x, y, tuple(names), order, args)
        held: dict[int, float] = {}
        for k in range(FOLDS):  # the figures of models that did not see the questions they are scored on
            test = set(order[k::FOLDS])
            train = [i for i in order if i not in test]
            model = fit_with_isotonic([x[i] for i in train], [y[i] for i in train], tuple(names),
                                      list(range(len(train))), args)  # fmt: skip
            held.update({i: model.probability(x[i]) for i in test})
        for name in sorted({r["set"] for r in data}):
            idx = [i for i, r in enumerate(data) if r["set"] == name]
            figures[f"{mode}/{name}/cv"] = scores([held[i] for i in idx], [y[i] for i in idx],
                                                  [data[i]["answerable"] for i in idx], 0.85)  # fmt: skip
            figures[f"{mode}/{name}/fit"] = scores([models[mode].probability(x[i]) for i in idx], [y[i] for i in idx],
                                                   [data[i]["answerable"] for i in idx], 0.85)  # fmt: skip
    sets = sorted({r["set"] for r in rows})
    text = calibration.dump(args.version, models["hybrid"], models["lexical"], sets, figures)
    args.out.write_text(text)
    for key, value in figures.items():
        print(f"{key:<40} " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
