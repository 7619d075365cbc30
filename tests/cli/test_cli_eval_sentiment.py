"""`appliance eval sentiment` as docs/evaluation.md specifies it, run as the operator runs it: a subprocess with a
clean environment, the shipped model on the real embedder (installed once into a data dir the tests share), and
`--train` fitting a head on a small file with the shipped recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.evalrun import run, write

KEYS = {"n", "macro_recall", "accuracy", "macro_f1", "ms_per_text"}

# Every accepted label form: label_name, label as a name, as an int and as a digit string.
CLEAR = [
    {"text": "This is the worst service I have ever had, I hate it", "label_name": "negative", "label": 0},
    {"text": "Terrible app, it crashed again and I lost everything", "label": "negative"},
    {"text": "Thank you so much, you were really helpful!", "label": 2},
    {"text": "I love the new update, it works great", "label": "2"},
    {"text": "The office is on the second floor of the building", "label_name": "neutral"},
    {"text": "The meeting has been moved to Thursday afternoon", "label": 1},
]
NEGATIVE = ["I hate this, it is awful", "worst experience ever, never again", "this is terrible and I am angry",
            "so disappointed, it broke after a day", "horrible support, rude and useless", "what a disaster, awful"]
POSITIVE = ["I love it, thank you", "great job, really happy with it", "amazing service, thanks a lot",
            "best day ever, so excited", "wonderful people, very helpful", "awesome, love the new look"]
NEUTRAL = ["the store opens at nine on monday", "the report covers the second quarter",
           "the train leaves from platform four", "the meeting is on thursday", "the form has three pages",
           "the office moved to the next building"]


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One evaluation data dir for the module: the embedder is exported into it once."""
    return tmp_path_factory.mktemp("sentiment-eval") / "data"


def test_eval_sentiment_prints_the_contract_keys(tmp_path: Path, eval_dir: Path) -> None:
    data = write(tmp_path / "clear.jsonl", CLEAR)
    done = run("eval", "sentiment", "--data", str(data), "--json", "--data-dir", str(eval_dir), home=tmp_path)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)  # exactly one JSON object on stdout
    assert set(figures) == KEYS
    assert figures == {**figures, "n": 6, "macro_recall": 1.0, "accuracy": 1.0, "macro_f1": 1.0}
    assert figures["ms_per_text"] > 0
    assert "sentiment-v1" in done.stderr and "all-minilm-l6-v2" in done.stderr

    # Two of six wrong (a negative and a neutral text labelled positive): the figures follow the definitions.
    swapped = [{**CLEAR[0], "label_name": "positive"}, *CLEAR[1:4], {**CLEAR[4], "label_name": "positive"}, CLEAR[5]]
    done = run("eval", "sentiment", "--data", str(write(tmp_path / "swapped.jsonl", swapped)), "--json",
               "--data-dir", str(eval_dir), home=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    # gold negative 1/1 (recall 1), neutral 1/1, positive 2/4; predictions: negative 2 (precision 0.5), neutral 2
    # (0.5), positive 2 (1.0).
    assert figures["accuracy"] == pytest.approx(4 / 6)
    assert figures["macro_recall"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert figures["macro_f1"] == pytest.approx((2 * 0.5 / 1.5 + 2 * 0.5 / 1.5 + 2 * 0.5 / 1.5) / 3)

    table = run("eval", "sentiment", "--data", str(data), "--data-dir", str(eval_dir), home=tmp_path)
    assert table.returncode == 0 and not table.stdout.startswith("{")
    assert "macro_recall                 1.0000" in table.stdout


def test_eval_sentiment_trains_a_head_on_the_given_file_only(tmp_path: Path, eval_dir: Path) -> None:
    rows = [{"text": t, "label": k} for k, group in enumerate([NEGATIVE, NEUTRAL, POSITIVE]) for t in group]
    train = write(tmp_path / "train.jsonl", rows)
    done = run("eval", "sentiment", "--data", str(train), "--train", str(train), "--json",
               "--data-dir", str(eval_dir), home=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert set(figures) == KEYS and figures["n"] == 18
    assert figures["accuracy"] >= 0.9  # a head fitted on these 18 texts labels them back
    assert f"training a head on {train} (18 texts)" in done.stderr and "sentiment-v1" not in done.stderr

    # The same texts with the labels rotated: a head trained on them follows its file, not the shipped model.
    groups = enumerate([NEGATIVE, NEUTRAL, POSITIVE])
    rotated = write(tmp_path / "rotated.jsonl",
                    [{"text": t, "label": (k + 1) % 3} for k, group in groups for t in group])
    done = run("eval", "sentiment", "--data", str(rotated), "--train", str(rotated), "--json",
               "--data-dir", str(eval_dir), home=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accuracy"] >= 0.9

    two_labels = write(tmp_path / "two.jsonl", [r for r in rows if r["label"] != 0])
    done = run("eval", "sentiment", "--data", str(train), "--train", str(two_labels), "--json",
               "--data-dir", str(eval_dir), home=tmp_path)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == f"error: {two_labels}: no texts labelled negative; training needs all three labels"


def test_eval_sentiment_refuses_bad_input_naming_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "hello", "label": 0}\n{"text": "x", oops\n')
    done = run("eval", "sentiment", "--data", str(data), "--json", home=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert f"{data}:2: not valid JSON" in done.stderr

    data.write_text('{"text": "hello", "label": 0}\n\n{"text": "x", "label": "angry"}\n')
    done = run("eval", "sentiment", "--data", str(data), home=tmp_path)
    assert done.returncode == 2
    assert f"{data}:3: 'label_name' or 'label' must be negative/neutral/positive or 0/1/2" in done.stderr

    data.write_text('{"text": "hello", "label": 3}\n')
    done = run("eval", "sentiment", "--data", str(data), home=tmp_path)
    assert done.returncode == 2 and f"{data}:1: 'label_name' or 'label'" in done.stderr

    data.write_text('{"label": 1}\n')
    done = run("eval", "sentiment", "--data", str(data), home=tmp_path)
    assert done.returncode == 2 and f"{data}:1: 'text' must be a string" in done.stderr

    good = write(tmp_path / "good.jsonl", CLEAR)
    data.write_text('{"text": "fine", "label_name": "neutral"}\n{"text": "fine", "label_name": true}\n')
    done = run("eval", "sentiment", "--data", str(good), "--train", str(data), home=tmp_path)
    assert done.returncode == 2 and f"{data}:2: 'label_name' or 'label'" in done.stderr

    missing = tmp_path / "nope.jsonl"
    done = run("eval", "sentiment", "--data", str(missing), "--json", home=tmp_path)
    assert done.returncode == 2 and str(missing) in done.stderr and len(done.stderr.strip().splitlines()) == 1
