"""audit verify | export | verify-export."""

from __future__ import annotations

from pathlib import Path

import click

from appliance import audit
from appliance.audit.events import AuditExported
from appliance.audit.export import export, verify_export
from appliance.auth.orgs import get_org_by_slug
from appliance.cli.main import Obj, cli, opened, pass_obj, progress
from appliance.crypto.signing import load_public_key
from appliance.instance import cli_context
from appliance.store import Database


@cli.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail."""


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute("SELECT count(*) FROM audit_events").fetchone()[0])


@audit_group.command("verify")
@pass_obj
def audit_verify(obj: Obj) -> None:
    """Verify the hash chain; names the first broken event. Exit 1 when broken."""
    with opened(obj) as inst:
        with progress(_count(inst.db), "verifying") as bar:
            result = audit.verify(inst.db, progress=bar)
    if result.ok:
        click.echo(f"ok: {result.events} events, chain intact")
        return
    click.echo(f"BROKEN: {result.first_break}", err=True)
    raise SystemExit(1)


@audit_group.command("export")
@click.option("--since", help="Start (inclusive), a date or ISO date-time, UTC.")
@click.option("--until", help="End (exclusive), a date or ISO date-time, UTC.")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False), help="New, empty folder.")
@click.option("--org", "org_slug", help="Only this organisation's chain (default: all).")
@pass_obj
def audit_export(obj: Obj, since: str | None, until: str | None, out: Path, org_slug: str | None) -> None:
    """Write events.jsonl, a manifest with SHA-256 sums and an Ed25519 signature to OUT."""
    with opened(obj) as inst:
        org_ids = [get_org_by_slug(inst.db, org_slug).id] if org_slug else None
        with progress(_count(inst.db), "exporting") as bar:
            result = export(inst.db, inst.signing_key(), out, since, until, org_ids, progress=bar)
        audit.record_alone(
            inst.db,
            cli_context(org_ids[0] if org_ids else None),
            AuditExported(since, until, result.events, result.manifest_sha256),
        )
    click.echo(f"exported {result.events} events to {out}")
    click.echo(f"manifest sha256 {result.manifest_sha256}")


@audit_group.command("verify-export")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The appliance's audit public key, obtained separately (recommended).",
)
def audit_verify_export(directory: Path, public_key: Path | None) -> None:
    """Check an export with nothing but the export and the public key. Exit 1 when it fails."""
    key = load_public_key(public_key.read_bytes(), str(public_key)) if public_key else None
    lines = sum(1 for _ in (directory / "events.jsonl").open("rb")) if (directory / "events.jsonl").exists() else 0
    with progress(lines, "verifying") as bar:
        result = verify_export(directory, key, progress=bar)
    if not result.ok:
        click.echo(f"INVALID: {result.problem}", err=True)
        raise SystemExit(1)
    click.echo(f"ok: {result.events} events, signature and chain verified")
    if result.signer_from_export:
        click.echo(
            "note: checked against the public key inside the export; pass --public-key to prove who signed it",
            err=True,
        )
