"""Urgent-message benchmark: how often the detector (appliance/answering/urgent.py) recognises a message that
describes an emergency or a risk to someone's safety, and how often it takes an ordinary question for one.

Recall is measured on URGENT_MESSAGES below: messages WRITTEN FOR THIS BENCH (not from any data set), in the words
patients and customers use, first person and third person, with negations and typos, each labelled with what it
describes. The false-positive rate is measured on question sets with no emergency in them: every CLINC150
validation row, the Banking77 dev set, the supportbench dev questions (emanual, medical: consumer health questions,
the hardest case, since they name conditions) and the demo help centre's questions. Each hit there is printed so a
person can judge it (erring on the side of safety is intended: a hit sends emergency guidance and a person). Nothing
is fitted on these sets. It prints figures only; it never fails.
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

from appliance.answering.urgent import detect  # noqa: E402
from detector_sets import false_positives, print_false_positives, rows  # noqa: E402  # type: ignore[import-not-found]

DATA = ROOT.parent / "shared" / "datasets"
QUESTION_SETS = {
    "clinc150_val": ("clinc150/val.jsonl", "text"),
    "banking77_dev": ("banking77/dev.jsonl", "text"),
    "supportbench_emanual_dev": ("supportbench_emanual/questions_dev.jsonl", "question"),
    "supportbench_medical_dev": ("supportbench_medical/questions_dev.jsonl", "question"),
}  # fmt: skip
DEMO_QUESTIONS = ROOT / "appliance" / "demo_kb" / "questions.jsonl"
EMERGENCY_ARTICLE = "rc-urgent-emergencies"

# Written for this bench: (what it describes, the message).
URGENT_MESSAGES: list[tuple[str, str]] = [
    ("chest pain", "I'm having chest pain right now"),
    ("chest pain", "my chest hurts and it's spreading to my left arm"),
    ("chest pain", "Crushing pain in my chest, what do I do"),
    ("chest pain", "my husband has chest pains and is sweating"),
    ("chest pain", "i think im having a heart attack"),
    ("breathing", "I can't breathe"),
    ("breathing", "my son is struggling to breathe"),
    ("breathing", "she is not breathing"),
    ("breathing", "my baby is choking"),
    ("breathing", "difficulty breathing since this morning, getting worse"),
    ("collapse", "my dad collapsed in the kitchen"),
    ("collapse", "my wife passed out and won't wake up"),
    ("collapse", "someone is unconscious in the waiting room"),
    ("stroke", "I think my mum is having a stroke"),
    ("stroke", "his face is drooping and his speech is slurred"),
    ("stroke", "sudden slurred speech and my arm went numb"),
    ("self-harm", "I want to kill myself"),
    ("self-harm", "i dont want to live anymore"),
    ("self-harm", "I've been thinking about suicide"),
    ("self-harm", "I keep cutting myself"),
    ("self-harm", "I'm going to end my life tonight"),
    ("self-harm", "I am not suicidal but I want to hurt myself"),
    ("overdose", "I took too many pills"),
    ("overdose", "my friend overdosed"),
    ("overdose", "my toddler swallowed bleach"),
    ("bleeding", "I cut my hand and it won't stop bleeding"),
    ("bleeding", "bleeding heavily after my surgery"),
    ("bleeding", "he is coughing up blood"),
    ("seizure", "my daughter is having a seizure"),
    ("seizure", "he's convulsing on the floor"),
    ("allergy", "my throat is swelling after eating peanuts"),
    ("allergy", "severe allergic reaction, lips swollen"),
    ("allergy", "I think this is anaphylaxis"),
    ("other", "this is an emergency"),
    ("other", "please call an ambulance"),
    ("other", "I think I'm dying"),
    ("other", "my grandfather fell and hit his head, he is confused"),
    ("other", "chest pain"),
    ("other", "can't breathe help"),
    ("other", "Hi, my mother fainted and is very pale, what should I do?"),
]


def run(data: Path, examples: int) -> dict[str, Any]:
    missed = [f"{kind}: {text}" for kind, text in URGENT_MESSAGES if detect(text) is None]
    sets = {name: [str(r[key]) for r in rows(data / path)] for name, (path, key) in QUESTION_SETS.items()}
    # A demo question answered by the emergencies article is an emergency: it is counted with the urgent messages.
    demo = rows(DEMO_QUESTIONS)
    sets["demo_kb_questions"] = [str(r["question"]) for r in demo if EMERGENCY_ARTICLE not in r["gold_article_ids"]]
    emergencies = [str(r["question"]) for r in demo if EMERGENCY_ARTICLE in r["gold_article_ids"]]
    report = false_positives(sets, lambda t: None if (found := detect(t)) is None else f"[{found.phrase}]", examples)
    return {"urgent_messages": len(URGENT_MESSAGES), "recall": round(1 - len(missed) / len(URGENT_MESSAGES), 3),
            "missed": missed, "demo_emergency_questions": {"rows": len(emergencies),
                                                           "found": sum(detect(t) is not None for t in emergencies)},
            **report}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the datasets folder (default ../shared/datasets)")
    parser.add_argument("--examples", type=int, default=20, help="false-positive examples printed per set")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args.data, args.examples)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"recall on the {report['urgent_messages']} urgent messages written for this bench: {report['recall']}")
    for text in report["missed"]:
        print(f"    missed: {text}")
    demo = report["demo_emergency_questions"]
    print(f"demo questions answered by the emergencies article: {demo['found']} of {demo['rows']} found urgent")
    print_false_positives(report)


if __name__ == "__main__":
    main()
