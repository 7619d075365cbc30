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


def test_small_talk_a_refusal_with_suggestions_an_answer_and_an_emergency_each_clear_typing(demo_site: str) -> None:
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        open_widget(page, demo_site, problems)
        typing = page.locator("[data-part=typing]")
        replies = page.locator("[data-part=message][data-role=ai]")

        def say(text: str, count: int) -> Any:
            page.locator("[data-part=input]").fill(text)
            page.locator("[data-part=input]").press("Enter")
            expect(replies).to_have_count(count, timeout=30_000)
            expect(typing).to_be_hidden(timeout=5_000)  # "Typing…" never outlives the reply
            return replies.nth(count - 1)

        hello = say("hi", 1)  # small talk: a greeting, no hand-off, nothing to rate or cite
        expect(hello.locator("[data-part=text]")).to_contain_text("Hello!")
        for part in ("human-offer", "sources", "confidence", "thumbs-up"):
            expect(hello.locator(f"[data-part={part}]")).to_have_count(0)
        expect(page.locator("[data-part=status]")).to_have_text("")  # not waiting for anyone

        refusal = say("How do I apply for a nursing job at Riverside Clinic?", 2)
        expect(refusal.locator("[data-part=text]")).to_contain_text("These articles may help")
        links = refusal.locator("[data-part=suggestions] a")
        expect(links.first).to_be_visible()
        assert 1 <= links.count() <= 3
        href = links.first.get_attribute("href")
        assert href is not None and href.startswith(f"{demo_site}/help/demo/articles/")
        expect(refusal.locator("[data-part=human-offer]")).to_be_visible()  # a person stays one click away
        expect(page.locator("[data-part=human]")).to_be_visible()
        expect(page.locator("[data-part=log]")).not_to_contain_text("join")  # nobody said a person is coming
        expect(page.locator("[data-part=status]")).to_have_text("")

        answer = say("How do I reset my portal password?", 3)  # the next question is answered
        expect(answer.locator("[data-part=confidence]")).to_contain_text("confidence")
        expect(answer.locator("[data-part=sources] a").first).to_have_text("Resetting a forgotten password")

        urgent = say("I'm having chest pain right now", 4)
        expect(urgent.locator("[data-part=text]")).to_contain_text("call your local emergency number now")
        expect(urgent.locator("[data-part=text]")).to_contain_text("Call 911")
        source = urgent.locator("[data-part=sources] a").first
        expect(source).to_have_text("Emergencies and urgent problems")
        assert (source.get_attribute("href") or "").startswith(f"{demo_site}/help/demo/articles/")
        # Handed to a person as urgent; nobody is online, and the customer is told so, not "shortly".
        expect(page.locator("[data-part=notice]", has_text="Nobody from our team is online")).to_be_visible(
            timeout=10_000)  # fmt: skip
        expect(page.locator("[data-part=log]")).not_to_contain_text("shortly")
        expect(typing).to_be_hidden()
    assert problems == []


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
        expect(page.locator("[data-part=typing]")).to_be_hidden(timeout=5_000)
        assert agent.get("/api/conversations", params={"status": "escalated"}).json() == []  # a refusal alone: no
        refusal.locator("[data-part=human-offer]").click()  # the refusal offers a person
        expect(page.locator("[data-part=notice]", has_text="Nobody from our team is online")).to_be_visible(
            timeout=10_000)  # Sam is not online: the customer is told so and may leave a message  # fmt: skip
        expect(page.locator("[data-part=status]")).to_have_text("Waiting for a person\u2026")
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
        expect(page.locator("[data-part=notice]", has_text="Nobody from our team is online")).to_have_count(1)
        stored = page.evaluate("() => JSON.stringify(Object.assign({}, window.localStorage))")
        assert stored == "{}"  # nothing in localStorage
    assert problems == []
