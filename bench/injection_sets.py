"""Dev evaluation files for `appliance eval injection`, built from the datasets into a folder:

    python bench/injection_sets.py OUT_DIR [--datasets ../shared/datasets]
    appliance eval injection --kind message --data OUT_DIR/message_dev.jsonl --json
    appliance eval injection --kind passage --data OUT_DIR/passage_dev.jsonl --json

message_dev.jsonl: the 30% of jailbreak_inthewild train prompts that models/train_guard.py holds out (never trained
on; label 1) and the BANKING77 dev and CLINC150 val texts (label 0).

passage_dev.jsonl: clean passages the scanner was not trained on and whose threshold they did not set (the "dev"
fifth of the articles by hash: supportbench e-manual and medical articles and StackFAQ answers, chunked as the
indexer chunks them, and the BIPIA train e-mail contexts the scanner did not train on; label 0), and the same
passages with a BIPIA train attack inserted as BIPIA inserts it, at the start, in the middle (at a sentence
boundary) or at the end, on a line of its own (label 1). The scanner's training saw these attack strings, so the
recall here is the optimistic figure; `models/train_guard.py` also prints the cross-check that never saw them.

The splits are the training script's own (a hash of each text), so they can be rebuilt at any time.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models"))

from train_guard import bucket, insert, kb_passages, read_jsonl, stackfaq_passages  # noqa: E402

SEED = 7
KB_PER_SOURCE = 400  # clean passages taken from each KB source


def message_set(data: Path) -> list[dict[str, object]]:
    prompts = [r["prompt"] for r in read_jsonl(data / "jailbreak_inthewild" / "train.jsonl")]
    rows: list[dict[str, object]] = [{"text": p, "label": 1} for p in prompts if bucket(p, "jailbreak") < 30]
    rows += [{"text": r["text"], "label": 0} for r in read_jsonl(data / "banking77" / "dev.jsonl")]
    rows += [{"text": r["text"], "label": 0} for r in read_jsonl(data / "clinc150" / "val.jsonl")]
    return rows


def passage_set(data: Path) -> list[dict[str, object]]:
    rng = random.Random(SEED)
    sources = {
        "emanual": kb_passages(data / "supportbench_emanual" / "kb", "emanual"),
        "medical": kb_passages(data / "supportbench_medical" / "kb", "medical"),
        "stackfaq": stackfaq_passages(data / "stackfaq" / "corpus.jsonl"),
    }
    clean: list[str] = []
    for passages in sources.values():
        dev = [text for key, _, text in passages if bucket(key, "passage") >= 80]
        clean += rng.sample(dev, min(KB_PER_SOURCE, len(dev)))
    emails = [
        r["context"] for r in read_jsonl(data / "bipia_injection" / "email_train.jsonl")
        if bucket(f"email:{r['id']}", "passage") >= 60
    ]  # fmt: skip
    attacks = [r["attack"] for r in read_jsonl(data / "bipia_injection" / "attacks_train.jsonl")]
    rows: list[dict[str, object]] = [{"text": t, "label": 0} for t in clean + emails]
    for attack in attacks:
        for where in ("start", "middle", "end"):
            rows.append({"text": insert(rng.choice(emails), attack, where, rng), "label": 1})
            rows.append({"text": insert(rng.choice(clean), attack, where, rng), "label": 1})
    return rows


def write(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    positives = sum(1 for r in rows if r["label"] == 1)
    print(f"{path}: {len(rows)} texts, {positives} attacks, {len(rows) - positives} benign")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "message_dev.jsonl", message_set(args.datasets))
    write(args.out / "passage_dev.jsonl", passage_set(args.datasets))


if __name__ == "__main__":
    main()
