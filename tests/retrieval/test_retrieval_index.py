"""Indexing and hybrid search with the real embedder and the real encrypted database: only published versions are
found, every change reaches the index, organisations never see each other's passages, the dense index file is
sealed and bound to its generation, and a crash part-way through indexing leaves the previous index usable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context, open_instance
from appliance.knowledge import articles
from appliance.retrieval.search import FusionConfig, Retriever
from tests.conftest import Seed, with_embedder

PASSWORD_RESET = """To reset your portal password:

1. Open the sign-in page and choose **Forgot password**.
2. Enter the email address you registered with.
3. Follow the link in the email within 30 minutes.

## If the email does not arrive

Check your spam folder, then call the front desk on extension 4410.
"""
TELEHEALTH = """Video visits run in your browser. You need a camera, a microphone and a stable connection.

## Joining the visit

Open Appointments, choose the visit and press **Join video visit** up to ten minutes before it starts.
"""
BILLING = """You can spread a bill over up to twelve monthly instalments with no interest. Ask for a payment plan
from Billing in the portal or at the cashier's desk."""


@pytest.fixture
def kb(inst: Instance, seed: Seed, onnx_embedder: OnnxEmbedder) -> Instance:
    return with_embedder(inst, onnx_embedder)


def add(inst: Instance, org_id: int, title: str, content: str, publish: bool = True) -> int:
    ctx = cli_context(org_id)
    article = articles.create_article(inst.db, ctx, org_id, articles.Draft(title, content, "Help"))
    if publish:
        articles.set_status(inst.db, ctx, org_id, article.id, "published")
    return article.id


def top(inst: Instance, org_id: int, query: str, k: int = 3) -> list[str]:
    return [hit.title for hit in inst.knowledge.retriever.search(org_id, query, k).articles]


def sync(inst: Instance, org_id: int) -> None:
    inst.knowledge.indexer.process_pending(org_id)


def test_published_articles_are_found_with_passages_offsets_and_both_scores(kb: Instance, seed: Seed) -> None:
    pid = add(kb, seed.north, "Resetting your password", PASSWORD_RESET)
    add(kb, seed.north, "Telehealth video visits", TELEHEALTH)
    add(kb, seed.north, "Payment plans", BILLING)
    run = kb.knowledge.indexer.process_pending(seed.north)
    assert run.changed == 3 and run.chunks_added >= 4
    assert run.embedded == run.chunks_added + 3  # every passage and every title
    result = kb.knowledge.retriever.search(seed.north, "I forgot my password and the reset email never came", 3)
    assert result.dense_used
    best = result.articles[0]
    assert best.article_id == pid and best.version == 1 and best.title == "Resetting your password"
    assert {p.heading_path for p in best.passages} == {(), ("If the email does not arrive",)}
    for passage in best.passages:
        assert PASSWORD_RESET[passage.start : passage.end] == passage.text
        assert passage.lexical > 0 and 0 < passage.dense <= 1
    # The dense leg alone finds a paraphrase that shares no content word with the article.
    assert top(kb, seed.north, "webcam appointment from home", 1) == ["Telehealth video visits"]
    assert top(kb, seed.north, "spread the cost monthly", 1) == ["Payment plans"]


