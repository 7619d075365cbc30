"""What the importer tests share: the fixture exports, zips built from them, and a look at what landed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from appliance.instance import Instance, cli_context
from appliance.knowledge import articles
from appliance.knowledge.importers import common, formats

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """A writable copy, so a test can change an export and import it again."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def zip_folder(folder: Path, target: Path, extra: dict[str, bytes] | None = None) -> Path:
    """The folder's files as a zip (entry names relative to it, in sorted order), plus extra raw entries."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return target


def run_import(
    inst: Instance, org_id: int, path: Path, dry_run: bool = False, format: str = "auto"
) -> common.ImportReport:
    return formats.import_path(inst.db, cli_context(org_id), org_id, path, format, dry_run)


def by_external_id(inst: Instance, org_id: int) -> dict[str, articles.Article]:
    return {a.external_id or "": a for a in articles.list_articles(inst.db, org_id, per_page=200).items}


def failures(report: common.ImportReport) -> dict[str, str]:
    return {item.source: item.reason for item in report.items if item.outcome == "failed"}


def audit_actions(inst: Instance, action: str) -> list[str]:
    with inst.db.read() as conn:
        return [r[0] for r in conn.execute("SELECT details FROM audit_events WHERE action = ?", (action,))]


def run_cli(inst: Instance, *args: str) -> subprocess.CompletedProcess[str]:
    """`appliance kb import ...` as an operator runs it (the instance must be closed first)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    command = [str(Path(sys.executable).parent / "appliance"), "--data-dir", str(inst.settings.data_dir), "kb", "import"]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=120)
