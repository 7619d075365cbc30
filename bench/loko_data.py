"""The development KBs and their questions, as the leave-one-KB-out protocol (bench/loko.py) reads them, and the
search candidates of every question cached once per KB so that fitting and scoring never search again.

    python bench/loko_data.py ../shared/datasets --work /tmp/loko

Each KB is imported into its own encrypted data dir under --work with the normal importer and indexed with the
configured embedder (reused by later runs). Every question is searched exactly as the answer engine searches it
(hybrid, top SEARCH_K articles), and the cache keeps what the engine's later steps read: each article's title,
scores and best passages, and the question's term weights. The KBs:

- supportbench_emanual, supportbench_medical: kb/ and questions_dev.jsonl as given;
- stackfaq: the corpus as a KB (bench/stackfaq_kb.py), queries_dev.jsonl as its questions;
- demo: the shipped demo help centre (appliance/demo_kb) and its questions.

Out-of-scope questions are added to every KB as unanswerable: CLINC150's validation out-of-scope queries (every
fold's held-out figures are reported with and without them). The ABCD guidelines have no questions, so they serve
no fold (bench/loko.py says so in its report).

`--synthetic` also caches the questions each KB's structure gives for free, for training only (never scored): the
section headings of supportbench_medical and of the demo help centre (a heading is a query of its article), and
StackFAQ's training paraphrases (queries_train.jsonl, other threads than the dev ones).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "models"))

from appliance.cli.main import Obj  # noqa: E402  (first: it registers every command module)
from appliance.answering import features  # noqa: E402
from appliance.answering.engine import SEARCH_K  # noqa: E402
from appliance.cli.eval_cmds import Question, kb_instance, read_questions  # noqa: E402
from appliance.retrieval import lexical  # noqa: E402
from fit_calibration import oos_questions  # noqa: E402  # type: ignore[import-not-found]

KBS = ("supportbench_emanual", "supportbench_medical", "stackfaq", "demo")
PASSAGES_KEPT = 3


def sources(datasets: Path, work: Path) -> dict[str, tuple[Path, list[Question]]]:
    """Each KB's folder and its own questions (without the added out-of-scope ones)."""
    from stackfaq_kb import convert  # type: ignore[import-not-found]

    sf = work / "stackfaq-files"
    if not (sf / "questions.jsonl").exists():
        convert(datasets / "stackfaq", sf, "queries_dev.jsonl")
    return {
        "supportbench_emanual": (datasets / "supportbench_emanual/kb",
                                 read_questions(datasets / "supportbench_emanual/questions_dev.jsonl")),
        "supportbench_medical": (datasets / "supportbench_medical/kb",
                                 read_questions(datasets / "supportbench_medical/questions_dev.jsonl")),
        "stackfaq": (sf / "kb", read_questions(sf / "questions.jsonl")),
        "demo": (ROOT / "appliance/demo_kb/articles", read_questions(ROOT / "appliance/demo_kb/questions.jsonl")),
    }  # fmt: skip


def candidates(inst: Any, org_id: int, question: str, ext: dict[int, str]) -> dict[str, Any]:
    def frequencies(terms: list[str]) -> tuple[int, dict[str, int]]:
        with inst.db.read() as conn:
            return lexical.article_frequencies(conn, org_id, terms)

    terms = features.QuestionTerms(question, frequencies)
    result = inst.knowledge.retriever.search(org_id, question, SEARCH_K)
    return {
        "weights": terms.weights,
        "dense_used": result.dense_used,
        "articles": [{
            "id": ext.get(a.article_id, str(a.article_id)), "title": a.title, "score": a.score,
            "lexical": a.lexical, "dense": a.dense,
            "passages": [{"text": p.text, "score": p.score, "lexical": p.lexical, "dense": p.dense,
                          "heading": list(p.heading_path)} for p in a.passages[:PASSAGES_KEPT]],
        } for a in result.articles],
    }  # fmt: skip


