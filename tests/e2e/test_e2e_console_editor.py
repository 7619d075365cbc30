"""The knowledge editor's console in real Chromium against a real server, the demo help centre and the real
embedder: a knowledge editor signs in, imports a Help Scout export (a dry run first, which writes nothing, then
apply), finds an article, keeps a golden question for it, edits it while the live preview follows the text, sees
the publish blocked because the golden question would fail, and restores the earlier version from the history.
Every page runs under the console's strict CSP: a refused script or style would show as a console error, and none
may occur.

APPLIANCE_SCREENSHOTS=1 saves the editor with its preview to docs/images/console-editor.png (the picture in
docs/console.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from appliance.auth import users
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from appliance.knowledge import articles
from appliance.web.app import create_app
from tests.conftest import PASSWORD
from tests.conversations.live import serve
from tests.e2e.browser import chromium, demo_org
from tests.e2e.test_e2e_console_agent import SLOW_MS, screenshot, watched
from tests.knowledge.importing import FIXTURES

EDITOR = "kim@demo.example"
RESET = "How do I reset my portal password?"
EDITED = "# Cafeteria\n\nThe cafeteria opens at **seven** on weekdays.\n\n- Hot meals until two\n- Coffee all day"


@dataclass
class Site:
    url: str
    org_id: int
    reset_article: int


@pytest.fixture
def site(inst: Instance, onnx_embedder: OnnxEmbedder) -> Iterator[Site]:
    org_id, _ = demo_org(inst, onnx_embedder)
    users.add_user(inst.db, inst.passwords, cli_context(org_id), org_id, EDITOR, PASSWORD, "knowledge_editor",
                   "Kim Editor")  # fmt: skip
    with inst.db.read() as conn:
        reset = conn.execute("SELECT id FROM articles WHERE org_id = ? AND external_id = 'rc-portal-password-reset'",
                             (org_id,)).fetchone()[0]  # fmt: skip
    with serve(create_app(inst)) as address:
        yield Site(f"http://{address}", org_id, int(reset))


def test_an_editor_imports_edits_with_the_preview_is_stopped_by_the_gate_and_restores(site: Site,
                                                                                        inst: Instance) -> None:
    problems: list[str] = []
    before = articles.list_articles(inst.db, site.org_id).total
    with chromium() as browser:
        page = watched(problems, browser.new_context(viewport={"width": 1280, "height": 1000}))
        page.goto(f"{site.url}/console/knowledge")
        expect(page).to_have_url(f"{site.url}/console/login?next=%2Fconsole%2Fknowledge")
        page.get_by_label("Email").fill(EDITOR)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{site.url}/console/knowledge")
        expect(page.get_by_role("navigation", name="Console").get_by_role("link")).to_have_text(["Knowledge"])

        page.get_by_role("navigation", name="Knowledge").get_by_role("link", name="Import").click()
        page.get_by_label("Export file").set_input_files(str(FIXTURES / "helpscout" / "articles.json"))
        page.get_by_role("button", name="Check the import (dry run)").click()
        report = page.locator("#import-report")
        expect(report.get_by_role("heading")).to_have_text("Dry run: what the import would do")
        expect(report.locator("[data-count=created]")).to_have_text("3")
        assert articles.list_articles(inst.db, site.org_id).total == before  # the dry run wrote nothing
        page.get_by_role("button", name="Apply the import").click()
        expect(report.get_by_role("heading")).to_have_text("Imported")
        expect(report.locator("[data-count=created]")).to_have_text("3")
        expect(page.get_by_role("button", name="Apply the import")).to_have_count(0)
        assert articles.list_articles(inst.db, site.org_id).total == before + 3

        page.get_by_role("navigation", name="Knowledge").get_by_role("link", name="Articles").click()
        page.get_by_label("Search titles and text").fill("portal password")
        row = page.locator(f"#article-list [data-article-id='{site.reset_article}']")
        expect(row).to_be_visible()
        expect(page.locator("#article-list [data-article-id]")).to_have_count(1)
        row.get_by_role("link").click()
        expect(page).to_have_url(f"{site.url}/console/knowledge/{site.reset_article}")

        page.get_by_label("A question this article must answer").fill(RESET)
        page.get_by_role("button", name="Add the question").click()
        expect(page.locator("#golden .golden")).to_contain_text(RESET)

        original = articles.get_article(inst.db, site.org_id, site.reset_article).latest.content
        page.get_by_label("Text (markdown)").fill(EDITED)
        expect(page.locator("#preview")).to_contain_text("opens at seven")  # the server's rendering, live
        expect(page.locator("#preview strong")).to_have_text("seven")
        expect(page.locator("#preview li")).to_have_count(2)
        expect(page.locator("#preview")).not_to_contain_text("portal")
        screenshot(page, "console-editor.png")
        page.get_by_label("What changed (for the history)").fill("cafeteria hours")
        page.get_by_role("button", name="Save a new version").click()
        expect(page.get_by_role("status")).to_contain_text("unpublished changes")

        page.get_by_role("button", name="Publish").click()
        gate = page.locator("#gate")  # a 409 page: the article stays as it was
        expect(gate).to_contain_text("was blocked by golden questions", timeout=SLOW_MS)
        expect(gate.locator("tr.golden-failed")).to_contain_text(RESET)
        published = articles.get_article(inst.db, site.org_id, site.reset_article)
        assert published.published_version == 1 and published.current_version == 2

        page.get_by_role("link", name="Version history").click()
        expect(page.locator("table.diff tr.diff-changed").first).to_be_visible()
        page.get_by_role("button", name="Restore version 1").click()
        expect(page.locator("tr[data-version='3']")).to_contain_text("restored version 1")
        page.get_by_role("link", name="Back to the article").click()
        expect(page.get_by_label("Text (markdown)")).to_have_value(original)
    assert articles.get_article(inst.db, site.org_id, site.reset_article).latest.content == original
    # The blocked publish is a 409 page, which Chromium logs as a failed load; nothing else may be logged.
    assert [p for p in problems if not p.endswith("status of 409 (Conflict)")] == []
    assert len(problems) == 1
