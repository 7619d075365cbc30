"""The index task on the real queue: a change made through the API reaches search once the background consumer has
run; the queue file carries ids only; work left in the outbox (a crash, a restart) is picked up when the consumer
starts; the search route is scoped to the caller's organisation."""

from __future__ import annotations

import time
from pathlib import Path

from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from appliance.knowledge import articles
from appliance.tasks import Tasks
from appliance.web.app import create_app
from tests.conftest import Seed, client_for, login, make_client, with_embedder

WORD = "xylophonist"  # appears only in the article text


def _wait_for(client_get: object, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if client_get():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("the change never reached search")


def _queue_bytes(inst: Instance) -> bytes:
    path = inst.paths.task_queue
    return b"".join(Path(str(path) + s).read_bytes() for s in ("", "-wal") if Path(str(path) + s).exists())


def test_an_api_change_reaches_search_through_the_background_queue(
    inst: Instance, seed: Seed, onnx_embedder: OnnxEmbedder
) -> None:  # fmt: skip
    with_embedder(inst, onnx_embedder)
    tasks = Tasks(inst)
    with make_client(create_app(inst, tasks)) as client:  # the lifespan starts the consumer threads
        client.headers["X-CSRF-Token"] = login(client, Seed.email("knowledge_editor"))
        created = client.post("/api/knowledge", json={"title": "Music therapy", "content": f"Our {WORD} visits on Fridays."})
        assert created.status_code == 201
        aid = created.json()["id"]
        assert client.post(f"/api/knowledge/{aid}/status", json={"status": "published"}).status_code == 200

        def found() -> bool:
            hits = client.get("/api/retrieval/search", params={"q": WORD}).json()["articles"]
            return [h["article_id"] for h in hits] == [aid]

        _wait_for(found)
        hit = client.get("/api/retrieval/search", params={"q": "music on fridays"}).json()["articles"][0]
        assert hit["version"] == 1 and WORD in hit["passages"][0]["text"] and hit["passages"][0]["dense"] > 0

        assert client.post(f"/api/knowledge/{aid}/status", json={"status": "archived"}).status_code == 200
        _wait_for(lambda: client.get("/api/retrieval/search", params={"q": WORD}).json()["articles"] == [])
    queue = _queue_bytes(inst)
    assert queue and WORD.encode() not in queue and b"Music therapy" not in queue


def test_work_left_in_the_outbox_is_indexed_when_the_consumer_starts(
    inst: Instance, seed: Seed, onnx_embedder: OnnxEmbedder
) -> None:  # fmt: skip
    with_embedder(inst, onnx_embedder)
    ctx = cli_context(seed.north)
    article = articles.create_article(inst.db, ctx, seed.north, articles.Draft("Music therapy", f"Our {WORD}."))
    articles.set_status(inst.db, ctx, seed.north, article.id, "published")  # no task was ever enqueued
    assert inst.knowledge.retriever.search(seed.north, WORD).articles == []
    tasks = Tasks(inst)
    tasks.start()
    try:
        _wait_for(lambda: inst.knowledge.retriever.search(seed.north, WORD).articles != [])
    finally:
        tasks.stop()


def test_the_search_route_is_scoped_to_the_callers_organisation(
    inst: Instance, seed: Seed, onnx_embedder: OnnxEmbedder
) -> None:  # fmt: skip
    with_embedder(inst, onnx_embedder)
    for org in (seed.north, seed.south):
        ctx = cli_context(org)
        a = articles.create_article(inst.db, ctx, org, articles.Draft(f"Music therapy {org}", f"Our {WORD}."))
        articles.set_status(inst.db, ctx, org, a.id, "published")
        inst.knowledge.indexer.process_pending(org)
    north = client_for(inst, Seed.email("knowledge_editor"))
    titles = [h["title"] for h in north.get("/api/retrieval/search", params={"q": WORD, "k": 10}).json()["articles"]]
    assert titles == [f"Music therapy {seed.north}"]
    agent = client_for(inst, Seed.email("agent"))
    assert agent.get("/api/retrieval/search", params={"q": WORD}).status_code == 403
    assert north.get("/api/retrieval/search", params={"q": ""}).status_code == 422
