"""kb import, kb reindex."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from appliance.auth.orgs import get_org_by_slug, list_orgs
from appliance.cli.main import Obj, cli, opened, pass_obj, progress
from appliance.instance import Instance, cli_context
from appliance.retrieval.index import IndexRun
from appliance.knowledge.importers import common, formats


@cli.group()
def kb() -> None:
    """The knowledge base."""


@kb.command("import")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--dry-run", is_flag=True, help="Report what would be created, updated, unchanged or failed.")
@click.option(
    "--format", "fmt", type=click.Choice(formats.FORMATS), default="auto", show_default=True,
    help="What PATH is; auto tells it from the path.",
)  # fmt: skip
@pass_obj
def kb_import(obj: Obj, path: Path, org_slug: str, dry_run: bool, fmt: str) -> None:
    """Import articles from PATH: a markdown folder (front matter: id, title, category, tags, status), an HTML
    folder, a Notion (Markdown & CSV) or Confluence (HTML) zip export, a Help Scout or Zendesk JSON export, or one
    .md or .html file. Re-imports update changed articles by their id. Exit 1 if any article failed."""
    with opened(obj) as inst:
        org = get_org_by_slug(inst.db, org_slug)
        incoming = formats.read_path(path, fmt)
        ctx = cli_context(org.id)
        with progress(len(incoming) * 20, "importing") as bar:  # a bar once the import takes a moment
            report = common.apply(inst.db, ctx, org.id, incoming, dry_run, lambda n: bar(20 * n), source=path.name)
        if not dry_run:
            pending = len(inst.knowledge.indexer.pending(org.id))
            with progress(pending * 20, "indexing") as bar:
                run = inst.knowledge.indexer.process_pending(org.id, lambda n: bar(20 * n))
            _index_line(inst, run)
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


def _index_line(inst: Instance, run: IndexRun, prefix: str = "") -> None:
    dense = "" if inst.knowledge.embedder_error is None else f" (lexical only: {inst.knowledge.embedder_error})"
    held = f"; {run.held} held for review (GET /api/knowledge/flags)" if run.held else ""
    click.echo(
        f"{prefix}indexed {run.changed} articles: {run.chunks_added} passages, {run.embedded} embedded{dense}{held}",
        err=True,
    )


@kb.command("reindex")
@click.option("--org", "org_slug", help="Organisation slug (default: every organisation).")
@pass_obj
def kb_reindex(obj: Obj, org_slug: str | None) -> None:
    """Rebuild the retrieval index from the database: every published article is chunked and indexed again, and
    passages are embedded again where their embedding is missing or came from another model."""
    with opened(obj) as inst:
        targets = [get_org_by_slug(inst.db, org_slug)] if org_slug else list_orgs(inst.db)
        for org in targets:
            with inst.db.read() as conn:
                count = conn.execute("SELECT count(*) FROM articles WHERE org_id = ?", (org.id,)).fetchone()[0]
            with click.progressbar(length=int(count), label=f"reindexing {org.slug}", file=sys.stderr) as bar:
                run = inst.knowledge.indexer.reindex(org.id, bar.update)
            _index_line(inst, run, f"{org.slug}: ")