def collect(name: str, kb: Path, questions: list[Question], data_dir: Path) -> list[dict[str, Any]]:
    rows = []
    with kb_instance(Obj(None, None), kb, data_dir) as (inst, org_id):
        with inst.db.read() as conn:
            ext = {int(r[0]): str(r[1]) for r in conn.execute("SELECT id, external_id FROM articles WHERE org_id = ?",
                                                              (org_id,))}  # fmt: skip
        for number, q in enumerate(questions, start=1):
            row = {"kb": name, "id": q.id, "question": q.question, "answerable": q.answerable, "gold": list(q.gold),
                   "oos": q.id.startswith("oos-")}  # fmt: skip
            row.update(candidates(inst, org_id, q.question, ext))
            rows.append(row)
            if number % 100 == 0:
                print(f"{name}: {number}/{len(questions)}", file=sys.stderr)
    return rows


HEADING = re.compile(r"^#{2,3} +(.+?) *$", re.M)


def synthetic_questions(name: str, kb: Path, datasets: Path, limit: int, seed: int = 20261208) -> list[Question]:
    """Headings as queries of their article (articles sharing a title all count as gold)."""
    if name == "stackfaq":
        out = []
        for line in (datasets / "stackfaq/queries_train.jsonl").read_text("utf-8").splitlines():
            if line.strip():
                q = json.loads(line)
                out.append(Question(f"syn-{q['qid']}", q["query"], True, tuple(q["relevant_doc_ids"])))
        return out
    if name == "supportbench_emanual":  # no headings inside its sections, and titles are the passages' prefix
        return []
    by_title: dict[str, list[str]] = {}
    found: list[tuple[str, str]] = []
    for path in sorted(kb.glob("*.md")):
        text = path.read_text("utf-8")
        meta = re.search(r"^id: *\"?([^\"\n]+)\"?$", text, re.M)
        title = re.search(r"^title: *\"?([^\"\n]+)\"?$", text, re.M)
        if meta is None:
            continue
        article = meta.group(1).strip()
        by_title.setdefault((title.group(1) if title else "").strip().casefold(), []).append(article)
        found += [(article, h.replace("(are) ", "").replace(" ?", "?")) for h in HEADING.findall(text)]
    title_of = {a: t for t, arts in by_title.items() for a in arts}
    random.Random(seed).shuffle(found)
    return [Question(f"syn-{name}-{i}", h, True, tuple(by_title[title_of[a]]))
            for i, (a, h) in enumerate(found[:limit])]  # fmt: skip


def load(work: Path) -> list[dict[str, Any]]:
    path = work / "candidates.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run python bench/loko_data.py DATASETS --work {work} first")
    return list(json.loads(path.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--kb", action="append", choices=KBS, help="only these KBs (default: all)")
    parser.add_argument("--synthetic", type=int, default=0, help="also cache up to N structure questions per KB")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    oos = oos_questions(args.datasets / "clinc150/val.jsonl", "oos-val")
    path = args.work / "candidates.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    done = {r["kb"] for r in rows}
    for name, (kb, questions) in sources(args.datasets, args.work).items():
        if name in done or (args.kb and name not in args.kb):
            continue
        rows += collect(name, kb, questions + oos, args.work / name)
        path.write_text(json.dumps(rows))
        print(f"{name}: {sum(r['kb'] == name for r in rows)} questions cached", file=sys.stderr)
    if args.synthetic:
        path = args.work / "synthetic.json"
        rows = json.loads(path.read_text()) if path.exists() else []
        done = {r["kb"] for r in rows}
        for name, (kb, _) in sources(args.datasets, args.work).items():
            if f"{name}:synthetic" in done or (args.kb and name not in args.kb):
                continue
            questions = synthetic_questions(name, kb, args.datasets, args.synthetic)
            if questions:
                rows += collect(f"{name}:synthetic", kb, questions, args.work / name)
                path.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
