"""Screenshots of the chat widget for the docs, taken from the real thing.

    .venv/bin/python bench/screenshots.py [--out docs/images]

Sets up what the browser tests set up (tests/conftest.py, tests/e2e/browser.py), in a temporary folder removed at the
end: an installation, the shipped embedder exported to ONNX, and the demo organisation with its help centre indexed
and a widget key. The appliance is served on a loopback port; Debian's Chromium (/usr/bin/chromium, never a
download) opens /demo at 1280x800, opens the widget, asks "How do I reset my portal password?" and waits for the
cited answer. Writes widget-demo.png (the full viewport) into --out and prints its path and size in bytes.

Needs the built widget (`npm --prefix widget run build`), Chromium, the `build` and `test` extras (the ONNX export
needs torch, the browser Playwright).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "models")]

from playwright.sync_api import Page, expect  # noqa: E402

from appliance.config import Settings  # noqa: E402
from appliance.inference.embedders import OnnxEmbedder  # noqa: E402
from appliance.instance import Instance, cli_context, init_instance  # noqa: E402
from appliance.web.app import create_app  # noqa: E402
from tests.conversations.live import serve  # noqa: E402
from tests.e2e.browser import chromium, demo_org  # noqa: E402

QUESTION = "How do I reset my portal password?"
VIEWPORT = {"width": 1280, "height": 800}
WAIT_MS = 60_000


def embedder(work: Path) -> OnnxEmbedder:
    """The shipped embedder, exported as the `onnx_dir` fixture does (the folder named as installed)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1"
    from export_embedder import default_source, export_embedder

    out = work / "models" / "all-minilm-l6-v2"
    out.mkdir(parents=True)
    export_embedder(default_source(), out)
    return OnnxEmbedder(out, threads=2)


def ask(page: Page, site: str) -> None:
    page.goto(f"{site}/demo")
    page.locator("[data-part=launcher]").click()
    page.locator("[data-part=input]").fill(QUESTION)
    page.locator("[data-part=input]").press("Enter")
    answer = page.locator("[data-part=message][data-role=ai]").first
    expect(answer.locator("[data-part=confidence]")).to_be_visible(timeout=WAIT_MS)
    expect(answer.locator("[data-part=sources] a").first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("[data-part=typing]")).to_be_hidden(timeout=WAIT_MS)


def shoot(inst: Instance, out: Path) -> Path:
    path = out / "widget-demo.png"
    with serve(create_app(inst)) as address, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        ask(page, f"http://{address}")
        page.screenshot(path=str(path), animations="disabled")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder (default: docs/images)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        work = Path(tmp)
        inst = init_instance(Settings(data_dir=work / "data"), cli_context())  # type: ignore[call-arg]
        try:
            demo_org(inst, embedder(work))
            path = shoot(inst, args.out)
        finally:
            inst.close()
    print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
