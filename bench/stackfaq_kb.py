"""Convert StackFAQ (corpus.jsonl + queries_*.jsonl) into the evaluation formats: a KB folder (one article per FAQ
item: title = the thread's question, body = the answer) and a questions file, so `appliance eval retrieval` runs
on it unchanged.

    python bench/stackfaq_kb.py ../shared/datasets/stackfaq /tmp/stackfaq [--queries queries_dev.jsonl]
    appliance eval retrieval --kb /tmp/stackfaq/kb --questions /tmp/stackfaq/questions.jsonl --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def convert(source: Path, out: Path, queries: str) -> tuple[int, int]:
    kb = out / "kb"
    kb.mkdir(parents=True, exist_ok=True)
    articles = 0
    for line in (source / "corpus.jsonl").read_text("utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        front = {"id": item["doc_id"], "title": item["question"], "category": "", "url": ""}
        head = "\n".join(f"{k}: {json.dumps(v)}" for k, v in front.items())
        (kb / f"{item['doc_id']}.md").write_text(f"---\n{head}\n---\n\n{item['answer']}\n", "utf-8")
        articles += 1
    questions = 0
    with (out / "questions.jsonl").open("w", encoding="utf-8") as f:
        for line in (source / queries).read_text("utf-8").splitlines():
            if not line.strip():
                continue
            q = json.loads(line)
            row = {"id": q["qid"], "question": q["query"], "answerable": True, "gold_article_ids": q["relevant_doc_ids"]}
            f.write(json.dumps(row) + "\n")
            questions += 1
    return articles, questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the stackfaq dataset folder")
    parser.add_argument("out", type=Path, help="where to write kb/ and questions.jsonl")
    parser.add_argument("--queries", default="queries_dev.jsonl")
    args = parser.parse_args()
    articles, questions = convert(args.source, args.out, args.queries)
    print(f"wrote {articles} articles to {args.out / 'kb'} and {questions} questions to {args.out / 'questions.jsonl'}")


if __name__ == "__main__":
    main()
