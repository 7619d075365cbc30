"""Accessibility of the widget in real Chromium on the demo intranet page.

axe-core (widget/node_modules/axe-core, a pinned devDependency that `npm --prefix widget ci` installs) checks the
page, the widget's open shadow root included, in each state a visitor sees: launcher closed, panel open with its
greeting, a cited answer (confidence, sources, thumbs) and a refusal offering a person. No violation may be serious
or critical. The launcher and panel must also work from the keyboard alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance
from appliance.web.app import create_app
from tests.conversations.live import serve
from tests.e2e.browser import chromium, demo_org

AXE = Path(__file__).resolve().parents[2] / "widget" / "node_modules" / "axe-core" / "axe.min.js"
HOST = "[data-appliance-widget]"
HOST_ATTRIBUTE = "data-appliance-widget"
BLOCKING = ("serious", "critical")
WAIT_MS = 30_000

# Violations in full (every node); passes and incomplete results name one node each, enough to see what was checked.
_RUN_AXE = """async (context) => {
  const r = await axe.run(context || document, {resultTypes: ["violations"]});
  const checked = (items) => items.map((i) => ({id: i.id, targets: i.nodes.map((n) => n.target)}));
  const nodes = (v) => v.nodes.map((n) => ({target: n.target, summary: n.failureSummary}));
  return {violations: r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, nodes: nodes(v)})),
          incomplete: r.incomplete.map((i) => i.id),
          checked: checked(r.passes).concat(checked(r.incomplete), checked(r.violations))};
}"""


@pytest.fixture
def demo_site(inst: Instance, onnx_embedder: OnnxEmbedder) -> Iterator[str]:
    demo_org(inst, onnx_embedder)
    with serve(create_app(inst)) as address:
        yield f"http://{address}"


@pytest.fixture
def page(demo_site: str) -> Iterator[Page]:
    assert AXE.is_file(), "axe-core is a devDependency of the widget: run `npm --prefix widget ci`"
    with chromium() as browser:
        # bypass_csp: the demo page's strict CSP (no inline script) would refuse the injected axe-core script. The
        # widget itself is tested under that CSP in test_e2e_widget.py.
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(f"{demo_site}/demo")
        expect(page.locator("[data-part=launcher]")).to_be_visible(timeout=WAIT_MS)
        page.add_script_tag(path=str(AXE))
        yield page
        context.close()


def run_axe(page: Page, context: str | None = None) -> dict[str, Any]:
    return page.evaluate(_RUN_AXE, context)


def in_widget(target: list[Any]) -> bool:
    """An axe target names an element inside a shadow root by a list: the host's selector, then the element's."""
    return any(isinstance(part, list) and HOST_ATTRIBUTE in part[0] for part in target)


def widget_rules(results: dict[str, Any]) -> set[str]:
    return {rule["id"] for rule in results["checked"] if any(in_widget(t) for t in rule["targets"])}


def report(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=2)


def assert_accessible(page: Page, state: str) -> None:
    """No serious or critical violation on the page, and axe really checked the widget's shadow root: the page's
    results name nodes inside it, and a run on the widget's host element alone checks its names and contrast."""
    whole = run_axe(page)
    print(f"\n{state}: axe violations (all impacts): {report(whole['violations'])}")
    print(f"{state}: axe incomplete (to review by hand): {whole['incomplete']}")
    blocking = [v for v in whole["violations"] if v["impact"] in BLOCKING]
    assert blocking == [], f"{state}: serious or critical axe violations:\n{report(whole['violations'])}"
    assert widget_rules(whole), f"{state}: axe did not go into the widget's shadow root: {whole}"
    widget = run_axe(page, HOST)
    assert {"button-name", "color-contrast"} <= widget_rules(widget), f"{state}: axe skipped the widget: {widget}"


def assert_axe_reports_a_violation_inside_the_widget(page: Page) -> None:
    """A button without a name planted in the shadow root is reported (critical), with its shadow path."""
    plant = "(host) => host.shadowRoot.querySelector('.w').append(document.createElement('button'))"
    page.locator(HOST).evaluate(plant)
    found = [v for v in run_axe(page)["violations"] if v["id"] == "button-name"]
    assert found and found[0]["impact"] == "critical", found
    assert all(in_widget(node["target"]) for node in found[0]["nodes"]), found


def open_panel(page: Page) -> None:
    page.locator("[data-part=launcher]").click()
    expect(page.locator("[data-part=input]")).to_be_focused(timeout=WAIT_MS)


def ask(page: Page, question: str) -> Locator:
    page.locator("[data-part=input]").fill(question)
    page.locator("[data-part=input]").press("Enter")
    reply = page.locator("[data-part=message][data-role=ai]").first
    expect(reply).to_be_visible(timeout=WAIT_MS)
    return reply


def test_the_closed_launcher_and_the_open_panel_have_no_serious_violations(page: Page) -> None:
    expect(page.locator("[data-part=panel]")).to_be_hidden()
    assert_accessible(page, "launcher closed")
    open_panel(page)
    expect(page.locator("[data-part=greeting]")).to_have_text("Hello! How can we help?", timeout=WAIT_MS)
    assert_accessible(page, "panel open with its greeting")
    assert_axe_reports_a_violation_inside_the_widget(page)


def test_a_cited_answer_has_no_serious_violations(page: Page) -> None:
    open_panel(page)
    answer = ask(page, "How do I reset my portal password?")
    expect(answer.locator("[data-part=confidence]")).to_contain_text("confidence", timeout=WAIT_MS)
    expect(answer.locator("[data-part=sources] a").first).to_be_visible()
    expect(answer.locator("[data-part=thumbs-up]")).to_be_visible()
    expect(answer.locator("[data-part=thumbs-down]")).to_be_visible()
    expect(page.locator("[data-part=typing]")).to_be_hidden(timeout=WAIT_MS)
    assert_accessible(page, "a cited answer")


def test_a_refusal_offering_a_person_has_no_serious_violations(page: Page) -> None:
    open_panel(page)
    refusal = ask(page, "Can I bring my dog to the hospital cafeteria?")
    expect(refusal.locator("[data-part=human-offer]")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("[data-part=typing]")).to_be_hidden(timeout=WAIT_MS)
    assert_accessible(page, "a refusal offering a person")


def test_the_keyboard_opens_the_panel_into_its_input_and_escape_returns_to_the_launcher(page: Page) -> None:
    launcher = page.locator("[data-part=launcher]")
    for _ in range(10):  # past the page's own links, in document order
        page.keyboard.press("Tab")
        if launcher.evaluate("(el) => el.getRootNode().activeElement === el"):
            break
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("[data-part=panel]")).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.locator("[data-part=input]")).to_be_focused(timeout=WAIT_MS)
    page.keyboard.press("Escape")
    expect(page.locator("[data-part=panel]")).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()
