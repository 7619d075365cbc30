"""An article's `helpful` count: the customers' thumbs-up on AI answers that cite it, kept by the conversation flow
(a thumbs-up taken back takes one off), on the real demo help centre, embedder and encrypted store."""

from __future__ import annotations

from pathlib import Path

from appliance.conversations import chat
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from appliance.knowledge import articles
from appliance.knowledge.importers import common, markdown
from tests.conftest import Seed, client_for, with_embedder

DEMO = Path(__file__).resolve().parents[2] / "appliance" / "demo_kb" / "articles"


def test_thumbs_up_on_an_answer_count_on_the_article_it_cites(inst: Instance, seed: Seed,
                                                              onnx_embedder: OnnxEmbedder) -> None:  # fmt: skip
    with_embedder(inst, onnx_embedder)
    ctx = cli_context(seed.north)
    common.apply(inst.db, ctx, seed.north, list(markdown.read_folder(DEMO)), dry_run=False)
    inst.knowledge.indexer.process_pending(seed.north)
    reply = chat.ask(inst.db, inst.answers, ctx, seed.north, "How do I reset my portal password?", flow=inst.flow)
    assert reply.answer is not None and reply.answer.outcome == "answered" and reply.message_id is not None
    cited = reply.answer.sources[0].article_id
    before = articles.get_article(inst.db, seed.north, cited)
    editor = client_for(inst, Seed.email("knowledge_editor"))

    def helpful() -> int:
        got = editor.get(f"/api/knowledge/{cited}")
        assert got.status_code == 200, got.text
        return int(got.json()["helpful"])

    assert helpful() == 0
    inst.flow.feedback(ctx, seed.north, reply.message_id, None, "up")
    assert helpful() == 1
    inst.flow.feedback(ctx, seed.north, reply.message_id, None, "up")  # the same thumbs again changes nothing
    assert helpful() == 1
    inst.flow.feedback(ctx, seed.north, reply.message_id, None, "down")  # taken back
    assert helpful() == 0
    inst.flow.feedback(ctx, seed.north, reply.message_id, None, "up")
    assert helpful() == 1
    # counting is not an edit: the article's version, its time and the answer cache's knowledge version stay
    after = articles.get_article(inst.db, seed.north, cited)
    assert (after.updated_at, after.current_version) == (before.updated_at, before.current_version)
    # another organisation's article of the same id is untouched
    assert all(a.helpful == 0 for a in articles.list_articles(inst.db, seed.south).items)
