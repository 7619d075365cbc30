"""`appliance eval retrieval` as docs/evaluation.md specifies it, and `appliance kb reindex`, run as the operator
runs them: a subprocess with a clean environment, the real embedder and the real encrypted database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APPLIANCE = str(Path(sys.executable).parent / "appliance")
DEMO = Path(__file__).resolve().parents[2] / "appliance" / "demo_kb"
KEYS = {"n", "recall_at_1", "recall_at_5", "mrr_at_10", "p50_ms", "p95_ms"}


def run(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    clean |= {"HOME": str(home), "XDG_DATA_HOME": str(home / "xdg")} | env
    return subprocess.run([APPLIANCE, *args], capture_output=True, text=True, env=clean, timeout=600)


def test_eval_retrieval_on_the_demo_kb_prints_the_contract_keys(tmp_path: Path) -> None:
    done = run(
        "eval", "retrieval", "--kb", str(DEMO / "articles"), "--questions", str(DEMO / "questions.jsonl"), "--json",
        "--data-dir", str(tmp_path / "eval"), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)  # exactly one JSON object on stdout; progress went to stderr
    assert set(figures) == KEYS
    answerable = sum(json.loads(line)["answerable"] for line in (DEMO / "questions.jsonl").read_text().splitlines())
    assert figures["n"] == answerable
    # Catches a broken leg or a broken id mapping: the demo questions are written against these articles.
    assert figures["recall_at_5"] >= 0.9 and figures["recall_at_1"] >= 0.6
    assert figures["recall_at_1"] <= figures["recall_at_5"] and 0 < figures["mrr_at_10"] <= 1
    assert 0 < figures["p50_ms"] <= figures["p95_ms"]
    assert "imported" in done.stderr and "indexed" in done.stderr

    # The kept data dir is reused: nothing is imported or embedded again, and the figures are the same.
    table = run(
        "eval", "retrieval", "--kb", str(DEMO / "articles"), "--questions", str(DEMO / "questions.jsonl"),
        "--data-dir", str(tmp_path / "eval"), home=tmp_path,
    )  # fmt: skip
    assert table.returncode == 0 and not table.stdout.startswith("{")
    assert "indexed 0 passages" in table.stderr
    assert f"recall_at_1                  {figures['recall_at_1']:.4f}" in table.stdout


def test_eval_retrieval_refuses_bad_input_naming_file_and_line(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "x", "answerable": true, "gold_article_ids": ["k"]}\n{"id": "b", oops\n')
    done = run("eval", "retrieval", "--kb", str(DEMO / "articles"), "--questions", str(questions), "--json", home=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert f"{questions}:2: not valid JSON" in done.stderr

    questions.write_text('{"id": "a", "question": "x", "answerable": "yes", "gold_article_ids": []}\n')
    done = run("eval", "retrieval", "--kb", str(DEMO / "articles"), "--questions", str(questions), home=tmp_path)
    assert done.returncode == 2 and f"{questions}:1: 'answerable' must be true or false" in done.stderr

    missing = tmp_path / "nope.jsonl"
    done = run("eval", "retrieval", "--kb", str(DEMO / "articles"), "--questions", str(missing), home=tmp_path)
    assert done.returncode == 2 and str(missing) in done.stderr

    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "good.md").write_text("---\nid: g\ntitle: Good\n---\nbody\n")
    (kb / "bad.md").write_text("---\nid: [unclosed\ntitle: Bad\n---\nbody\n")
    questions.write_text('{"id": "a", "question": "x", "answerable": true, "gold_article_ids": ["g"]}\n')
    done = run("eval", "retrieval", "--kb", str(kb), "--questions", str(questions), home=tmp_path)
    assert done.returncode == 2 and "bad.md" in done.stderr and "YAML" in done.stderr


def test_kb_reindex_rebuilds_every_organisation(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    env = {"APPLIANCE_EMBEDDER_ENGINE": "fake", "APPLIANCE_LLM_ENGINE": "none"}
    assert run("--data-dir", data, "init", home=tmp_path, **env).returncode == 0
    assert run("--data-dir", data, "org", "add", "demo", "--name", "Demo", home=tmp_path, **env).returncode == 0
    imported = run("--data-dir", data, "kb", "import", str(DEMO / "articles"), "--org", "demo", home=tmp_path, **env)
    assert imported.returncode == 0, imported.stderr
    articles = len(list((DEMO / "articles").glob("*.md")))
    assert f"indexed {articles} articles" in imported.stderr
    again = run("--data-dir", data, "kb", "reindex", home=tmp_path, **env)
    assert again.returncode == 0, again.stderr
    assert f"demo: indexed {articles} articles" in again.stderr
    unknown = run("--data-dir", data, "kb", "reindex", "--org", "nope", home=tmp_path, **env)
    assert unknown.returncode == 2 and "nope" in unknown.stderr


ANSWER_KEYS = {
    "n", "n_answerable", "n_unanswerable", "answered", "answered_correct", "precision", "coverage",
    "refused_unanswerable", "ece", "threshold", "p50_ms", "p95_ms", "coverage_at_precision_95",
}  # fmt: skip


def test_eval_answers_on_the_demo_kb_prints_the_contract_keys_and_writes_each_answer(tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    done = run(
        "eval", "answers", "--kb", str(DEMO / "articles"), "--questions", str(DEMO / "questions.jsonl"), "--json",
        "--out", str(out), "--threshold", "50", "--data-dir", str(tmp_path / "eval"), home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert set(figures) == ANSWER_KEYS
    questions = [json.loads(line) for line in (DEMO / "questions.jsonl").read_text().splitlines()]
    assert figures["n"] == len(questions) and figures["threshold"] == 50
    assert figures["n_unanswerable"] == sum(not q["answerable"] for q in questions)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [q["id"] for q in questions]
    assert all(set(r) >= {"id", "answered", "confidence", "sources", "answer"} for r in rows)
    # the figures are the rows counted as docs/evaluation.md defines them
    gold = {q["id"]: set(q["gold_article_ids"]) for q in questions}
    answered = [r for r in rows if r["answered"]]
    assert figures["answered"] == len(answered) and all(r["confidence"] >= 50 for r in answered)
    assert all(r["confidence"] < 50 and r["sources"] == [] for r in rows if not r["answered"])
    correct = sum(bool(r["sources"]) and r["sources"][0] in gold[r["id"]] for r in answered)
    assert figures["answered_correct"] == correct and figures["precision"] == correct / len(answered)
    # a sanity floor that a broken gate or id mapping would miss: most demo answers are right
    assert figures["precision"] >= 0.8 and 0 <= figures["ece"] <= 1


def test_eval_answers_refuses_bad_input_naming_file_and_line(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "x", "answerable": true, "gold_article_ids": []}\n')
    done = run("eval", "answers", "--kb", str(DEMO / "articles"), "--questions", str(questions), "--json", home=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert f"{questions}:1: an answerable question needs at least one gold article id" in done.stderr
    done = run("eval", "answers", "--kb", str(tmp_path / "nokb"), "--questions", str(questions), home=tmp_path)
    assert done.returncode == 2
