"""The widget in real Chromium on the demo intranet page, served under its strict Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance
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
        open_widget(page, demo_site, problems)
        page.locator("[data-part=input]").fill("How do I reset my portal password?")
        page.locator("[data-part=input]").press("Enter")
        answer = page.locator("[data-part=message][data-role=ai]").first
        expect(answer).to_be_visible(timeout=30_000)
        expect(answer.locator("[data-part=confidence]")).to_contain_text("confidence")
        source = answer.locator("[data-part=sources] a").first
        expect(source).to_have_text("Resetting a forgotten password")
        assert source.get_attribute("href", timeout=5000).startswith(f"{demo_site}/help/demo/articles/")  # type: ignore[union-attr]
        expect(page.locator("[data-part=human]")).to_be_visible()  # always there
    assert problems == []  # nothing refused by the page's CSP, no script errors
