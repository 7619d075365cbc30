"""An organisation's own recalibration of the shipped confidence: fitted from its golden questions and reviewers'
verdicts, pulled towards no change, never reordering answers, applied only under the calibration it was fitted
against, stored and audited, recorded with every answer, and replayed exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.answering import golden, recalibration
from appliance.auth import orgs
from appliance.cli.main import cli
from appliance.conversations import chat
from appliance.errors import InvalidValue
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from appliance.knowledge.importers import common, markdown
from tests.conftest import Seed, with_embedder

DEMO = Path(__file__).resolve().parents[2] / "appliance" / "demo_kb"


def test_labels_that_agree_with_the_confidence_change_little() -> None:
    labels = [(c, i % 100 < c) for c in (10, 30, 50, 70, 90) for i in range(0, 100, 10)]
    adj = recalibration.fit(labels, "calibration-v2")
    assert abs(adj.a - 1.0) < 0.35 and abs(adj.b) < 0.35
    assert all(abs(adj.apply(c) - c) <= 8 for c in range(5, 96, 5))


def test_an_under_confident_calibration_is_raised_and_order_is_kept() -> None:
    # answers scored 60-70 that were all right, and 20-30 that were all wrong
    labels = [(60 + i % 11, True) for i in range(30)] + [(20 + i % 11, False) for i in range(30)]
    adj = recalibration.fit(labels, "calibration-v2")
    assert adj.apply(65) > 80 and adj.apply(25) < 25
    assert adj.n == 60 and adj.calibration == "calibration-v2"
    applied = [adj.apply(c) for c in range(0, 101)]
    assert applied == sorted(applied)  # a higher shipped confidence never ends up lower


def test_a_few_labels_move_it_less_than_many() -> None:
    few = recalibration.fit([(60, True)] * 20, "v")
    many = recalibration.fit([(60, True)] * 200, "v")
    assert 60 < few.apply(60) < many.apply(60)


def test_too_few_labels_are_refused() -> None:
    with pytest.raises(InvalidValue, match="at least 20"):
        recalibration.fit([(50, True)] * 19, "v")


def test_an_adjustment_applies_only_under_its_calibration() -> None:
    stored = {recalibration.SETTING: {"a": 1.2, "b": 0.5, "n": 30, "calibration": "calibration-v2"}}
    assert recalibration.current(stored, "calibration-v2") is not None
    assert recalibration.current(stored, "calibration-v3") is None
    assert recalibration.current({recalibration.SETTING: {"a": "x"}}, "calibration-v2") is None
    assert recalibration.current({}, "calibration-v2") is None


@pytest.fixture
def demo(inst: Instance, seed: Seed, onnx_embedder: OnnxEmbedder) -> Iterator[Instance]:
    with_embedder(inst, onnx_embedder)
    common.apply(inst.db, cli_context(seed.north), seed.north, list(markdown.read_folder(DEMO / "articles")),
                 dry_run=False)  # fmt: skip
    inst.knowledge.indexer.process_pending(seed.north)
    yield inst


def add_golden_questions(inst: Instance, org_id: int, limit: int) -> int:
    with inst.db.read() as conn:
        ids = {str(r[1]): int(r[0]) for r in conn.execute("SELECT id, external_id FROM articles WHERE org_id = ?",
                                                           (org_id,))}  # fmt: skip
    added = 0
    for line in (DEMO / "questions.jsonl").read_text().splitlines()[:limit]:
        q = json.loads(line)
        expected = ids[q["gold_article_ids"][0]] if q["answerable"] else None
        golden.add_golden(inst.db, cli_context(org_id), org_id, q["question"], expected)
        added += 1
    return added


def test_golden_questions_recalibrate_the_organisation_and_answers_replay(demo: Instance, seed: Seed) -> None:
    assert add_golden_questions(demo, seed.north, 30) == 30
    engine = demo.answers
    version = engine.parts.calibration.version
    labels = recalibration.golden_labels(engine, demo.db, seed.north)
    assert len(labels) == 30 and all(0 <= c <= 100 for c, _ in labels)
    adjustment = recalibration.fit(labels, version)
    recalibration.save(demo.db, cli_context(seed.north), seed.north, adjustment)
    stored = orgs.get_org(demo.db, seed.north).settings[recalibration.SETTING]
    assert stored["n"] == 30 and stored["calibration"] == version
    with demo.db.read() as conn:
        events = [r[0] for r in conn.execute("SELECT action FROM audit_events WHERE target = ?",
                                             (f"org:{seed.north}",))]  # fmt: skip
    assert "answers.recalibrated" in events
    # another organisation is untouched
    assert recalibration.SETTING not in orgs.get_org(demo.db, seed.south).settings

    reply = chat.ask(demo.db, engine, cli_context(seed.north), seed.north, "How do I reset my portal password?")
    answer = reply.answer
    assert answer is not None
    raw = answer.provenance["calibrated_confidence"]
    assert answer.confidence == adjustment.apply(raw)
    assert answer.provenance["adjustment"] == adjustment.public()
    replayed = chat.replay_message(demo.db, engine, seed.north, reply.message_id)
    assert replayed.identical, replayed.differences

    # removed again: the shipped confidence applies, and the cache does not serve the adjusted one
    recalibration.save(demo.db, cli_context(seed.north), seed.north, None)
    again = engine.answer(seed.north, "How do I reset my portal password?")
    assert again.confidence == raw and "adjustment" not in again.provenance


def test_the_command_refuses_too_few_labels_and_stores_nothing(inst: Instance, seed: Seed) -> None:
    data_dir = str(inst.settings.data_dir)
    runner = CliRunner()
    got = runner.invoke(cli, ["--data-dir", data_dir, "answers", "recalibrate", "--org", "north"])
    assert got.exit_code != 0 and "at least 20" in str(got.exception)
    assert recalibration.SETTING not in orgs.get_org(inst.db, seed.north).settings
    cleared = runner.invoke(cli, ["--data-dir", data_dir, "answers", "recalibrate", "--org", "north", "--clear",
                                  "--json"], catch_exceptions=False)  # fmt: skip
    assert cleared.exit_code == 0 and json.loads(cleared.output) == {"cleared": True}
