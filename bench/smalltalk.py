"""Small-talk benchmark: how often the detector (appliance/answering/smalltalk.py) recognises small talk, and how
often it mistakes a real question for small talk.

Recall is measured on the CLINC150 validation rows of the small-talk intents the assistant answers itself:
greeting, goodbye, thank_you, are_you_a_bot, what_is_your_name, who_made_you and who_do_you_work_for (CLINC150's
other small_talk intents, such as tell_joke, fun_fact or meaning_of_life, are chit-chat the assistant leaves to the
engine, which refuses them). The false-positive rate is measured on every other CLINC150 validation row, the
Banking77 dev set, the supportbench dev questions (emanual, medical) and the demo help centre's questions: every hit
there is a real question that would be answered with a pleasantry, so the report prints each one. The detector's
phrases were written from the CLINC150 train rows and everyday chat; nothing is fitted on these sets. It prints
figures only; it never fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

from appliance.answering.smalltalk import detect  # noqa: E402
from detector_sets import false_positives, print_false_positives, rows  # noqa: E402  # type: ignore[import-not-found]

DATA = ROOT.parent / "shared" / "datasets"
SMALL_TALK = ("greeting", "goodbye", "thank_you", "are_you_a_bot", "what_is_your_name", "who_made_you",
              "who_do_you_work_for")  # fmt: skip
QUESTION_SETS = {
    "banking77_dev": ("banking77/dev.jsonl", "text"),
    "supportbench_emanual_dev": ("supportbench_emanual/questions_dev.jsonl", "question"),
    "supportbench_medical_dev": ("supportbench_medical/questions_dev.jsonl", "question"),
}  # fmt: skip
DEMO_QUESTIONS = ROOT / "appliance" / "demo_kb" / "questions.jsonl"


def negatives(data: Path) -> dict[str, list[str]]:
    """The non-small-talk question sets, by name (CLINC150's other intents included)."""
    out = {"clinc150_val_other": [str(r["text"]) for r in rows(data / "clinc150/val.jsonl")
                                  if r["intent"] not in SMALL_TALK]}  # fmt: skip
    for name, (path, key) in QUESTION_SETS.items():
        out[name] = [str(r[key]) for r in rows(data / path)]
    out["demo_kb_questions"] = [str(r["question"]) for r in rows(DEMO_QUESTIONS)]
    return out


def run(data: Path, examples: int) -> dict[str, Any]:
    val = rows(data / "clinc150/val.jsonl")
    recall: dict[str, Any] = {}
    for intent in SMALL_TALK:
        texts = [str(r["text"]) for r in val if r["intent"] == intent]
        missed = [t for t in texts if detect(t) is None]
        recall[intent] = {"rows": len(texts), "recall": round(1 - len(missed) / len(texts), 3) if texts else None,
                          "missed": missed[:examples]}  # fmt: skip
    found = sum(v["rows"] * (v["recall"] or 0) for v in recall.values())
    total = sum(v["rows"] for v in recall.values())
    report = false_positives(negatives(data), lambda t: None if (kind := detect(t)) is None else str(kind), examples)
    return {"intents": list(SMALL_TALK), "recall": recall, "recall_overall": round(found / total, 3) if total else None,
            "small_talk_rows": total, **report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the datasets folder (default ../shared/datasets)")
    parser.add_argument("--examples", type=int, default=10, help="missed and false-positive examples printed per set")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.data, args.examples)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"small-talk intents (CLINC150 val): {', '.join(report['intents'])}")
    for intent, got in report["recall"].items():
        print(f"  {intent}: recall {got['recall']} of {got['rows']}")
        for text in got["missed"]:
            print(f"      missed: {text}")
    print(f"recall overall: {report['recall_overall']} of {report['small_talk_rows']} rows")
    print_false_positives(report)


if __name__ == "__main__":
    main()
