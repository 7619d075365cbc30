"""Redaction benchmark: throughput on real customer messages, and what the rules find there.

The sets are public customer messages that hold no card numbers, IBANs or identifiers (../shared/datasets: the
Banking77 dev and train texts, the CLINC150 validation queries, the consumer health questions of supportbench_medical,
as written to the U.S. National Library of Medicine), and, as a harder case, the business emails of BIPIA (card
receipts with masked card numbers, order confirmations, amounts, dates, phone numbers). So every finding on them is
a false mask, and the report prints each one that is not a card number with its masked text, so a person can judge
it; `with_numbers` counts the messages holding a three-digit run, those a rule could have mistaken. Nothing is tuned
on these sets.

Throughput is the default kinds over every message of a set, one message at a time as the flow calls it, the best of
--reps passes (messages/s and microseconds per message); and again over the set's messages holding a digit only,
since a message without one skips every rule but email. It prints figures only; it never fails on time.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.redaction import DEFAULT_KINDS, Redactor
from appliance.redaction.rules import DIGIT

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
SETS = {
    "banking77_dev": ("banking77/dev.jsonl", "text"),
    "banking77_train": ("banking77/train.jsonl", "text"),
    "clinc150_val": ("clinc150/val.jsonl", "text"),
    "medical_questions_dev": ("supportbench_medical/questions_dev.jsonl", "question"),
    "bipia_emails": ("bipia_injection/email_train.jsonl", "context"),
}  # fmt: skip
NUMBER = re.compile(r"\d{3}")  # a message a rule could have mistaken holds at least a three-digit run


def messages(data: Path, path: str, key: str, limit: int | None) -> list[str]:
    file = data / path
    if not file.is_file():
        return []
    with file.open(encoding="utf-8") as lines:
        texts = [str(json.loads(line)[key]) for line in lines if line.strip()]
    return texts[:limit] if limit else texts


def throughput(redactor: Redactor, texts: list[str], reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        for text in texts:
            redactor.redact(text)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best if best > 0 else 0.0


def examples(redactor: Redactor, texts: list[str]) -> Iterator[dict[str, Any]]:
    for text in texts:
        got = redactor.redact(text)
        if got.findings:
            yield {"kinds": [f.kind for f in got.findings], "masked": got.text}


def run(args: argparse.Namespace) -> dict[str, Any]:
    redactor = Redactor.of(args.kinds.split(",") if args.kinds else DEFAULT_KINDS)
    report: dict[str, Any] = {"kinds": list(redactor.kinds), "sets": {}}
    for name, (path, key) in SETS.items():
        texts = messages(args.data, path, key, args.limit)
        if not texts:
            report["sets"][name] = {"missing": str(args.data / path)}
            continue
        rate = throughput(redactor, texts, args.reps)
        with_digits = [t for t in texts if DIGIT.search(t)]
        digit_rate = throughput(redactor, with_digits, args.reps) if with_digits else 0.0
        found = list(examples(redactor, texts))
        counts = Counter(kind for f in found for kind in f["kinds"])
        report["sets"][name] = {
            "messages": len(texts), "chars_mean": round(sum(map(len, texts)) / len(texts), 1),
            "messages_per_s": round(rate), "us_per_message": round(1e6 / rate, 1) if rate else None,
            "with_digits": len(with_digits),
            "us_per_message_with_digits": round(1e6 / digit_rate, 1) if digit_rate else None,
            "with_numbers": sum(bool(NUMBER.search(t)) for t in texts), "messages_with_findings": len(found),
            "findings": {k: counts[k] for k in redactor.kinds},
            "masked_examples": [f["masked"] for f in found if set(f["kinds"]) != {"pan"}][: args.examples],
        }  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the datasets folder (default ../shared/datasets)")
    parser.add_argument("--kinds", default="", help="comma-separated kinds (default: the default kinds)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many messages per set")
    parser.add_argument("--reps", type=int, default=3, help="timed passes per set (the best is reported)")
    parser.add_argument("--examples", type=int, default=20, help="masked examples printed per set")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = run(args)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"kinds: {', '.join(report['kinds'])}")
    for name, got in report["sets"].items():
        if "missing" in got:
            print(f"{name}: missing ({got['missing']})")
            continue
        print(f"{name}: {got['messages']} messages (mean {got['chars_mean']} chars), {got['messages_per_s']} "
              f"messages/s ({got['us_per_message']} us each; {got['us_per_message_with_digits']} us for each of the "
              f"{got['with_digits']} holding a digit); {got['with_numbers']} with a three-digit number, "
              f"{got['messages_with_findings']} with findings {got['findings']}")  # fmt: skip
        for masked in got["masked_examples"]:
            print(f"    {masked}")


if __name__ == "__main__":
    main()
