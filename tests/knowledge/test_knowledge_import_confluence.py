"""Confluence space export (HTML zip) import: page ids from file names, titles without the space prefix, parents
from the breadcrumbs, only #main-content kept; the space overview and attachments are not articles."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import BadInput
from appliance.instance import Instance
from appliance.knowledge import articles
from appliance.knowledge.importers import formats
from tests.conftest import Seed
from tests.knowledge.importing import FIXTURES, by_external_id, copy_fixture, failures, run_import, zip_folder


def test_confluence_space_export(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    export = zip_folder(FIXTURES / "confluence", tmp_path / "SUP-export.zip")
    dry = run_import(inst, seed.north, export, dry_run=True)
    assert dry.counts == {"created": 4, "updated": 0, "unchanged": 0, "failed": 0}
    assert articles.list_articles(inst.db, seed.north).total == 0

    report = run_import(inst, seed.north, export)
    assert report.counts == dry.counts
    assert "SUP-export.zip/SUP/Reset-your-PIN_65602.html" in {i.source for i in report.items}
    found = by_external_id(inst, seed.north)
    assert {k: (a.latest.title, a.latest.category, a.status) for k, a in found.items()} == {
        "confluence:65538": ("Support Home", "Support", "published"),  # top level: the space
        "confluence:65601": ("Cards", "Support Home", "published"),
        "confluence:65602": ("Reset your PIN", "Cards", "published"),  # the last breadcrumb
        "confluence:65603": ("Оплата картой", "Support Home", "published"),  # `<id>.html` for a non-ASCII title
    }
    pin = found["confluence:65602"].latest.content
    assert pin == (
        "## In the app\n\n1. Open **Cards**.\n2. Tap *Reset PIN*.\n\n## By phone\n\n"
        "```bash\ncall 0800 123 456\npress 2\n```\n\n"
        "| Channel | Resets per day |\n| --- | --- |\n| App | 3 |\n"
    )  # no attachment image, no "Attachments:" section, no "Created by", no footer
    assert "Start with [Cards](Cards_65601.html)." in found["confluence:65538"].latest.content

    assert run_import(inst, seed.north, export).counts["unchanged"] == 4


def test_confluence_reexport_and_pages_that_fail_alone(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    folder = copy_fixture("confluence", tmp_path)
    run_import(inst, seed.north, zip_folder(folder, tmp_path / "first.zip"))
    page = folder / "SUP" / "Cards_65601.html"
    page.write_text(page.read_text().replace("debit and credit cards", "debit, credit and prepaid cards"))
    broken = {
        "SUP/Old-Page_70001.html": b"<html><body><p>Saved from a browser, not exported</p></body></html>",
        "SUP/Welcome.html": b"<html><body><div id='main-content'>no id</div></body></html>",
        "SUP/Latin_70002.html": "<div id='main-content'>Café</div>".encode("latin-1"),
    }
    report = run_import(inst, seed.north, zip_folder(folder, tmp_path / "second.zip", extra=broken))
    assert report.counts == {"created": 0, "updated": 1, "unchanged": 3, "failed": 3}
    assert failures(report) == {
        "second.zip/SUP/Old-Page_70001.html": "no #main-content: not a Confluence page export",
        "second.zip/SUP/Welcome.html": "not a Confluence page (no page id in its file name)",
        "second.zip/SUP/Latin_70002.html": "not UTF-8 text (byte 26)",
    }
    cards = by_external_id(inst, seed.north)["confluence:65601"]
    assert cards.current_version == 2 and cards.published_version == 2
    assert "debit, credit and prepaid cards" in cards.latest.content


def test_zip_format_detection(tmp_path: Path) -> None:
    confluence = zip_folder(FIXTURES / "confluence", tmp_path / "space.zip")
    assert {i.external_id for i in formats.read_path(confluence)} == {
        "confluence:65538", "confluence:65601", "confluence:65602", "confluence:65603",
    }  # fmt: skip
    with pytest.raises(BadInput, match="found nothing to import in space.zip read as notion"):
        formats.read_path(confluence, "notion")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "readme.txt").write_text("hello")
    with pytest.raises(BadInput, match="cannot tell what export other.zip is"):
        formats.read_path(zip_folder(plain, tmp_path / "other.zip"))
    with pytest.raises(BadInput, match="unknown import format 'word'"):
        formats.read_path(confluence, "word")
