"""The widget in real Chromium on the demo intranet page, served under its strict Content-Security-Policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance
from appliance.redaction import BULLET
from appliance.web.app import create_app
from tests.conversations.live import serve
from tests.e2e.browser import chromium, demo_org


@pytest.fixture
def demo_site(inst: Instance, onnx_embedder: OnnxEmbedder) -> Iterator[str]:
    demo_org(inst, onnx_embedder)
    with serve(create_app(inst)) as address:
        yield f"http://{address}"


def open_widget(page: Page, site: str, problems: list[str]) -> None:
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{site}/demo")
    page.locator("[data-part=launcher]").click()
    expect(page.locator("[data-part=input]")).to_be_focused()


def test_a_demo_question_gets_a_cited_answer_with_its_confidence(demo_site: str) -> None:
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        frames: list[dict[str, Any]] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(json.loads(payload))))
        open_widget(page, demo_site, problems)
        page.locator("[data-part=input]").fill("How do I reset my portal password?")
        page.locator("[data-part=input]").press("Enter")
        answer = page.locator("[data-part=message][data-role=ai]").first
        expect(answer).to_be_visible(timeout=30_000)
        expect(answer.locator("[data-part=confidence]")).to_contain_text("confidence")
        source = answer.locator("[data-part=sources] a").first
        expect(source).to_have_text("Resetting a forgotten password")
        href = source.get_attribute("href", timeout=5000)
        assert href is not None and href.startswith(f"{demo_site}/help/demo/articles/")
        text = answer.locator("[data-part=text]")
        expect(text.locator("strong, li, p").first).to_be_visible()  # the answer's markdown, rendered
        assert "**" not in text.inner_text() and "[1]" in text.inner_text()
        expect(text.locator("sup a", has_text="[1]").first).to_have_attribute("href", href)  # the mark links its source
        expect(page.locator("[data-part=human]")).to_be_visible()  # always there
        streamed = "".join(f["text"] for f in frames if f["type"] == "delta")
        final = next(f["message"] for f in frames if f["type"] == "message" and f["message"]["role"] == "ai")
        assert streamed == final["content"]  # streamed word by word, then replaced by the stored answer
        expect(page.locator("[data-part=message][data-provisional]")).to_have_count(0)
        expect(page.locator("[data-part=message][data-role=ai]")).to_have_count(1)
    assert problems == []  # nothing refused by the page's CSP, no script errors


def test_a_card_number_the_customer_types_is_shown_as_stored_masked(demo_site: str) -> None:
    masked = f"Was my card {BULLET * 4} {BULLET * 4} {BULLET * 4} 1111 charged twice?"
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        open_widget(page, demo_site, problems)
        page.locator("[data-part=input]").fill("Was my card 4111 1111 1111 1111 charged twice?")
        page.locator("[data-part=input]").press("Enter")
        mine = page.locator("[data-part=message][data-role=customer]")
        expect(mine).to_have_attribute("data-pending", "false", timeout=30_000)
        expect(mine.locator("[data-part=text]")).to_have_text(masked)  # the ack's stored text replaces the typed one
        expect(page.locator("[data-part=message][data-role=ai]").first).to_be_visible(timeout=30_000)
        page.reload()
        page.locator("[data-part=launcher]").click()
        shown = page.locator("[data-part=message][data-role=customer] [data-part=text]")
        expect(shown).to_have_text(masked, timeout=10_000)
        assert "4111 1111" not in page.content()
    assert problems == []


def test_a_refusal_offers_a_person_who_takes_over_and_a_reload_keeps_the_conversation(
    demo_site: str, inst: Instance
) -> None:  # fmt: skip
    import httpx

    from appliance.auth import users
    from appliance.instance import cli_context
    from tests.conftest import PASSWORD

    with inst.db.read() as conn:
        org_id = int(conn.execute("SELECT id FROM orgs WHERE slug = 'demo'").fetchone()[0])
    users.add_user(inst.db, inst.passwords, cli_context(org_id), org_id, "sam@demo.example", PASSWORD, "agent",
                   "Sam Agent")  # fmt: skip
    agent = httpx.Client(base_url=demo_site, timeout=30)
    agent.headers["X-CSRF-Token"] = agent.post("/api/auth/login", json={"email": "sam@demo.example",
                                                                         "password": PASSWORD}).json()["csrf_token"]
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        open_widget(page, demo_site, problems)
        page.locator("[data-part=input]").fill("Can I bring my dog to the hospital cafeteria?")
        page.locator("[data-part=send]").click()
        refusal = page.locator("[data-part=message][data-role=ai]").first
        expect(refusal).to_be_visible(timeout=30_000)
        expect(refusal.locator("[data-part=human-offer]")).to_be_visible()  # the refusal offers a person
        queue = agent.get("/api/conversations", params={"status": "escalated"}).json()
        assert len(queue) == 1
        conversation_id = queue[0]["id"]
        assert agent.post(f"/api/conversations/{conversation_id}/takeover").status_code == 200
        expect(page.locator("[data-part=notice]", has_text="Sam Agent")).to_be_visible(timeout=10_000)
        assert agent.post(f"/api/conversations/{conversation_id}/messages",
                          json={"text": "Hello, I am Sam. Guide dogs are **welcome**."}).status_code == 201  # fmt: skip
        reply = page.locator("[data-part=message][data-role=agent]")
        expect(reply).to_contain_text("Guide dogs are welcome", timeout=10_000)
        expect(reply.locator("strong")).to_have_text("welcome")  # an agent's markdown, rendered

        page.reload()  # mid-conversation: the history comes back once, nothing doubled
        page.locator("[data-part=launcher]").click()
        expect(page.locator("[data-part=message][data-role=agent]")).to_have_count(1, timeout=10_000)
        expect(page.locator("[data-part=message][data-role=customer]")).to_have_count(1)
        expect(page.locator("[data-part=message][data-role=ai]")).to_have_count(1)
        stored = page.evaluate("() => JSON.stringify(Object.assign({}, window.localStorage))")
        assert stored == "{}"  # nothing in localStorage
    assert problems == []
