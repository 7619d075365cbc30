"""serve and demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from appliance.auth import orgs, users
from appliance.auth.roles import Role
from appliance.inference import registry
from appliance.knowledge.importers import common, markdown
from appliance.cli.main import Obj, cli, new_admin_password, pass_obj
from appliance.config import Settings
from appliance.instance import Instance, cli_context, init_instance, open_instance
from appliance.logs import configure_logging
from appliance.paths import DataPaths

DEMO_ORG = "demo"
DEMO_ADMIN = "admin@demo.example"
DEMO_KB = Path(__file__).resolve().parents[1] / "demo_kb" / "articles"


def run_server(inst: Instance) -> None:
    import uvicorn

    from appliance.web.app import create_app

    settings = inst.settings
    from appliance.tasks import Tasks

    configure_logging(settings.log_level, also=("uvicorn", "uvicorn.error"))
    app = create_app(inst, Tasks(inst))
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert_file) if settings.tls else None,
        ssl_keyfile=str(settings.tls_key_file) if settings.tls else None,
        access_log=False,  # our own structured request log replaces it
        log_config=None,  # keep the JSON handlers configured above
        server_header=False,
    )


def print_urls(settings: Settings) -> None:
    scheme = "https" if settings.tls else "http"
    base = f"{scheme}://{settings.host}:{settings.port}"
    click.echo(f"health:   {base}/healthz")
    click.echo(f"API docs: {base}/docs")
    click.echo(f"console:  {base}/console/")
    click.echo(f"sign in:  POST {base}/api/auth/login")


DEMO_LOGIN_FILE = "demo-admin-login.txt"


def write_login(path: Path, text: str) -> Path:
    """The demo admin's login in a file only the appliance's user may read, created new (never over another)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@cli.command()
@click.option("--host", help="Listen address (default: the host setting).")
@click.option("--port", type=int, help="Listen port (default: the port setting).")
@pass_obj
def serve(obj: Obj, host: str | None, port: int | None) -> None:
    """Serve the web API; applies pending migrations first."""
    inst = open_instance(obj.settings(host=host, port=port), apply_migrations=True)
    try:
        print_urls(inst.settings)
        run_server(inst)
    finally:
        inst.close()


@cli.command()
@click.option("--host", help="Listen address (default: the host setting).")
@click.option("--port", type=int, help="Listen port (default: the port setting).")
@pass_obj
def demo(obj: Obj, host: str | None, port: int | None) -> None:
    """Start with embedded defaults: creates a data dir with a demo organisation and admin if there is none,
    prints the admin login once, then serves."""
    settings = obj.settings(host=host, port=port)
    paths = DataPaths(settings.data_dir)
    if not paths.database.exists():
        inst = init_instance(settings, cli_context())
        org = orgs.create_org(inst.db, cli_context(), DEMO_ORG, "Riverside Clinic (demo)")
        password = new_admin_password()
        users.add_user(
            inst.db, inst.passwords, cli_context(org.id), org.id, DEMO_ADMIN, password, Role.ADMIN.value, "Demo admin"
        )
        click.echo(f"created {settings.data_dir}")
        if sys.stdout.isatty():
            click.echo(f"admin login (shown once): {DEMO_ADMIN} / {password}")
        else:  # under a service manager stdout is a journal, kept and readable by more people than a 0600 file
            where = write_login(paths.root / DEMO_LOGIN_FILE, f"{DEMO_ADMIN} / {password}\n")
            click.echo(f"admin login written to {where} (mode 0600): read it, then delete it")
    else:
        inst = open_instance(settings, apply_migrations=True)
        click.echo(f"using {settings.data_dir}; the admin login was printed when it was created")
        click.echo(f"  (reset it with: appliance user set-password {DEMO_ADMIN} --org {DEMO_ORG})")
    try:
        install_shipped_models(inst)
        load_demo_kb(inst)
        ensure_demo_widget(inst)
        print_urls(settings)
        run_server(inst)
    finally:
        inst.close()


def ensure_demo_widget(inst: Instance) -> None:
    """The demo organisation's widget key (created once), so /demo shows the widget."""
    from appliance.conversations import widget

    org = orgs.get_org_by_slug(inst.db, DEMO_ORG)
    if not any(not k.revoked for k in widget.list_keys(inst.db, org.id)):
        widget.create_key(inst.db, cli_context(org.id), org.id, {"greeting": "Hello! Ask me about the portal, "
                          "appointments, billing or visiting hours.", "title": "Riverside Clinic help"})  # fmt: skip
    click.echo(f"demo intranet page with the chat widget: http://{inst.settings.host}:{inst.settings.port}/demo",
               err=True)  # fmt: skip


def load_demo_kb(inst: Instance) -> None:
    """The demo organisation's help centre, imported (idempotently) and indexed before serving."""
    org = orgs.get_org_by_slug(inst.db, DEMO_ORG)
    report = common.apply(inst.db, cli_context(org.id), org.id, markdown.read_folder(DEMO_KB), dry_run=False)
    counts = report.counts
    click.echo(f"demo knowledge base: {counts['created']} created, {counts['updated']} updated, "
               f"{counts['unchanged']} unchanged, {counts['failed']} failed", err=True)  # fmt: skip
    run = inst.knowledge.indexer.process_pending(org.id)
    if run.changed:
        click.echo(f"indexed {run.changed} articles ({run.chunks_added} passages)", err=True)


def install_shipped_models(inst: Instance) -> None:
    """Put the manifest's models in place (a no-op for those already installed and verified)."""
    manifest = inst.settings.models_manifest
    for spec in registry.load_manifest(manifest):
        click.echo(f"model {spec.name}: checking ...", err=True)
        registry.install(inst.db, cli_context(), inst.settings.resolved_models_dir, spec, manifest.parent)
