"""The admin and compliance pages of the console in real Chromium against a real server: an admin signs in, adds a
person from the Team page and changes the confidence threshold on the Settings page, where the widget's preview
takes the theme's colours as the form changes; a manager writes an escalation rule (a bad regular expression is
refused with its reason), tries it on a sample message in place and moves it; a compliance officer signs in,
verifies the audit chain and downloads a signed export of a range, which verifies offline. Every page runs under
the console's strict CSP: a refused script or style would show as a console error, and none may occur.

APPLIANCE_SCREENSHOTS=1 saves the settings page to docs/images/console-settings.png (the picture in
docs/console.md).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from appliance.audit.export import verify_export
from appliance.auth import orgs, users
from appliance.conversations import widget
from appliance.escalation import rules
from appliance.instance import Instance, cli_context
from appliance.web.app import create_app
from tests.conftest import PASSWORD
from tests.conversations.live import serve
from tests.e2e.browser import chromium

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@dataclass
class Site:
    url: str
    org_id: int


@pytest.fixture
def site(inst: Instance) -> Iterator[Site]:
    org = orgs.create_org(inst.db, cli_context(), "riverside", "Riverside Clinic")
    for email, role, name in (("robin@riverside.example", "admin", "Robin Admin"),
                              ("casey@riverside.example", "compliance_officer", "Casey Compliance"),
                              ("sam@riverside.example", "agent", "Sam Agent"),
                              ("morgan@riverside.example", "support_manager", "Morgan Manager")):  # fmt: skip
        users.add_user(inst.db, inst.passwords, cli_context(org.id), org.id, email, PASSWORD, role, name)
    widget.create_key(inst.db, cli_context(org.id), org.id, {"title": "Riverside help"})
    with serve(create_app(inst)) as address:
        yield Site(f"http://{address}", org.id)


def watched(problems: list[str], context: BrowserContext) -> Page:
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page


def sign_in(page: Page, site: Site, email: str, lands_on: str) -> None:
    page.goto(f"{site.url}/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{site.url}{lands_on}")


def test_an_admin_adds_a_person_and_changes_the_threshold(site: Site, inst: Instance) -> None:
    problems: list[str] = []
    with chromium() as browser:
        page = watched(problems, browser.new_context(viewport={"width": 1280, "height": 900}))
        sign_in(page, site, "robin@riverside.example", "/console/inbox")
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Team").click()
        expect(page).to_have_url(f"{site.url}/console/team")
        people = page.get_by_role("region", name="People")
        people.get_by_label("Email", exact=True).fill("nurse@riverside.example")
        people.get_by_label("Name", exact=True).fill("Night Nurse")
        people.get_by_label("Role", exact=True).select_option("agent")
        people.get_by_label("First password").fill(PASSWORD)
        people.get_by_role("button", name="Add person").click()
        expect(page).to_have_url(f"{site.url}/console/team#users")
        expect(page.get_by_role("cell", name="nurse@riverside.example", exact=True)).to_be_visible()
        assert users.find_member_by_email(inst.db, site.org_id, "nurse@riverside.example").role == "agent"

        page.get_by_role("navigation", name="Console").get_by_role("link", name="Settings").click()
        threshold = page.get_by_label("Confidence threshold (0-100)")
        threshold.fill("80")
        page.get_by_role("button", name="Save settings").click()
        expect(page).to_have_url(f"{site.url}/console/settings")
        expect(threshold).to_have_value("80")
        assert orgs.get_org(inst.db, site.org_id).settings["answer_threshold"] == 80

        header = page.locator(".preview-header").first
        expect(header).to_have_css("background-color", "rgb(31, 95, 168)")  # the widget's default, set by the script
        page.get_by_label("Main colour").first.fill("#7a1f5c")
        expect(header).to_have_css("background-color", "rgb(122, 31, 92)")
        page.get_by_label("Title").first.fill("Ward help")
        expect(header).to_have_text("Ward help")
        expect(page.locator("pre.snippet")).to_contain_text('integrity="sha384-')
        if os.environ.get("APPLIANCE_SCREENSHOTS") == "1":
            IMAGES.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(IMAGES / "console-settings.png"), full_page=True)
    assert problems == []


def test_a_compliance_officer_verifies_and_exports_the_trail(site: Site, inst: Instance, tmp_path: Path) -> None:
    problems: list[str] = []
    with chromium() as browser:
        page = watched(problems, browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True))
        sign_in(page, site, "casey@riverside.example", "/console/")
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit").click()
        expect(page).to_have_url(f"{site.url}/console/audit")
        page.get_by_role("button", name="Verify the chain").click()
        expect(page.locator("#verify-result")).to_contain_text("Chain verified: OK.")

        page.get_by_label("Event type").fill("user.created")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("cell", name="user.created", exact=True).first).to_be_visible()

        page.locator("#export-since").fill("2000-01-01T00:00")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download signed export").click()
        saved = tmp_path / "export.zip"
        download.value.save_as(saved)
        assert download.value.suggested_filename.startswith("audit-export-2000-01-01-")
    with zipfile.ZipFile(saved) as zf:
        zf.extractall(tmp_path / "export")
    check = verify_export(tmp_path / "export", inst.signing_key().public_key())
    assert check.ok and check.events > 0
    assert problems == []


def test_a_manager_writes_tries_and_orders_escalation_rules(site: Site, inst: Instance) -> None:
    problems: list[str] = []
    with chromium() as browser:
        page = watched(problems, browser.new_context(viewport={"width": 1280, "height": 900}))
        sign_in(page, site, "morgan@riverside.example", "/console/inbox")
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Rules").click()
        expect(page).to_have_url(f"{site.url}/console/rules")
        for name, pattern in (("Complaints", "complain"), ("Refunds", "refund(")):
            page.get_by_label("Name").fill(name)
            page.get_by_label("Trigger", exact=True).select_option("keyword")
            page.get_by_label("Trigger value").fill(pattern)
            page.get_by_role("button", name="Create rule").click()
        expect(page.get_by_role("alert")).to_contain_text("Not saved: trigger_value")
        assert [r.name for r in rules.list_rules(inst.db, site.org_id)] == ["Complaints"]
        page.get_by_label("Trigger value").fill("refund|charged twice")
        page.get_by_role("button", name="Create rule").click()
        expect(page).to_have_url(f"{site.url}/console/rules")

        page.get_by_label("Trigger value").fill("refund")
        page.get_by_label("Message").fill("I was charged twice, I want a refund")
        page.get_by_role("button", name="Try the rule").click()
        expect(page.locator("#rule-trial")).to_contain_text("The rule fires.")
        expect(page).to_have_url(f"{site.url}/console/rules")  # swapped in place, not a new page
        assert len(rules.list_rules(inst.db, site.org_id)) == 2

        page.get_by_role("button", name="Up Refunds").click()
        expect(page.get_by_role("row").nth(1)).to_contain_text("Refunds")
        assert [r.name for r in rules.list_rules(inst.db, site.org_id)] == ["Refunds", "Complaints"]
    refused = "error: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    assert problems == [refused]  # the refused rule's page, and nothing else
