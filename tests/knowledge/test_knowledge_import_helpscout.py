"""Help Scout Docs JSON import: list responses of full articles, category names from a saved categories response,
status to publish state, and JSON lines where a bad line fails alone, named by its number."""

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
from tests.knowledge.importing import FIXTURES, by_external_id, failures, run_import

EXPORT = FIXTURES / "helpscout" / "articles.json"


def fixture_articles() -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    text = EXPORT.read_text()
    _, end = decoder.raw_decode(text)  # the categories response comes first
    items: list[dict[str, Any]] = decoder.raw_decode(text[end:].lstrip())[0]["articles"]["items"]
    return items


def test_helpscout_export_create_reimport_update(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    dry = run_import(inst, seed.north, EXPORT, dry_run=True)
    assert dry.counts == {"created": 3, "updated": 0, "unchanged": 0, "failed": 0}
    assert articles.list_articles(inst.db, seed.north).total == 0

    report = run_import(inst, seed.north, EXPORT)
    assert report.counts == dry.counts
    assert [i.source for i in report.items][0] == "articles.json: article 5a1f0112042863319924ce80"
    found = by_external_id(inst, seed.north)
    assert {k: (a.latest.title, a.latest.category, a.latest.tags, a.status) for k, a in found.items()} == {
        "helpscout:5a1f0112042863319924ce80": ("Reset your PIN", "Cards", ["pin", "cards"], "published"),
        "helpscout:5a1f0112042863319924ce81": ("Card fees", "Cards", ["fees"], "draft"),  # notpublished
        "helpscout:5a1f0112042863319924ce82": ("Refunds", "Billing", [], "published"),
    }
    assert found["helpscout:5a1f0112042863319924ce80"].latest.content == (
        "You can choose a new PIN in the app.\n\n## Steps\n\n1. Open **Cards**.\n2. Tap *Reset PIN*.\n"
    )
    assert "| Card | 5 |" in found["helpscout:5a1f0112042863319924ce82"].latest.content

    # The same articles, one per line (no categories this time: the ids are all an article carries).
    lines = tmp_path / "articles.jsonl"
    lines.write_text("\n".join(json.dumps(a) for a in fixture_articles()) + "\n")
    assert run_import(inst, seed.north, lines).counts == {"created": 0, "updated": 3, "unchanged": 0, "failed": 0}
    refunds = by_external_id(inst, seed.north)["helpscout:5a1f0112042863319924ce82"]
    assert refunds.latest.category == "" and refunds.current_version == 2
    assert run_import(inst, seed.north, lines).counts["unchanged"] == 3

    edited = fixture_articles()
    edited[0]["text"] = edited[0]["text"].replace("in the app", "in the app or by phone")
    lines.write_text("\n".join(json.dumps(a) for a in edited) + "\n")
    changed = run_import(inst, seed.north, lines)
    assert changed.counts == {"created": 0, "updated": 1, "unchanged": 2, "failed": 0}
    pin = by_external_id(inst, seed.north)["helpscout:5a1f0112042863319924ce80"]
    assert pin.current_version == 3 and pin.published_version == 3
    assert "in the app or by phone" in articles.published_version(inst.db, seed.north, pin.id).content


def test_helpscout_malformed_lines_and_articles_fail_alone(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    good = fixture_articles()
    reference = {k: good[2][k] for k in ("id", "number", "collectionId", "status", "name", "publicUrl")}
    lines = [
        json.dumps({"article": good[0]}),  # as GET /v1/articles/{id} returns it
        '{"id": "5a1f0112042863319924ce99", "name": "Half a line',
        json.dumps(reference),  # from a list response: no text
        json.dumps({**good[1], "status": "archived"}),
        json.dumps({**good[1], "id": "5a1f0112042863319924ce98", "name": "  "}),
    ]
    path = tmp_path / "export.jsonl"
    path.write_bytes("\n".join(lines).encode() + b"\n" + '{"name": "Caf\xe9"}'.encode("latin-1") + b"\n")
    report = run_import(inst, seed.north, path)
    assert report.counts == {"created": 1, "updated": 0, "unchanged": 0, "failed": 5}
    assert failures(report) == {
        "export.jsonl line 2": "not valid JSON: Unterminated string starting at (column 44)",
        "export.jsonl line 3: article 5a1f0112042863319924ce82":
            "no text: a list reference, not a full article (export GET /v1/articles/{id})",
        "export.jsonl line 4: article 5a1f0112042863319924ce81":
            "status 'archived': expected published or notpublished",
        "export.jsonl line 5: article 5a1f0112042863319924ce98": "no name (the article's title)",
        "export.jsonl line 6": "not UTF-8 text (byte 13)",
    }  # fmt: skip
    assert list(by_external_id(inst, seed.north)) == ["helpscout:5a1f0112042863319924ce80"]


def test_json_shape_detection(tmp_path: Path) -> None:
    unknown = tmp_path / "users.json"
    unknown.write_text(json.dumps({"users": [{"id": 1, "email": "a@b.example"}]}))
    with pytest.raises(BadInput, match="cannot tell what export users.json is"):
        formats.read_path(unknown)
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "articles": {\n    "items": [\n      {"id": 1,}\n    ]\n  }\n}\n')
    with pytest.raises(BadInput, match="broken.json is not valid JSON: .* at line 4 column 16"):
        formats.read_path(broken)
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"name": "Caf\xe9"}'.encode("latin-1"))
    with pytest.raises(BadInput, match="latin.json is not UTF-8 text"):
        formats.read_path(latin)
    # Told the wrong format, it finds nothing and says so rather than reporting an empty success.
    with pytest.raises(BadInput, match="found nothing to import in articles.json read as zendesk"):
        formats.read_path(EXPORT, "zendesk")
