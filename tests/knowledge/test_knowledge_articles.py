"""Articles through the API: versions, diff and restore, the draft-never-served rule, sanitised rendering, optimistic
locking and organisation isolation."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.instance import Instance
from appliance.web.app import create_app
from tests.conftest import Seed, client_for, make_client

STEPS = "To reset your PIN:\n\n1. Open the app\n2. Choose Cards\n3. Tap Reset PIN\n"


def _create(
    client: Any, title: str = "Reset your card PIN", content: str = STEPS, tags: tuple[str, ...] = ("PIN", "cards")
) -> dict[str, Any]:
    body = {"title": title, "content": content, "category": "Cards", "tags": list(tags)}
    response = client.post("/api/knowledge", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_versions_diff_and_restore(inst: Instance, seed: Seed) -> None:
    editor = client_for(inst, Seed.email("knowledge_editor"))
    article = _create(editor)
    assert article["current_version"] == 1 and article["status"] == "draft"
    assert article["latest"]["tags"] == ["pin", "cards"]
    second = editor.put(f"/api/knowledge/{article['id']}", json={
        "title": "Reset your card PIN", "content": STEPS.replace("Tap Reset PIN", "Tap Security, then Reset PIN"),
        "category": "Cards", "expected_version": 1,
    }).json()  # fmt: skip
    assert second["current_version"] == 2
    versions = editor.get(f"/api/knowledge/{article['id']}/versions").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["content"] == STEPS  # version 1 is untouched

    diff = editor.get(f"/api/knowledge/{article['id']}/diff", params={"old": 1, "new": 2}).json()
    changed = [r for r in diff["rows"] if r["kind"] != "equal"]
    assert changed == [{"kind": "changed", "left": "3. Tap Reset PIN", "right": "3. Tap Security, then Reset PIN"}]

    restored = editor.post(f"/api/knowledge/{article['id']}/versions/1/restore").json()
    assert restored["current_version"] == 3 and restored["latest"]["content"] == STEPS
    assert restored["latest"]["note"] == "restored version 1"

    stale = editor.put(f"/api/knowledge/{article['id']}", json={"title": "x", "content": "y", "expected_version": 2})
    assert stale.status_code == 409
    with inst.db.read() as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_events WHERE action LIKE 'article.%'")]
    assert actions == ["article.saved"] * 3
    with pytest.raises(Exception, match="immutable"):
        with inst.db.write() as conn:
            conn.execute("UPDATE article_versions SET content = 'tampered'")


def test_only_the_published_version_is_ever_served(inst: Instance, seed: Seed) -> None:
    editor = client_for(inst, Seed.email("knowledge_editor"))
    public = make_client(create_app(inst))
    article = _create(editor)
    url = f"/help/north/articles/{article['id']}"
    assert public.get(url).status_code == 404  # a draft is never served

    published = editor.post(f"/api/knowledge/{article['id']}/status", json={"status": "published"}).json()
    assert published["published_version"] == 1
    page = public.get(url)
    assert page.status_code == 200 and "Tap Reset PIN" in page.text and "<ol>" in page.text

    editor.put(f"/api/knowledge/{article['id']}", json={"title": "Reset your card PIN", "content": "DRAFT-ONLY text"})
    state = editor.get(f"/api/knowledge/{article['id']}").json()
    assert state["has_unpublished_changes"] is True
    assert "DRAFT-ONLY" not in public.get(url).text  # the edit waits for publishing
    editor.post(f"/api/knowledge/{article['id']}/status", json={"status": "published"})
    assert "DRAFT-ONLY" in public.get(url).text

    with inst.db.read() as conn:  # each page served counted once; the draft's 404 not at all
        assert conn.execute("SELECT views FROM articles WHERE id = ?", (article["id"],)).fetchone()[0] == 3
    editor.post(f"/api/knowledge/{article['id']}/status", json={"status": "archived"})
    assert public.get(url).status_code == 404  # archived: withdrawn entirely
    assert public.get(f"/help/south/articles/{article['id']}").status_code == 404  # another org's URL
    bad = editor.post(f"/api/knowledge/{article['id']}/status", json={"status": "deleted"})
    assert bad.status_code == 422


def test_imported_script_never_runs(inst: Instance, seed: Seed) -> None:
    editor = client_for(inst, Seed.email("knowledge_editor"))
    hostile = (
        "Hello <script>alert(1)</script> <img src=x onerror=alert(2)> "
        "[click](javascript:alert(3)) <a href=\"https://bank.example/help\">help</a>"
    )
    article = _create(editor, content=hostile)
    rendered = editor.get(f"/api/knowledge/{article['id']}").json()["html"]
    assert "<script" not in rendered and "onerror" not in rendered and "href=\"javascript" not in rendered
    assert 'href="https://bank.example/help"' in rendered
    editor.post(f"/api/knowledge/{article['id']}/status", json={"status": "published"})
    page = make_client(create_app(inst)).get(f"/help/north/articles/{article['id']}")
    assert "<script" not in page.text and "default-src 'none'" in page.headers["content-security-policy"]


def test_list_filters_and_isolation(inst: Instance, seed: Seed) -> None:
    north = client_for(inst, Seed.email("knowledge_editor"))
    south = client_for(inst, Seed.email("knowledge_editor", "south"))
    pin = _create(north)
    _create(north, "Opening hours", "We open at 9.", tags=("branches",))
    south_article = _create(south, "South only", "Internal south text 50% off_peak")
    north.post(f"/api/knowledge/{pin['id']}/status", json={"status": "published"})

    assert north.get("/api/knowledge").json()["total"] == 2
    assert [a["id"] for a in north.get("/api/knowledge", params={"status": "published"}).json()["items"]] == [pin["id"]]
    assert north.get("/api/knowledge", params={"tag": "PIN"}).json()["total"] == 1
    assert north.get("/api/knowledge", params={"q": "open at"}).json()["total"] == 1
    # Most recently changed first: publishing touched the PIN article last.
    assert north.get("/api/knowledge", params={"per_page": 1, "page": 1}).json()["items"][0]["id"] == pin["id"]
    assert north.get("/api/knowledge", params={"per_page": 1, "page": 2}).json()["items"][0]["latest"]["title"] == "Opening hours"
    assert south.get("/api/knowledge", params={"q": "50%"}).json()["total"] == 1  # LIKE wildcards are literal
    assert south.get("/api/knowledge", params={"q": "%"}).json()["total"] == 1
    # The other organisation's article does not exist for north.
    assert north.get(f"/api/knowledge/{south_article['id']}").status_code == 404
    assert north.put(f"/api/knowledge/{south_article['id']}", json={"title": "x", "content": "y"}).status_code == 404
    assert north.get(f"/api/knowledge/{south_article['id']}/versions").status_code == 404
    assert north.post(f"/api/knowledge/{south_article['id']}/versions/1/restore").status_code == 404
    assert south.get(f"/api/knowledge/{south_article['id']}").json()["current_version"] == 1
    assert north.post("/api/knowledge", json={"title": " ", "content": "x"}).status_code == 422
