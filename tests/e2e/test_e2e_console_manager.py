"""A support manager's console in real Chromium against a real server and the real small models: they reassign an
escalated conversation to another agent, mark an AI answer incorrect with a reason and then correct (the row
redrawn in place), open the analytics dashboard, recompute it and read the figures the domain computes, see every
chart drawn (Chart.js from the appliance itself, under the strict CSP), change the range in place, and open the
knowledge gaps, clustered by meaning. No script error and no CSP refusal on any page.

APPLIANCE_SCREENSHOTS=1 saves the dashboard to docs/images/console-dashboard.png (the picture in docs/console.md).
"""

from __future__ import annotations

import re
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


def _answered(inst: Instance, org_id: int, visitor: str, text: str) -> int:
    """A question the assistant answers from the demo help centre; the customer resolves and rates it."""
    ctx = cli_context(org_id)
    received, responded = inst.flow.ask(ctx, org_id, text, sender=f"visitor:{visitor}", visitor_id=visitor,
                                        channel="widget")  # fmt: skip
    inst.flow.resolve(ctx, org_id, received.conversation_id, visitor)
    inst.flow.csat(ctx, org_id, received.conversation_id, visitor, 5, "")
    assert responded.message_id is not None
    return responded.message_id


def _review(inst: Instance, message_id: int) -> tuple[str, str | None] | None:
    with inst.db.read() as conn:
        row = conn.execute("SELECT verdict, reason FROM answer_reviews WHERE message_id = ?", (message_id,)).fetchone()
    return None if row is None else (row[0], row[1])


def _mark_answers(manager: Page, inst: Instance, answer: int) -> None:
    """Reviews: an answer marked incorrect with a reason, then correct, each row redrawn in place."""
    manager.get_by_role("link", name="Reviews").click()
    row = manager.locator(f"#answer-{answer}")
    expect(row).to_contain_text("How do I reset my portal password?")
    expect(row).to_contain_text("Not reviewed")
    manager.evaluate("() => { window.stillTheSamePage = true; }")
    row.get_by_label("Why it is incorrect").fill("It should point to the self-service reset page")
    row.get_by_role("button", name=re.compile(r"^Incorrect")).click()
    expect(row).to_contain_text("Marked incorrect")
    assert _review(inst, answer) == ("incorrect", "It should point to the self-service reset page")
    row.get_by_role("button", name=re.compile(r"^Correct")).click()
    expect(row).to_contain_text("Marked correct")
    assert _review(inst, answer) == ("correct", None)
    assert manager.evaluate("() => window.stillTheSamePage") is True
    assert manager.evaluate("() => window.cspViolations") == []


def test_a_manager_reassigns_reads_the_dashboard_and_the_knowledge_gaps(site: Site, inst: Instance) -> None:
    first = _escalated(inst, site.org_id, "v1", "I was charged twice for my visit")
    _escalated(inst, site.org_id, "v2", "My appointment letter has the wrong date")
    answer = _answered(inst, site.org_id, "v3", "How do I reset my portal password?")
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

        _mark_answers(manager, inst, answer)

        manager.get_by_role("link", name="Analytics").click()
        expect(manager).to_have_url(f"{site.url}/console/analytics")
        _charts_drawn(manager)
        manager.get_by_role("button", name="Recompute now").click()
        expect(manager.locator("#rolled-up-at")).not_to_have_text("never")
        today = datetime.now(UTC).date()
        d = dashboard(inst.db, site.org_id, today - timedelta(days=29), today)
        assert (d.resolution.conversations, d.resolution.ai_resolved, d.escalation.escalated) == (3, 1, 2)
        assert (d.csat.count, d.ai_accuracy.reviewed, d.ai_accuracy.correct) == (1, 1, 1)
        expect(manager.locator("[data-figure=conversations]")).to_have_text("3")
        expect(manager.locator("[data-figure=escalation-rate]")).to_have_text("66.7%")
        expect(manager.locator("[data-figure=ai-share]")).to_have_text("100.0%")
        expect(manager.locator("[data-figure=csat-average]")).to_have_text("5.00")
        expect(manager.locator("[data-figure=accuracy]")).to_have_text("100.0%")
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