def test_drafts_pending_edits_and_archived_articles_are_never_found(kb: Instance, seed: Seed) -> None:
    ctx = cli_context(seed.north)
    add(kb, seed.north, "Secret draft about parking permits", "Parking permits cost nothing for blue badge holders.",
        publish=False)  # fmt: skip
    aid = add(kb, seed.north, "Payment plans", BILLING)
    sync(kb, seed.north)
    assert "Secret draft about parking permits" not in top(kb, seed.north, "parking permit blue badge")
    assert all("parking" not in p.text.lower() for p in kb.knowledge.retriever.search(seed.north, "parking", 5).passages)

    # An edit of a published article stays pending: search keeps serving the published text.
    articles.update_article(kb.db, ctx, seed.north, aid, articles.Draft("Payment plans", "Instalments: ask a zebra."))
    sync(kb, seed.north)
    hit = kb.knowledge.retriever.search(seed.north, "instalments", 1).articles[0]
    assert hit.version == 1 and "twelve monthly" in hit.passages[0].text
    articles.set_status(kb.db, ctx, seed.north, aid, "published")
    sync(kb, seed.north)
    hit = kb.knowledge.retriever.search(seed.north, "instalments zebra", 1).articles[0]
    assert hit.version == 2 and "zebra" in hit.passages[0].text

    articles.restore_version(kb.db, ctx, seed.north, aid, 1)
    articles.set_status(kb.db, ctx, seed.north, aid, "published")
    sync(kb, seed.north)
    hit = kb.knowledge.retriever.search(seed.north, "instalments", 1).articles[0]
    assert hit.version == 3 and "twelve monthly" in hit.passages[0].text

    articles.set_status(kb.db, ctx, seed.north, aid, "archived")
    sync(kb, seed.north)
    assert kb.knowledge.retriever.search(seed.north, "instalments payment plan", 5).articles == []
    with kb.db.read() as conn:
        assert conn.execute("SELECT count(*) FROM chunks WHERE article_id = ?", (aid,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM index_outbox").fetchone()[0] == 0


def test_search_never_crosses_organisations(kb: Instance, seed: Seed) -> None:
    add(kb, seed.south, "Card blocking", "Block a lost card at once from Cards > Block card, or call 555-0100.")
    add(kb, seed.north, "Payment plans", BILLING)
    sync(kb, seed.north)
    sync(kb, seed.south)
    for query in ("block my lost card", "card", "Cards Block card 555-0100"):
        north = kb.knowledge.retriever.search(seed.north, query, 5)
        assert all(hit.title == "Payment plans" for hit in north.articles), query
    assert top(kb, seed.south, "block my lost card", 1) == ["Card blocking"]
    assert top(kb, seed.south, "instalments twelve monthly payment plan", 5) == ["Card blocking"]


def test_the_dense_index_is_sealed_and_bound_to_its_generation(kb: Instance, seed: Seed) -> None:
    add(kb, seed.north, "Telehealth video visits", TELEHEALTH)
    sync(kb, seed.north)
    path = kb.knowledge.dense.path(seed.north)
    blob = path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"camera" not in blob and b"Telehealth" not in blob
    with kb.db.read() as conn:
        vector = conn.execute("SELECT embedding FROM chunks LIMIT 1").fetchone()[0]
    assert vector[:16] not in blob  # no raw float32 vector either

    # Another generation's file (or a damaged one) is not used: the index is rebuilt from the database.
    add(kb, seed.north, "Payment plans", BILLING)
    sync(kb, seed.north)
    path.write_bytes(blob)  # the older generation's file
    fresh = with_embedder(open_instance(kb.settings), kb.knowledge.embedder)  # type: ignore[arg-type]
    try:
        assert top(fresh, seed.north, "spread the cost monthly over a year", 1) == ["Payment plans"]
        assert path.read_bytes() != blob  # written anew for the current generation
        path.write_bytes(b"APLENC1\0" + b"\0" * 64)
        fresh.knowledge.dense.forget(seed.north)
        assert top(fresh, seed.north, "webcam appointment from home", 1) == ["Telehealth video visits"]
    finally:
        fresh.close()


def test_a_model_that_cannot_load_leaves_lexical_search_working(inst: Instance, seed: Seed) -> None:
    # No model is installed in this data dir: indexing and search fall back to the lexical leg.
    add(inst, seed.north, "Payment plans", BILLING)
    run = inst.knowledge.indexer.process_pending(seed.north)
    assert run.changed == 1 and run.embedded == 0
    assert inst.knowledge.embedder_error is not None and "all-minilm-l6-v2" in inst.knowledge.embedder_error
    result = inst.knowledge.retriever.search(seed.north, "monthly instalments", 3)
    assert not result.dense_used and [a.title for a in result.articles] == ["Payment plans"]


def test_lexical_only_and_dense_heavy_fusion_both_rank(kb: Instance, seed: Seed) -> None:
    add(kb, seed.north, "Resetting your password", PASSWORD_RESET)
    add(kb, seed.north, "Payment plans", BILLING)
    sync(kb, seed.north)
    for weight in (1.0, 0.0):
        retriever = Retriever(kb.db, kb.knowledge.embedder, kb.knowledge.dense, FusionConfig(lexical_weight=weight))
        assert [a.title for a in retriever.search(seed.north, "reset password", 1).articles] == ["Resetting your password"]
    with pytest.raises(ValueError):
        FusionConfig(lexical_weight=1.5).validated()


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from appliance.config import Settings
    from appliance.inference.embedders import OnnxEmbedder
    from appliance.instance import open_instance
    from appliance.retrieval import index, lexical
    sys.path.insert(0, {root!r})
    from tests.conftest import with_embedder

    point = sys.argv[1]
    inst = with_embedder(open_instance(Settings(data_dir=Path({data!r}))), OnnxEmbedder(Path({model!r}), threads=2))
    if point == "during-write":
        real, calls = lexical.put_chunk, []
        def dying(*args, **kwargs):
            calls.append(1)
            real(*args, **kwargs)
            if len(calls) == 2:
                os._exit(9)  # killed in the middle of the write transaction
        lexical.put_chunk = dying
    else:
        def dying_persist(org_id):
            os._exit(9)  # killed after the commit, before the dense index file is written
        inst.knowledge.dense.persist = dying_persist
    inst.knowledge.indexer.process_pending({org})
    """
)


@pytest.mark.parametrize("point", ["during-write", "before-persist"])
def test_a_crash_during_indexing_leaves_a_usable_index(
    kb: Instance, seed: Seed, onnx_dir: Path, point: str
) -> None:  # fmt: skip
    ctx = cli_context(seed.north)
    aid = add(kb, seed.north, "Payment plans", BILLING)
    sync(kb, seed.north)
    articles.update_article(kb.db, ctx, seed.north, aid, articles.Draft("Payment plans", PASSWORD_RESET))
    articles.set_status(kb.db, ctx, seed.north, aid, "published")
    script = CRASH_SCRIPT.format(
        root=str(Path(__file__).resolve().parents[2]), data=str(kb.settings.data_dir), model=str(onnx_dir),
        org=seed.north,
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script, point], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr

    fresh = with_embedder(open_instance(kb.settings), kb.knowledge.embedder)  # type: ignore[arg-type]
    try:
        assert fresh.db.integrity_check() == ["ok"]
        hit = fresh.knowledge.retriever.search(seed.north, "payment plan instalments password", 1).articles[0]
        with fresh.db.read() as conn:
            pending = conn.execute("SELECT count(*) FROM index_outbox").fetchone()[0]
        if point == "during-write":
            assert hit.version == 1 and "instalments" in hit.passages[0].text  # the previous index, whole
            assert pending == 2  # both changes (the edit and its publication) are still queued
        else:
            assert hit.version == 2 and "Forgot password" in hit.passages[0].text  # committed; dense rebuilt from DB
            assert pending == 0
        assert hit.passages[0].dense > 0
        fresh.knowledge.indexer.process_pending(seed.north)
        hit = fresh.knowledge.retriever.search(seed.north, "forgot password email", 1).articles[0]
        assert hit.version == 2 and hit.passages[0].dense > 0
    finally:
        fresh.close()


def test_reindex_rebuilds_everything_from_the_database(kb: Instance, seed: Seed) -> None:
    add(kb, seed.north, "Resetting your password", PASSWORD_RESET)
    add(kb, seed.north, "Payment plans", BILLING)
    sync(kb, seed.north)
    with kb.db.write() as conn:  # damage: a lost FTS row and a lost embedding
        conn.execute(f"DELETE FROM fts_chunks_{seed.north}")
        conn.execute(f"DELETE FROM fts_articles_{seed.north}")
        conn.execute("UPDATE chunks SET embedding = NULL")
    kb.knowledge.dense.path(seed.north).unlink()
    run = kb.knowledge.indexer.reindex(seed.north)
    assert run.articles == 2 and run.embedded == run.chunks_added  # the titles' embeddings were intact
    assert top(kb, seed.north, "reset password", 1) == ["Resetting your password"]
    assert kb.knowledge.dense.path(seed.north).exists()
    with kb.db.read() as conn:
        rows = conn.execute("SELECT heading_path FROM chunks ORDER BY id").fetchall()
    assert ["If the email does not arrive"] in [json.loads(r[0]) for r in rows]


def test_query_syntax_in_user_text_is_literal(kb: Instance, seed: Seed) -> None:
    add(kb, seed.north, "Payment plans", BILLING)
    sync(kb, seed.north)
    for query in ('"', "NEAR(", "a OR b AND", "*", "instalments)", "col:umn", "'; DROP TABLE chunks; --", "   "):
        kb.knowledge.retriever.search(seed.north, query, 3)  # no error
    assert top(kb, seed.north, 'instalments" OR "x', 1) == ["Payment plans"]
