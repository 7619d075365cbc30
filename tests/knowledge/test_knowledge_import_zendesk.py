"""Zendesk Guide articles JSON import: API pages saved one after another, as a list or one per line; sections as
categories, draft to publish state, label names as tags; the CLI on a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import BadInput
from appliance.instance import Instance
from appliance.knowledge import articles
from appliance.knowledge.importers import formats
from tests.conftest import Seed
from tests.knowledge.importing import FIXTURES, audit_actions, by_external_id, failures, run_cli, run_import

EXPORT = FIXTURES / "zendesk" / "articles.json"


def fixture_pages() -> list[dict[str, Any]]:
    decoder, text, pages, at = json.JSONDecoder(), EXPORT.read_text(), [], 0
    while text[at:].strip():
        page, end = decoder.raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
        pages.append(page)
        at = end
    return pages


def test_zendesk_pages_create_reimport_update(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    dry = run_import(inst, seed.north, EXPORT, dry_run=True)
    assert dry.counts == {"created": 3, "updated": 0, "unchanged": 0, "failed": 0}
    assert articles.list_articles(inst.db, seed.north).total == 0

    report = run_import(inst, seed.north, EXPORT)
    assert report.counts == dry.counts
    found = by_external_id(inst, seed.north)
    assert {k: (a.latest.title, a.latest.category, a.latest.tags, a.status) for k, a in found.items()} == {
        "zendesk:360001234501:en-us": ("Reset your PIN", "Cards", ["pin", "cards"], "published"),
        "zendesk:360001234502:en-us": ("Card fees", "Cards", ["fees"], "draft"),  # draft: true
        "zendesk:360001234503:en-us": ("Refunds", "Billing", [], "published"),  # its section is on page 2
    }
    refunds = found["zendesk:360001234503:en-us"].latest.content
    assert refunds == "Refunds take **5 working days**.\n\n| Method | Days |\n| --- | --- |\n| Card | 5 |\n"  # no <script>

    # The same pages as a list of page objects, then one page per line: the same articles, unchanged.
    pages = fixture_pages()
    as_list = tmp_path / "pages.json"
    as_list.write_text(json.dumps(pages, indent=2))
    assert run_import(inst, seed.north, as_list).counts == {"created": 0, "updated": 0, "unchanged": 3, "failed": 0}
    pages[0]["articles"][0]["body"] += "<p>Or call us.</p>"
    pages[1]["articles"][0]["label_names"] = ["refunds"]
    as_lines = tmp_path / "pages.jsonl"
    as_lines.write_text("\n".join(json.dumps(p) for p in pages))
    changed = run_import(inst, seed.north, as_lines)
    assert changed.counts == {"created": 0, "updated": 2, "unchanged": 1, "failed": 0}
    pin = by_external_id(inst, seed.north)["zendesk:360001234501:en-us"]
    assert pin.current_version == 2 and pin.published_version == 2
    assert articles.published_version(inst.db, seed.north, pin.id).content.endswith("Or call us.\n")
    assert by_external_id(inst, seed.north)["zendesk:360001234503:en-us"].latest.tags == ["refunds"]


def test_zendesk_bad_lines_and_articles_fail_alone(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    page1, page2 = fixture_pages()
    untitled = {**page2["articles"][0], "id": 360001234509, "title": "", "name": ""}
    french = {**page2["articles"][0], "locale": "fr", "title": "Remboursements", "body": "<p>5 jours.</p>"}
    typed = {**untitled, "id": 360001234510, "title": "Typed", "draft": "no"}
    path = tmp_path / "export.jsonl"
    path.write_text(
        json.dumps(page1) + "\n"
        + '{"articles": [{"id": 1, "title": "Cut off"\n'
        + json.dumps({"articles": [untitled, typed]}) + "\n"
        + json.dumps({"article": french}) + "\n"
    )  # fmt: skip
    report = run_import(inst, seed.north, path)
    assert report.counts == {"created": 3, "updated": 0, "unchanged": 0, "failed": 3}
    assert failures(report) == {
        "export.jsonl line 2": "not valid JSON: Expecting ',' delimiter (column 43)",
        "export.jsonl line 3: article 360001234509": "no title",
        "export.jsonl line 3: article 360001234510": "draft must be true or false",
    }
    found = by_external_id(inst, seed.north)
    assert set(found) == {
        "zendesk:360001234501:en-us", "zendesk:360001234502:en-us", "zendesk:360001234503:fr",
    }  # fmt: skip
    assert found["zendesk:360001234503:fr"].latest.category == ""  # its section was on the page that was cut off

    pretty = tmp_path / "broken.json"
    pretty.write_text(EXPORT.read_text().replace('"draft": true,', '"draft": true'))
    with pytest.raises(BadInput, match=r"broken.json is not valid JSON: Expecting ',' delimiter at line 37 column 7"):
        formats.read_path(pretty)


def test_cli_imports_a_zendesk_json_file(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    inst.close()
    dry = run_cli(inst, str(EXPORT), "--org", "north", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == "dry run: would have created 3, updated 0, unchanged 0, failed 0"
    ok = run_cli(inst, str(EXPORT), "--org", "north", "--format", "zendesk")
    assert ok.returncode == 0 and ok.stdout.strip() == "created 3, updated 0, unchanged 0, failed 0", ok.stderr
    again = run_cli(inst, str(EXPORT), "--org", "south")  # another organisation gets its own
    assert again.stdout.strip() == "created 3, updated 0, unchanged 0, failed 0"
    missing = run_cli(inst, str(tmp_path / "nope.json"), "--org", "north")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    unknown = tmp_path / "users.json"
    unknown.write_text('{"users": []}')
    refused = run_cli(inst, str(unknown), "--org", "north")
    assert refused.returncode == 2 and "cannot tell what export users.json is" in refused.stderr
    from appliance.instance import open_instance

    reopened = open_instance(inst.settings)
    try:
        assert len(by_external_id(reopened, seed.north)) == 3 and len(by_external_id(reopened, seed.south)) == 3
        details = [json.loads(d) for d in audit_actions(reopened, "article.imported")]
        assert details == [
            {"source": "articles.json", "created": 3, "updated": 0, "unchanged": 0, "failed": 0},
            {"source": "articles.json", "created": 3, "updated": 0, "unchanged": 0, "failed": 0},
        ]
    finally:
        reopened.close()
