"""Notion "Markdown & CSV" zip import: pages and database rows with their CSV properties, the nested
`Export-<uuid>.zip` wrapping, ids stable across re-exports, and the CLI on a zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

from appliance.instance import Instance
from appliance.knowledge import articles
from tests.conftest import Seed
from tests.knowledge.importing import (
    FIXTURES, audit_actions, by_external_id, copy_fixture, failures, run_cli, run_import, zip_folder,
)  # fmt: skip

HELP_CENTER = "Help Center 8e2f6a0b1c3d4e5f8a9b0c1d2e3f4a5b"
DATABASE = f"{HELP_CENTER}/Articles 0f1e2d3c4b5a69788796a5b4c3d2e1f0"
RESET_PIN = f"{DATABASE}/Reset your PIN 5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f.md"


def nested(export: Path, target: Path) -> Path:
    """Notion's wrapping of large exports: Export-<uuid>.zip holding Export-<uuid>-Part-1.zip."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(export, "Export-5d2a1c9e-7b41-4f0e-9a3c-2b8e6f1d0a47-Part-1.zip")
    return target


def test_notion_zip_pages_rows_and_properties(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    export = zip_folder(FIXTURES / "notion", tmp_path / "Export-5d2a1c9e.zip")
    dry = run_import(inst, seed.north, export, dry_run=True)
    assert dry.counts == {"created": 6, "updated": 0, "unchanged": 0, "failed": 0}
    assert articles.list_articles(inst.db, seed.north).total == 0
    assert audit_actions(inst, "article.imported") == []  # a dry run records nothing either

    report = run_import(inst, seed.north, export)
    assert report.counts == dry.counts
    assert f"Export-5d2a1c9e.zip/{RESET_PIN}" in {item.source for item in report.items}
    found = by_external_id(inst, seed.north)
    summary = {
        key.removeprefix("notion:"): (a.latest.title, a.latest.category, a.latest.tags, a.status)
        for key, a in found.items()
    }
    assert summary == {
        "8e2f6a0b1c3d4e5f8a9b0c1d2e3f4a5b": ("Help Center", "", [], "published"),
        "1a2b3c4d5e6f708192a3b4c5d6e7f809": ("Getting started", "Help Center", [], "published"),
        "5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f": ("Reset your PIN", "Cards", ["pin", "cards"], "published"),
        "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d": ("Card fees", "Cards", ["fees"], "draft"),  # Status: Draft
        "2b3c4d5e6f708192a3b4c5d6e7f8091a": ("Opening hours", "Articles", ["hours", "branches"], "published"),
        "3c4d5e6f708192a3b4c5d6e7f8091a2b": ("Lost card", "Cards", ["cards", "lost"], "published"),  # _all.csv only
    }
    pin = found["notion:5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"].latest.content
    # The property lines under the title are gone (the CSV had them); the title line is not repeated.
    assert pin == "Open the app, tap **Cards**, then **Reset PIN**.\n\n## If the app is locked\n\nCall us on 0800 123 456.\n"
    hours = found["notion:2b3c4d5e6f708192a3b4c5d6e7f8091a"].latest.content
    assert hours.startswith("| Day | Hours |\n| --- | --- |\n| Monday to Friday | 9:00 to 17:00 |")
    started = found["notion:1a2b3c4d5e6f708192a3b4c5d6e7f809"].latest.content
    assert "3. Confirm the code we send you." in started and "Untitled.png" not in started  # local image dropped
    assert len(audit_actions(inst, "article.imported")) == 1

    # The same export wrapped the way Notion wraps large ones: same ids, so nothing changes.
    wrapped = nested(export, tmp_path / "Export-5d2a1c9e-7b41-4f0e-9a3c-2b8e6f1d0a47.zip")
    again = run_import(inst, seed.north, wrapped)
    assert again.counts == {"created": 0, "updated": 0, "unchanged": 6, "failed": 0}
    assert any(i.source.endswith(f"-Part-1.zip/{RESET_PIN}") for i in again.items)


def test_notion_reexport_with_changes_and_a_bad_page(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    folder = copy_fixture("notion", tmp_path)
    run_import(inst, seed.north, zip_folder(folder, tmp_path / "first.zip"))
    page = folder / RESET_PIN
    page.write_text(page.read_text().replace("0800 123 456", "0800 999 000"))
    csv_file = folder / f"{DATABASE}.csv"
    csv_file.write_text(csv_file.read_text("utf-8-sig").replace("Card fees,Cards,Draft", "Card fees,Cards,Published"))
    all_csv = folder / f"{DATABASE}_all.csv"
    all_csv.write_text(all_csv.read_text("utf-8-sig").replace("Card fees,Cards,Draft", "Card fees,Cards,Published"))
    bad = {f"{DATABASE}/Broken 0badc0de0badc0de0badc0de0badc0de.md": "# Café\n\nCrème".encode("latin-1")}

    report = run_import(inst, seed.north, zip_folder(folder, tmp_path / "second.zip", extra=bad))
    assert report.counts == {"created": 0, "updated": 2, "unchanged": 4, "failed": 1}
    assert failures(report) == {
        f"second.zip/{DATABASE}/Broken 0badc0de0badc0de0badc0de0badc0de.md": "not UTF-8 text (byte 5)"
    }
    found = by_external_id(inst, seed.north)
    pin = found["notion:5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"]
    assert pin.current_version == 2 and pin.published_version == 2
    assert articles.published_version(inst.db, seed.north, pin.id).content.endswith("Call us on 0800 999 000.\n")
    fees = found["notion:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"]
    assert fees.status == "published" and fees.current_version == 1  # same content, now published


def test_cli_imports_a_notion_zip(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    export = zip_folder(FIXTURES / "notion", tmp_path / "export.zip", extra={"../evil.md": b"# Evil\n"})
    inst.close()
    dry = run_cli(inst, str(export), "--org", "north", "--dry-run")
    assert dry.returncode == 1, dry.stderr  # one entry failed
    assert "failed\texport.zip/../evil.md\tunsafe path" in dry.stdout
    assert "dry run: would have created 6, updated 0, unchanged 0, failed 1" in dry.stdout
    clean = zip_folder(FIXTURES / "notion", tmp_path / "clean.zip")
    ok = run_cli(inst, str(clean), "--org", "north", "--format", "notion")
    assert ok.returncode == 0 and "created 6, updated 0, unchanged 0, failed 0" in ok.stdout, ok.stdout + ok.stderr
    again = run_cli(inst, str(clean), "--org", "north")
    assert again.returncode == 0 and "created 0, updated 0, unchanged 6, failed 0" in again.stdout
    wrong = run_cli(inst, str(clean), "--org", "north", "--format", "zendesk")
    assert wrong.returncode == 2 and "clean.zip is a zip archive; a zendesk import reads" in wrong.stderr
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("just text")
    broken = run_cli(inst, str(not_zip), "--org", "north")
    assert broken.returncode == 2 and "notes.zip is not a readable zip archive" in broken.stderr
