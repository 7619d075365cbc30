"""A support manager's console in real Chromium against a real server and the real small models: they reassign an
escalated conversation to another agent, open the analytics dashboard, recompute it and read the figures the
domain computes, see every chart drawn (Chart.js from the appliance itself, under the strict CSP), change the range
in place, and open the knowledge gaps, clustered by meaning. No script error and no CSP refusal on any page.

APPLIANCE_SCREENSHOTS=1 saves the dashboard to docs/images/console-dashboard.png (the picture in docs/console.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from appliance.analytics.dashboard import dashboard
from appliance.instance import Instance, cli_context
from tests.analytics.test_analytics_gaps import PARKING, _gap
from tests.e2e.browser import chromium
from tests.e2e.test_e2e_console_agent import SLOW_MS, Site, screenshot, sign_in, site, watched

__all__ = ["site"]  # the fixture, shared with the agent's journey

CHARTS = 5
# Every CSP refusal also fires this event; the listener is installed before any page script runs.
CSP_WATCH = ("window.cspViolations = []; document.addEventListener('securitypolicyviolation',"
             " (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")  # fmt: skip


def _escalated(inst: Instance, org_id: int, visitor: str, text: str) -> int:
    ctx = cli_context(org_id)
    conversation = inst.flow.receive(ctx, org_id, text, sender=f"visitor:{visitor}", visitor_id=visitor,
                                     channel="widget").conversation_id  # fmt: skip
    inst.flow.escalate(ctx, org_id, conversation, "the customer asked for a person", trigger="customer_request",
                       visitor_id=visitor)  # fmt: skip
    return conversation


def _seed_gaps(inst: Instance, org_id: int) -> None:
    now = datetime.now(UTC)
    with inst.db.write() as conn:
        for n, question in enumerate(PARKING):
            _gap(conn, org_id, question, (now - timedelta(minutes=10 - n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def _charts_drawn(page: Page) -> None:
    expect(page.locator("canvas[data-chart][data-drawn='true']")).to_have_count(CHARTS, timeout=SLOW_MS)
    drawn = page.evaluate("() => [...document.querySelectorAll('canvas[data-chart]')]"
                          ".filter((c) => window.Chart.getChart(c) && c.width > 0).length")  # fmt: skip
    assert drawn == CHARTS


def test_a_manager_reassigns_reads_the_dashboard_and_the_knowledge_gaps(site: Site, inst: Instance) -> None:
    first = _escalated(inst, site.org_id, "v1", "I was charged twice for my visit")
    _escalated(inst, site.org_id, "v2", "My appointment letter has the wrong date")
    _seed_gaps(inst, site.org_id)
    problems: list[str] = []
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(CSP_WATCH)
        manager = watched(problems, context)
        sign_in(manager, site, "morgan@demo.example")

        manager.goto(f"{site.url}/console/conversations/{first}")
        manager.get_by_label("Assign to").select_option(str(site.staff["alex@demo.example"]))
        manager.get_by_role("button", name="Assign", exact=True).click()
        expect(manager.locator("#status-line")).to_contain_text("assigned to Alex Agent")

        manager.get_by_role("link", name="Analytics").click()
        expect(manager).to_have_url(f"{site.url}/console/analytics")
        _charts_drawn(manager)
        manager.get_by_role("button", name="Recompute now").click()
        expect(manager.locator("#rolled-up-at")).not_to_have_text("never")
        today = datetime.now(UTC).date()
        d = dashboard(inst.db, site.org_id, today - timedelta(days=29), today)
        assert d.resolution.conversations == 2 and d.escalation.escalated == 2
        expect(manager.locator("[data-figure=conversations]")).to_have_text("2")
        expect(manager.locator("[data-figure=escalation-rate]")).to_have_text("100.0%")
        expect(manager.locator("#table-agents")).to_contain_text("Alex Agent")
        volume = manager.locator("#table-volume tbody tr").last
        expect(volume).to_contain_text(today.isoformat())
        _charts_drawn(manager)
        screenshot(manager, "console-dashboard.png")

        week = (today - timedelta(days=6)).isoformat()
        manager.evaluate("() => { window.stillTheSamePage = true; }")
        manager.get_by_label("From (UTC day)").fill(week)
        manager.get_by_role("button", name="Show figures").click()
        expect(manager).to_have_url(f"{site.url}/console/analytics?since={week}&until={today.isoformat()}&team=")
        expect(manager.locator("#table-volume tbody tr")).to_have_count(7)
        _charts_drawn(manager)
        assert manager.evaluate("() => window.stillTheSamePage") is True  # swapped in place, charts drawn again
        assert manager.evaluate("() => window.cspViolations") == []

        manager.get_by_role("link", name="Knowledge gaps").click()
        gap = manager.locator(".gap").first
        expect(gap).to_contain_text(f"{len(PARKING)} questions", timeout=SLOW_MS)
        assert gap.locator("h3").inner_text() in PARKING  # the most central question, as the suggested title
        for question in PARKING:
            expect(gap.locator(".examples")).to_contain_text(question)
        assert manager.evaluate("() => window.cspViolations") == []
    assert problems == []
