"""HTML-folder import: titles from <title> or the first <h1>, page chrome and scripts dropped, headings, lists,
tables and links kept as markdown; idempotent re-import; files that are not UTF-8 or too large fail alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import BadInput
from appliance.instance import Instance
from appliance.knowledge import articles
from appliance.knowledge.importers import common, formats
from appliance.knowledge.importers.convert import html_to_markdown
from tests.conftest import Seed
from tests.knowledge.importing import by_external_id, copy_fixture, failures, run_import


def test_html_folder_import_create_reimport_update_and_dry_run(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    folder = copy_fixture("html", tmp_path)
    (folder / "latin1.html").write_bytes("<title>Café</title><p>Crème brûlée</p>".encode("latin-1"))
    (folder / "huge.html").write_bytes(b"<p>" + b"a" * common.MAX_FILE_BYTES + b"</p>")

    dry = run_import(inst, seed.north, folder, dry_run=True)
    assert dry.counts == {"created": 2, "updated": 0, "unchanged": 0, "failed": 2}
    assert articles.list_articles(inst.db, seed.north).total == 0  # a dry run writes nothing

    first = run_import(inst, seed.north, folder)
    assert first.counts == dry.counts
    reasons = failures(first)
    assert reasons["latin1.html"].startswith("not UTF-8 text (byte 10)")
    assert "over the 2097152-byte limit" in reasons["huge.html"]

    found = by_external_id(inst, seed.north)
    assert set(found) == {"reset-pin.html", "billing/refunds.htm"}  # notes.txt is not HTML
    pin = found["reset-pin.html"]
    assert pin.status == "published" and pin.latest.title == "Reset your card PIN"
    assert pin.latest.category == "Cards" and pin.latest.tags == ["pin", "cards"]
    content = pin.latest.content
    assert content.startswith("# Reset your card PIN\n\nYou can choose a new PIN in the app at any time.\n\n## In the app")
    assert "1. Open the app and tap **Cards**.\n2. Tap *Reset PIN* and follow the steps." in content
    assert "| Channel | Resets per day |\n| --- | --- |\n| App | 3 |\n| Phone | 1 |" in content
    assert "[how to contact us](https://help.north.example/contact)" in content
    for chrome in ("North Clinic help", "Billing", "© North Clinic", "analytics", "alert", "font-family", "reset-pin.png"):
        assert chrome not in content, chrome
    refunds = found["billing/refunds.htm"]
    assert refunds.latest.title == "Refunds"  # no <title>: the first <h1>
    assert refunds.latest.content == (
        "# Refunds\n\nRefunds reach your account within **5 working days**.\n\n"
        "- Card payments go back to the card.\n- Bank transfers go back to the sending account.\n"
    )

    again = run_import(inst, seed.north, folder)
    assert again.counts == {"created": 0, "updated": 0, "unchanged": 2, "failed": 2}

    page = folder / "reset-pin.html"
    page.write_text(page.read_text().replace("<td>3</td>", "<td>5</td>"))
    changed = run_import(inst, seed.north, folder)
    assert changed.counts == {"created": 0, "updated": 1, "unchanged": 1, "failed": 2}
    pin = articles.get_article(inst.db, seed.north, pin.id)
    assert pin.current_version == 2 and pin.published_version == 2
    assert "| App | 5 |" in articles.published_version(inst.db, seed.north, pin.id).content


def test_single_html_file_and_folder_detection(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    page = tmp_path / "Opening hours.html"
    page.write_text("<html><head><title> Opening\n hours </title></head><body><p>9 to 5.</p></body></html>")
    [one] = formats.read_path(page)
    assert one.external_id == "Opening hours.html" and one.draft is not None
    assert one.draft.title == "Opening hours" and one.draft.content == "9 to 5.\n"

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.md").write_text("# A\n")
    (mixed / "b.html").write_text("<h1>B</h1>")
    with pytest.raises(BadInput, match="both markdown and HTML"):
        formats.read_path(mixed)
    assert [i.external_id for i in formats.read_path(mixed, "html")] == ["b.html"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no .md or .html files"):
        formats.read_path(tmp_path / "empty")


def test_conversion_keeps_structure_and_drops_chrome() -> None:
    markdown = html_to_markdown(
        "<body><nav>Menu</nav><h1>T</h1><h3>Deep</h3><ul><li>a<ul><li>b</li></ul></li></ul>"
        "<p>x&nbsp;y</p><pre class='language-python'><code>a = 1\n\n\nb = 2</code></pre>"
        "<img src='data:image/png;base64,AAAA'><iframe src='https://evil.example'></iframe>"
        "<script>steal()</script><noscript>js off</noscript><!-- a comment --><p></p><p></p><p>end</p></body>"
    )
    assert markdown == "# T\n\n### Deep\n\n- a\n  - b\n\nx y\n\n```python\na = 1\n\n\nb = 2\n```\n\nend\n"
