"""The benchmarks keep running as the code changes (tiny sizes; the figures themselves are not judged here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_store_bench_runs_and_prints_one_json_object(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "bench/store.py", "--rows", "20", "--reads", "50", "--reps", "1", "--dir", str(tmp_path), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    for figure in ("insert_single", "insert_batched", "read_point"):
        assert report["results"][figure]["sqlcipher"] > 0 and report["results"][figure]["plain"] > 0
    assert report["versions"]["sqlcipher"].startswith("4.")


def test_embed_bench_runs_and_prints_one_json_object() -> None:
    out = subprocess.run(
        [sys.executable, "bench/embed.py", "--sentences", "8", "--queries", "4", "--reps", "1", "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    for batch in ("batch_32", "batch_1"):
        figures = report["throughput_sentences_per_s"][batch]
        assert figures["onnx"] > 0 and figures["torch"] > 0 and figures["ratio"] > 0
    assert report["latency_ms"]["onnx"]["p50"] > 0


def test_retrieval_bench_vectors_runs_and_prints_one_json_object() -> None:
    out = subprocess.run(
        [sys.executable, "bench/retrieval.py", "vectors", "--n", "2000", "--dim", "32", "--queries", "20",
         "--exact-queries", "10", "--batch", "500", "--threads", "1", "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    configs = [r["config"] for r in report["results"]]
    assert configs[0].startswith("exact") and any(c.startswith("ivf-flat") for c in configs)
    assert any(c.startswith("hnsw") for c in configs)
    for result in report["results"]:
        assert result["p95_ms"] > 0 and 0 <= result["recall_at_10"] <= 1
    assert report["vector_index"]["recall_at_10"] == 1.0  # still exact at this size
    assert report["chosen"]["kind"] == "ivf-flat"


def test_retrieval_bench_kb_imports_and_indexes_a_kb(onnx_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "bench/retrieval.py", "kb", "--kb", "appliance/demo_kb/articles", "--limit", "3",
         "--model-dir", str(onnx_dir), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["articles"] == 3 and report["failed"] == 0
    assert report["passages"] > 3 and report["texts_embedded"] == report["passages"] + 3
    assert report["dense_kind"] == "exact" and report["vectors_file_bytes"] > 3 * 384 * 4


def test_answer_bench_serves_answers_and_cache_hits_end_to_end() -> None:
    out = subprocess.run(
        [sys.executable, "bench/answer.py", "--levels", "1,2", "--requests", "3", "--cache-hits", "3", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    articles = len(list((ROOT / "appliance" / "demo_kb" / "articles").glob("*.md")))
    assert report["setup"]["articles"] == articles and report["setup"]["passages_indexed"] > articles
    assert [level["concurrency"] for level in report["levels"]] == [1, 2]
    for level in report["levels"]:
        for key in ("p50_ms", "p95_ms", "max_ms", "throughput_per_s", "answered_share", "refused_share"):
            assert key in level
        assert level["requests"] == level["ok"] == 3 and level["errors"] == 0, level["error_kinds"]
        assert sum(level["outcomes"].values()) == 3
    hits = report["cache_hits"]
    assert hits["errors"] == 0 and not hits["first_cached"]
    assert hits["requests"] == hits["cached"] == 3 and hits["all_cached"]


def test_chat_load_bench_relays_every_message_once() -> None:
    out = subprocess.run(
        [sys.executable, "bench/chat_load.py", "--sessions", "3", "--messages-per-session", "2",
         "--concurrency-ramp", "0.2", "--verify-sample", "0", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    for target in ("appliance", "bare_echo"):
        figures = report[target]
        assert figures["connected"] == 3 and figures["messages_sent"] == figures["replied"] == 6, figures
        assert figures["lost"] == figures["duplicated"] == figures["errors"] == 0, figures["error_kinds"]
        assert figures["relay_ms"]["p50"] > 0 and figures["ack_ms"]["p50"] > 0
    checked = report["verify"]
    assert checked["conversations_expected"] == checked["conversations_listed"] == 4  # with the warm-up's
    assert checked["customer_messages_stored"] == checked["replies_stored"] == 6
    assert report["zero_lost_or_duplicated"] and report["ratio"]["relay_p50"] > 0


def test_gap_cluster_bench_scores_the_clustering_on_labelled_questions(onnx_dir: Path, datasets: Path) -> None:
    data = datasets / "banking77" / "dev.jsonl"
    out = subprocess.run(
        [sys.executable, "bench/gap_clusters.py", "--embedder", str(onnx_dir), "--data", str(data), "--limit", "40",
         "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["questions"] == 40
    loose, tight = report["rows"][0], report["rows"][-1]  # the lowest and the highest threshold
    assert loose["clusters"] <= tight["clusters"] <= 40
    assert loose["recall"] >= tight["recall"] and all(0 <= r["precision"] <= 1 for r in report["rows"])


def test_redaction_bench_runs_and_prints_one_json_object() -> None:
    out = subprocess.run(
        [sys.executable, "bench/redaction.py", "--limit", "20", "--reps", "1", "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's code, whatever the environment has installed
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["kinds"] == ["pan", "iban", "us_ssn", "cvv", "nhs_number", "mrn"]
    for figures in report["sets"].values():
        assert "missing" in figures or (figures["messages"] == 20 and figures["messages_per_s"] > 0)


def test_smalltalk_and_urgent_benches_run_and_print_one_json_object(datasets: Path) -> None:
    for script in ("bench/smalltalk.py", "bench/urgent.py"):  # their negatives are the data sets' customer messages
        out = subprocess.run([sys.executable, script, "--examples", "1", "--data", str(datasets), "--json"], cwd=ROOT,
                             capture_output=True, text=True, check=True)  # fmt: skip
        report = json.loads(out.stdout)
        assert 0 <= report["false_positive_rate_overall"] <= 1 and report["negative_rows"] > 0
        assert report["recall_overall" if script.endswith("smalltalk.py") else "recall"] > 0


def test_resolution_bench_plays_scripts_through_the_flow_and_prints_one_json_object() -> None:
    out = subprocess.run([sys.executable, "bench/resolution.py", "--limit", "2", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["scripts"] == 2 and len(report["conversations"]) == 2
    assert report["setup"]["passages_indexed"] > report["setup"]["articles"] > 0
    figures = report["after_idle"]
    assert figures["conversations"] == 2 and figures["counted"] + figures["not_counted"] == 2
    assert figures["resolved"] + figures["person"] + figures["disliked"] + figures["open"] + figures["unanswered"] == figures[
        "counted"]
    assert report["resolution_rate"] == figures["rate"]
    for played in report["conversations"]:
        assert played["replies"] and played["after_idle"] in (None, "resolved", "person", "disliked", "unanswered", "open")
