"""Markdown-folder import: dry run, idempotent re-import, new versions on change, and malformed files that fail
alone with a reason while the rest import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from appliance.instance import Instance, cli_context
from appliance.knowledge import articles
from appliance.knowledge.importers import common, markdown
from tests.conftest import Seed

GOOD = """---
id: kb-001
title: "Reset your card PIN"
category: Cards
tags: [PIN, cards]
---

1. Open the app
2. Tap Reset PIN
"""


def make_folder(root: Path) -> Path:
    root.mkdir()
    (root / "pin.md").write_text(GOOD)
    (root / "sub").mkdir()
    (root / "sub" / "hours.md").write_text("# Opening hours\n\nWe open at 9.\n")  # no front matter
    (root / "draft.md").write_text("---\nid: kb-003\ntitle: Not yet\nstatus: draft\n---\nsoon\n")
    (root / "broken-yaml.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    (root / "unclosed.md").write_text("---\ntitle: x\nbody without end\n")
    (root / "latin1.md").write_bytes("---\ntitle: Café\n---\nrésumé\n".encode("latin-1"))
    (root / "huge.md").write_bytes(b"a" * (common.MAX_FILE_BYTES + 1))
    (root / "notes.txt").write_text("not markdown, ignored")
    return root


def run_import(inst: Instance, org_id: int, folder: Path, dry_run: bool = False) -> common.ImportReport:
    return common.apply(inst.db, cli_context(org_id), org_id, markdown.read_folder(folder), dry_run)


def test_import_reports_each_file_and_failures_stand_alone(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "kb")
    dry = run_import(inst, seed.north, folder, dry_run=True)
    assert dry.counts == {"created": 3, "updated": 0, "unchanged": 0, "failed": 4}
    assert articles.list_articles(inst.db, seed.north).total == 0  # a dry run writes nothing

    first = run_import(inst, seed.north, folder)
    assert first.counts == dry.counts
    reasons = {i.source: i.reason for i in first.items if i.outcome == "failed"}
    assert "not valid YAML" in reasons["broken-yaml.md"]
    assert "never closed" in reasons["unclosed.md"]
    assert "not UTF-8" in reasons["latin1.md"]
    assert "over the" in reasons["huge.md"]

    pin = next(a for a in articles.list_articles(inst.db, seed.north).items if a.external_id == "kb-001")
    assert pin.status == "published" and pin.latest.tags == ["pin", "cards"] and pin.latest.category == "Cards"
    hours = next(a for a in articles.list_articles(inst.db, seed.north).items if a.external_id == "sub/hours.md")
    assert hours.latest.title == "Opening hours"
    draft = next(a for a in articles.list_articles(inst.db, seed.north).items if a.external_id == "kb-003")
    assert draft.status == "draft"
    assert [v.title for v in articles.list_published(inst.db, seed.north)] == ["Opening hours", "Reset your card PIN"]

    again = run_import(inst, seed.north, folder)
    assert again.counts == {"created": 0, "updated": 0, "unchanged": 3, "failed": 4}

    (folder / "pin.md").write_text(GOOD.replace("Tap Reset PIN", "Tap Security, then Reset PIN"))
    changed = run_import(inst, seed.north, folder)
    assert changed.counts["updated"] == 1 and changed.counts["unchanged"] == 2
    pin = articles.get_article(inst.db, seed.north, pin.id)
    assert pin.current_version == 2 and pin.published_version == 2  # the new version is what is served
    assert articles.published_version(inst.db, seed.north, pin.id).content.endswith("Tap Security, then Reset PIN\n")
    # Another organisation importing the same folder gets its own articles.
    assert run_import(inst, seed.south, folder).counts["created"] == 3


def test_cli_import_with_dry_run_and_exit_status(inst: Instance, seed: Seed, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "kb")
    inst.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    cli = [str(Path(sys.executable).parent / "appliance"), "--data-dir", str(inst.settings.data_dir), "kb", "import"]
    dry = subprocess.run([*cli, str(folder), "--org", "north", "--dry-run"], capture_output=True, text=True, env=env)
    assert dry.returncode == 1  # some files failed
    assert "dry run: would have created 3, updated 0, unchanged 0, failed 4" in dry.stdout
    assert "failed\tlatin1.md\tnot UTF-8" in dry.stdout
    (folder / "broken-yaml.md").unlink()
    for name in ("unclosed.md", "latin1.md", "huge.md"):
        (folder / name).unlink()
    ok = subprocess.run([*cli, str(folder), "--org", "north"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "created 3, updated 0, unchanged 0, failed 0" in ok.stdout
    missing_org = subprocess.run([*cli, str(folder), "--org", "nowhere"], capture_output=True, text=True, env=env)
    assert missing_org.returncode == 2 and "not found" in missing_org.stderr
