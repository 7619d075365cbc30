"""Knowledge gaps clustered by meaning with the shipped MiniLM embedder: paraphrases of two questions make two
clusters with the right counts, examples, suggested title, best article and first/last seen; the range and the
organisation bound what is read; the read is audited; the clustering itself is deterministic."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest

from appliance.analytics import gaps
from appliance.analytics.gaps import BestArticle, cluster, knowledge_gaps
from appliance.errors import InvalidValue
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from appliance.store import Connection
from tests.conftest import Seed

PARKING = [
    "Is there free parking at the hospital?",
    "Do I have to pay for parking?",
    "Where can I park my car when I visit?",
    "How much does the car park cost?",
]
FLU = [
    "Can I get a flu shot without an appointment?",
    "Do you offer walk-in flu vaccinations?",
    "Where do I get my flu vaccine?",
]


def _gap(conn: Connection, org_id: int, question: str, at: str, reason: str = "low_confidence",
         article: int | None = None, score: float | None = None) -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO knowledge_gaps (org_id, question, query, reason, best_article_id, best_version, best_score,"
        " confidence, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 30, ?)",
        (org_id, question, question.lower(), reason, article, 1 if article else None, score, at),
    )  # fmt: skip


def _article(conn: Connection, org_id: int, article_id: int, title: str) -> None:
    conn.execute("INSERT INTO articles (id, org_id, current_version, status, created_at, updated_at)"
                 " VALUES (?, ?, 1, 'published', '2030-01-01', '2030-01-01')", (article_id, org_id))  # fmt: skip
    conn.execute("INSERT INTO article_versions (article_id, version, org_id, title, content, status, author,"
                 " content_sha256, created_at) VALUES (?, 1, ?, ?, 'text', 'published', 'cli:root', 'x', '2030-01-01')",
                 (article_id, org_id, title))  # fmt: skip


def test_paraphrases_of_two_questions_make_two_clusters(inst: Instance, seed: Seed,
                                                        onnx_embedder: OnnxEmbedder) -> None:  # fmt: skip
    with inst.db.write() as conn:
        _article(conn, seed.north, 7, "Visiting the hospital")
        _article(conn, seed.north, 8, "Vaccinations")
        for n, question in enumerate(PARKING):
            _gap(conn, seed.north, question, f"2030-03-0{n + 2}T10:00:00.000000Z", "no_match" if n == 3 else
                 "low_confidence", 7, [0.2, 0.21, 0.22, 0.23][n])  # fmt: skip
        for n, question in enumerate(FLU):
            _gap(conn, seed.north, question, f"2030-03-0{n + 3}T12:00:00.000000Z", article=8 if n else None,
                 score=0.5 if n == 2 else 0.1)  # fmt: skip
        _gap(conn, seed.north, "Is there free parking at the hospital?", "2030-02-01T10:00:00.000000Z")  # before
        _gap(conn, seed.south, "Do I have to pay for parking?", "2030-03-03T10:00:00.000000Z")  # another org
    ctx = cli_context(seed.north)
    report = knowledge_gaps(inst.db, ctx, seed.north, lambda: onnx_embedder, date(2030, 3, 1), date(2030, 3, 31))
    assert (report.gaps, report.truncated, report.threshold) == (7, False, gaps.SIMILARITY_THRESHOLD)
    parking, flu = report.clusters
    assert (parking.count, flu.count) == (4, 3)
    assert sorted(parking.examples) == sorted(PARKING) and sorted(flu.examples) == sorted(FLU)
    assert parking.suggested_title in PARKING and parking.suggested_title == parking.examples[0]
    assert flu.suggested_title == flu.examples[0]
    assert parking.best_article == BestArticle(7, 1, "Visiting the hospital", 0.23)
    assert flu.best_article == BestArticle(8, 1, "Vaccinations", 0.5)
    assert parking.reasons == {"low_confidence": 3, "no_match": 1}
    assert (parking.first_seen, parking.last_seen) == ("2030-03-02T10:00:00.000000Z", "2030-03-05T10:00:00.000000Z")
    assert (flu.first_seen, flu.last_seen) == ("2030-03-03T12:00:00.000000Z", "2030-03-05T12:00:00.000000Z")

    only = knowledge_gaps(inst.db, ctx, seed.north, lambda: onnx_embedder, date(2030, 3, 1), date(2030, 3, 31), 1)
    assert [c.count for c in only.clusters] == [4]
    with inst.db.read() as conn:
        reads = [json.loads(r[0]) for r in conn.execute(
            "SELECT details FROM audit_events WHERE action = 'analytics.gaps_read' ORDER BY id")]  # fmt: skip
    assert reads == [{"since": "2030-03-01", "until": "2030-03-31", "gaps": 7}] * 2


def test_no_gaps_need_no_embedder_and_bad_ranges_are_refused(inst: Instance, seed: Seed) -> None:
    def unavailable() -> OnnxEmbedder:
        raise AssertionError("the embedder is loaded only when there is something to cluster")

    ctx = cli_context(seed.north)
    report = knowledge_gaps(inst.db, ctx, seed.north, unavailable, date(2030, 3, 1), date(2030, 3, 31))
    assert report.clusters == [] and report.gaps == 0
    with pytest.raises(InvalidValue):
        knowledge_gaps(inst.db, ctx, seed.north, unavailable, date(2030, 3, 2), date(2030, 3, 1))
    with pytest.raises(InvalidValue):
        knowledge_gaps(inst.db, ctx, seed.north, unavailable, date(2030, 3, 1), date(2030, 3, 2), limit=0)


def test_clustering_is_average_linkage_and_ignores_arrival_order() -> None:
    rng = np.random.default_rng(7)
    centres = np.eye(3, 16, dtype=np.float32)
    points = np.vstack([centres[k] + 0.15 * rng.standard_normal(16).astype(np.float32) for k in (0, 1, 0, 2, 1, 0)])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    assert cluster(points) == [[0, 2, 5], [1, 4], [3]]
    order = [5, 3, 1, 0, 4, 2]
    assert sorted(sorted(order[i] for i in c) for c in cluster(points[order])) == [[0, 2, 5], [1, 4], [3]]
    assert cluster(points, threshold=1.01) == [[n] for n in range(6)]
    assert cluster(np.zeros((0, 16), np.float32)) == []
