"""kb import."""

from __future__ import annotations

from pathlib import Path

import click

from appliance.auth.orgs import get_org_by_slug
from appliance.cli.main import Obj, cli, opened, pass_obj, progress
from appliance.instance import cli_context
from appliance.knowledge.importers import common, markdown


@cli.group()
def kb() -> None:
    """The knowledge base."""


@kb.command("import")
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--dry-run", is_flag=True, help="Report what would be created, updated, unchanged or failed.")
@pass_obj
def kb_import(obj: Obj, path: Path, org_slug: str, dry_run: bool) -> None:
    """Import a markdown folder (front matter: id, title, category, tags, status). Exit 1 if any file failed."""
    with opened(obj) as inst:
        org = get_org_by_slug(inst.db, org_slug)
        incoming = list(markdown.read_folder(path))
        with progress(len(incoming) * 20, "importing") as bar:  # a bar once the folder takes a moment
            report = common.apply(inst.db, cli_context(org.id), org.id, incoming, dry_run, lambda n: bar(20 * n))
    for item in report.items:
        if item.outcome == "failed":
            click.echo(f"failed\t{item.source}\t{item.reason}")
    counts = report.counts
    prefix = "dry run: would have " if dry_run else ""
    click.echo(
        f"{prefix}created {counts['created']}, updated {counts['updated']}, "
        f"unchanged {counts['unchanged']}, failed {counts['failed']}"
    )
    if counts["failed"]:
        raise SystemExit(1)
