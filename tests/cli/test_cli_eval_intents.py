"""`appliance eval intents` as docs/evaluation.md specifies it, run as the operator runs it: a subprocess with a clean
environment and the real embedder installed into a throwaway data dir."""

from __future__ import annotations

import json
from pathlib import Path
from tests.cli.evalrun import run, write

KEYS = {"n", "accuracy", "in_scope_accuracy", "oos_recall", "oos_precision", "ms_per_text"}

TRAIN = {
    "card": ["My card hasn't arrived yet", "When will my new card be delivered?", "How long does a card take to come?",
             "I'm still waiting for my debit card", "Has my card been sent out?", "Where is the card I ordered?"],
    "transfer": ["How do I send money to a friend?", "My bank transfer hasn't gone through",
                 "How long does a transfer to another bank take?", "Can I transfer money abroad?",
                 "Why was my transfer declined?", "How do I pay someone by bank transfer?"],
    "pin": ["I forgot my PIN", "How do I change my PIN?", "My PIN is blocked after three tries",
            "Where can I see my card PIN?", "Can I reset my PIN in the app?", "The ATM says my PIN is wrong"],
}  # fmt: skip
OOS = ["Tell me a joke", "What's the weather tomorrow?", "Who wrote Hamlet?", "Book me a table for two"]
TEST = [("my card still hasn't come", "card"), ("send money to my sister's account", "transfer"),
        ("I can't remember my pin number", "pin"), ("What is the capital of Australia?", None)]  # fmt: skip


def test_eval_intents_prints_the_contract_keys(tmp_path: Path) -> None:
    # CLINC150's shape: the label in `intent`, out-of-scope rows marked `is_oos`.
    train = write(tmp_path / "train.jsonl", [{"text": t, "intent": k, "is_oos": False} for k, ts in TRAIN.items()
                                             for t in ts] + [{"text": t, "intent": "oos", "is_oos": True} for t in OOS])
    test = write(tmp_path / "test.jsonl", [{"text": t, "intent": k or "oos", "is_oos": k is None} for t, k in TEST])
    data_dir = str(tmp_path / "eval")
    done = run("eval", "intents", "--train", str(train), "--test", str(test), "--json", "--data-dir", data_dir,
               home=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)  # exactly one JSON object on stdout
    assert set(figures) == KEYS
    assert figures == {**figures, "n": 4, "accuracy": 1.0, "in_scope_accuracy": 1.0, "oos_recall": 1.0,
                       "oos_precision": 1.0}  # fmt: skip
    assert figures["ms_per_text"] > 0
    assert "training on 18 texts and 4 out-of-scope texts" in done.stderr

    # BANKING77's shape: `label`, no out-of-scope rows; --oos-label names the out-of-scope label instead.
    plain = write(tmp_path / "plain.jsonl", [{"text": t, "label": k or "none"} for t, k in TEST])
    done = run("eval", "intents", "--train", str(train), "--test", str(plain), "--oos-label", "none",
               "--data-dir", data_dir, home=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "oos_recall                   1.0000" in done.stdout and not done.stdout.startswith("{")
    done = run("eval", "intents", "--train", str(train), "--test", str(plain), "--json", "--data-dir", data_dir,
               home=tmp_path)  # fmt: skip
    figures = json.loads(done.stdout)
    assert figures["n"] == 4 and figures["oos_recall"] is None and figures["oos_precision"] is None
    assert figures["in_scope_accuracy"] == 0.75  # "none" is a label the training file never taught


def test_eval_intents_refuses_bad_input_naming_file_and_line(tmp_path: Path) -> None:
    good = write(tmp_path / "good.jsonl", [{"text": t, "label": k} for k, ts in TRAIN.items() for t in ts])

    done = run("eval", "intents", "--test", str(good), "--json", home=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "--train FILE is required: topics are defined per organisation, so no intent model ships" in done.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello", "label": "a"}\n{"text": "x", oops\n')
    done = run("eval", "intents", "--train", str(bad), "--test", str(good), "--json", home=tmp_path)
    assert done.returncode == 2 and done.stdout == "" and f"{bad}:2: not valid JSON" in done.stderr

    bad.write_text('{"text": "hello", "label": "a"}\n\n{"text": "", "label": "b"}\n')
    done = run("eval", "intents", "--train", str(good), "--test", str(bad), home=tmp_path)
    assert done.returncode == 2 and f"{bad}:3: 'text' must be a non-empty string" in done.stderr

    bad.write_text('{"text": "hello", "label": true}\n')
    done = run("eval", "intents", "--train", str(bad), "--test", str(good), home=tmp_path)
    assert done.returncode == 2 and f"{bad}:1: 'label' must be a non-empty string or an integer" in done.stderr

    bad.write_text('{"text": "hello", "intent": "a", "is_oos": "yes"}\n')
    done = run("eval", "intents", "--train", str(bad), "--test", str(good), home=tmp_path)
    assert done.returncode == 2 and f"{bad}:1: 'is_oos' must be true or false" in done.stderr

    one = write(tmp_path / "one.jsonl", [{"text": t, "label": "card"} for t in TRAIN["card"]])
    done = run("eval", "intents", "--train", str(one), "--test", str(good), home=tmp_path)
    assert done.returncode == 2 and f"{one}: intents: need at least two topics, got 1" in done.stderr

    missing = tmp_path / "nope.jsonl"
    done = run("eval", "intents", "--train", str(good), "--test", str(missing), home=tmp_path)
    assert done.returncode == 2 and str(missing) in done.stderr and len(done.stderr.strip().splitlines()) == 1
