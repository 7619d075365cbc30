"""retention purge."""

from __future__ import annotations

import click

from appliance.cli.main import Obj, cli, opened, pass_obj
from appliance.instance import cli_context
from appliance.retention import conversations


@cli.group()
def retention() -> None:
    """Purge customer data past its retention period."""


@retention.command("purge")
@click.option("--days", type=click.IntRange(min=1), help="Override conversation_retention_days for this run.")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@pass_obj
def purge(obj: Obj, days: int | None, dry_run: bool) -> None:
    """Delete conversations (with their messages, provenance and knowledge gaps) whose last activity is older than
    the retention period. Each organisation's purge is audited."""
    with opened(obj) as inst:
        period = days or inst.settings.conversation_retention_days
        results = conversations.purge(inst.db, cli_context(), period, dry_run=dry_run)
    prefix = "dry run: would purge" if dry_run else "purged"
    for r in results:
        click.echo(f"{prefix} org {r.org_id}: {r.conversations} conversations, {r.messages} messages, "
                   f"{r.knowledge_gaps} knowledge gaps (last activity before {r.cutoff})")  # fmt: skip
