"""Debian's Chromium driven by Playwright (never a browser download), launched the way a closed network needs, and
an appliance with the demo organisation, its help centre and widget key, served for real."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from appliance.auth import orgs
from appliance.conversations import widget
from appliance.inference.embedders import OnnxEmbedder
from appliance.instance import Instance, cli_context
from appliance.knowledge.importers import common, markdown
from tests.conftest import with_embedder

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
DEMO_KB = Path(__file__).resolve().parents[2] / "appliance" / "demo_kb" / "articles"


@contextmanager
def chromium() -> Iterator[Browser]:
    assert Path(CHROMIUM).is_file(), "installer/setup.sh --test installs Debian's chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def demo_org(inst: Instance, embedder: OnnxEmbedder) -> tuple[int, str]:
    """The demo organisation as `appliance demo` sets it up: help centre imported and indexed, a widget key."""
    with_embedder(inst, embedder)
    org = orgs.create_org(inst.db, cli_context(), "demo", "Riverside Clinic (demo)")
    common.apply(inst.db, cli_context(org.id), org.id, list(markdown.read_folder(DEMO_KB)), dry_run=False)
    inst.knowledge.indexer.process_pending(org.id)
    key, _ = widget.create_key(inst.db, cli_context(org.id), org.id, {"greeting": "Hello! How can we help?"})
    return org.id, key.public_key
