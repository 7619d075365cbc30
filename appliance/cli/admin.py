"""init, migrate, check, org, user and apikey commands."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import click

from appliance import audit
from appliance.audit.events import SchemaMigrated
from appliance.auth import apikeys, orgs, users
from appliance.auth.roles import Permission, Role
from appliance.cli.main import Obj, cli, opened, pass_obj, read_secret
from appliance.crypto.keys import load_db_key
from appliance.config import Settings
from appliance.errors import ApplianceError
from appliance.inference import registry
from appliance.inference.device import choose_device
from appliance.instance import cli_context, init_instance
from appliance.paths import DataPaths
from appliance.store import Database
from appliance.store.schema import current_version, head_version, migrate


@cli.command()
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Derive the database key from the passphrase in this file (argon2id) instead of a random key file.",
)
@pass_obj
def init(obj: Obj, passphrase_file: Path | None) -> None:
    """Create the data dir (0700), the database key, the encrypted database and the audit signing key."""
    settings = obj.settings()
    passphrase = read_secret(passphrase_file, "Database passphrase") if passphrase_file else None
    inst = init_instance(settings, cli_context(), passphrase)
    inst.close()
    click.echo(f"initialised {settings.data_dir}")
    click.echo(f"audit public key: {DataPaths(settings.data_dir).audit_public_key} (keep a copy off the box)")


@cli.command("migrate")
@pass_obj
def migrate_cmd(obj: Obj) -> None:
    """Apply pending schema migrations."""
    with opened(obj) as inst:
        with inst.db.read() as conn:
            before = current_version(conn)
        applied = migrate(inst.db)
        if applied:
            audit.record_alone(inst.db, cli_context(), SchemaMigrated(before, head_version()))
        for m in applied:
            click.echo(f"applied {m.version:04d}_{m.name}")
        click.echo(f"schema at {head_version()}")


@cli.command()
@pass_obj
def check(obj: Obj) -> None:
    """Check the data dir, keys, database integrity, migrations and the audit chain before serving."""
    settings = obj.settings()
    paths = DataPaths(settings.data_dir)
    failures = 0

    def report(ok: bool, what: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        click.echo(f"{'ok  ' if ok else 'FAIL'}  {what}")

    try:
        paths.require_existing()
    except ApplianceError as exc:
        report(False, exc.message)
        raise SystemExit(1) from None
    mode = stat.S_IMODE(os.stat(paths.root).st_mode)
    report(mode & 0o077 == 0, f"data dir {paths.root} (mode {mode:04o})")
    if paths.db_key.exists():
        key_mode = stat.S_IMODE(os.stat(paths.db_key).st_mode)
        report(key_mode & 0o077 == 0, f"key file {paths.db_key} (mode {key_mode:04o})")
    else:
        report(paths.kdf_params.exists(), "passphrase-derived key (kdf.json)")
    try:
        db = Database.open(paths.database, load_db_key(paths, settings.db_passphrase_file))
    except ApplianceError as exc:
        report(False, exc.message)
        raise SystemExit(1) from None
    try:
        with db.read() as conn:
            cipher = conn.execute("PRAGMA cipher_version").fetchone()[0]
            version = current_version(conn)
        report(True, f"database opens with the key (SQLCipher {cipher})")
        problems = db.integrity_check()
        report(problems == ["ok"], f"integrity_check: {', '.join(problems[:3])}")
        report(version == head_version(), f"schema {version} of {head_version()}")
        result = audit.verify(db)
        report(result.ok, f"audit chain: {result.events} events" + ("" if result.ok else f", {result.first_break}"))
        report(paths.audit_signing_key.exists(), "audit signing key present")
        _check_models(settings, db, report)
    finally:
        db.close()
    if failures:
        raise SystemExit(1)


def _check_models(settings: Settings, db: Database, report: Callable[[bool, str], None]) -> None:
    models_dir = settings.resolved_models_dir
    installed = {r.name: r for r in registry.list_installed(db)}
    for record in installed.values():
        status = registry.check(record, models_dir)
        problems = [f for f in status.files if not f.ok]
        detail = "" if not problems else f": {problems[0].path} " + (
            "missing" if problems[0].actual is None else f"has {problems[0].actual}, expected {problems[0].expected}"
        )
        report(status.state == "present", f"model {record.name} ({record.role}) {status.state}{detail}")
    needed = []
    if settings.embedder_engine == "onnx":
        needed.append(("embedder", settings.embedder_model))
    if settings.llm_engine == "local":
        needed.append(("llm", settings.llm_model))
    for role, name in needed:
        if name not in installed or installed[name].role != role:
            report(False, f"{role} model {name} is not installed (appliance models install)")
    try:
        report(True, choose_device(settings.device).describe())
    except ApplianceError as exc:
        report(False, exc.message)


# -- organisations -----------------------------------------------------------------------------------------


@cli.group()
def org() -> None:
    """Organisations on this box."""


@org.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Display name.")
@pass_obj
def org_add(obj: Obj, slug: str, name: str) -> None:
    """Create an organisation."""
    with opened(obj) as inst:
        created = orgs.create_org(inst.db, cli_context(), slug, name)
    click.echo(f"created organisation {created.slug} (id {created.id})")


@org.command("list")
@pass_obj
def org_list(obj: Obj) -> None:
    """List organisations."""
    with opened(obj) as inst:
        for o in orgs.list_orgs(inst.db):
            click.echo(f"{o.id}\t{o.slug}\t{o.name}")


# -- users -------------------------------------------------------------------------------------------------

ROLE = click.Choice([r.value for r in Role])


@cli.group()
def user() -> None:
    """Users and roles."""


@user.command("add")
@click.argument("email")
@click.option("--org", "org_slug", required=True, help="Organisation slug.")
@click.option("--role", required=True, type=ROLE)
@click.option("--name", default="", help="Display name.")
@click.option("--password-file", type=click.Path(path_type=Path, dir_okay=False), help="Read the password here.")
@pass_obj
def user_add(obj: Obj, email: str, org_slug: str, role: str, name: str, password_file: Path | None) -> None:
    """Add a user to an organisation (an existing user of another organisation gets a membership)."""
    with opened(obj) as inst:
        target = orgs.get_org_by_slug(inst.db, org_slug)
        ctx = cli_context(target.id)
        with inst.db.read() as conn:
            exists = conn.execute("SELECT 1 FROM users WHERE email = ?", (email.strip().lower(),)).fetchone()
        if exists:
            member = users.add_membership(inst.db, ctx, target.id, email, role)
            click.echo(f"added existing user {member.email} to {org_slug} as {role}")
            return
        password = read_secret(password_file, "Password")
        member = users.add_user(inst.db, inst.passwords, ctx, target.id, email, password, role, name)
    click.echo(f"created user {member.email} (id {member.id}) in {org_slug} as {role}")


@user.command("set-role")
@click.argument("email")
@click.option("--org", "org_slug", required=True)
@click.option("--role", required=True, type=ROLE)
@pass_obj
def user_set_role(obj: Obj, email: str, org_slug: str, role: str) -> None:
    """Change a user's role in an organisation."""
    with opened(obj) as inst:
        target = orgs.get_org_by_slug(inst.db, org_slug)
        member = users.find_member_by_email(inst.db, target.id, email)
        users.set_role(inst.db, cli_context(target.id), target.id, member.id, role)
    click.echo(f"{member.email} is now {role} in {org_slug}")


@user.command("disable")
@click.argument("email")
@click.option("--org", "org_slug", required=True)
@pass_obj
def user_disable(obj: Obj, email: str, org_slug: str) -> None:
    """Disable a user's sign-in and end their sessions."""
    with opened(obj) as inst:
        target = orgs.get_org_by_slug(inst.db, org_slug)
        member = users.find_member_by_email(inst.db, target.id, email)
        users.disable_user(inst.db, cli_context(target.id), target.id, member.id)
    click.echo(f"disabled {member.email}")


@user.command("set-password")
@click.argument("email")
@click.option("--org", "org_slug", required=True)
@click.option("--password-file", type=click.Path(path_type=Path, dir_okay=False))
@pass_obj
def user_set_password(obj: Obj, email: str, org_slug: str, password_file: Path | None) -> None:
    """Set a user's password (ends all their sessions)."""
    with opened(obj) as inst:
        target = orgs.get_org_by_slug(inst.db, org_slug)
        member = users.find_member_by_email(inst.db, target.id, email)
        password = read_secret(password_file, "New password")
        users.change_password(inst.db, inst.passwords, cli_context(target.id), member.id, password)
    click.echo(f"password changed for {member.email}")


@user.command("list")
@click.option("--org", "org_slug", required=True)
@pass_obj
def user_list(obj: Obj, org_slug: str) -> None:
    """List an organisation's users."""
    with opened(obj) as inst:
        target = orgs.get_org_by_slug(inst.db, org_slug)
        for m in users.list_members(inst.db, target.id):
            click.echo(f"{m.id}\t{m.email}\t{m.role.value}\t{'disabled' if m.disabled else 'active'}")


# -- API keys ----------------------------------------------------------------------------------------------


@cli.group()
def apikey() -> None:
    """API keys for integrations."""


@apikey.command("create")
@click.option("--org", "org_slug", required=True)
@click.option("--name", required=True)
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice([p.value for p in Permission]))
@pass_obj
def apikey_create(obj: Obj, org_slug: str, name: str, scopes: tuple[str, ...]) -> None:
    """Create an API key; the token is printed once and never stored."""
    with opened(obj) as inst:
        target = orgs.get_org_by_slug(inst.db, org_slug)
        ctx = cli_context(target.id)
        created = apikeys.create_key(inst.db, ctx, target.id, name, list(scopes), granter=None)
    click.echo(f"created API key {created.key.id} ({created.key.name}); the token is shown only now:")
    click.echo(created.token)


@apikey.command("revoke")
@click.argument("key_id", type=int)
@click.option("--org", "org_slug", required=True)
@pass_obj
def apikey_revoke(obj: Obj, key_id: int, org_slug: str) -> None:
    """Revoke an API key."""
    with opened(obj) as inst:
        target = orgs.get_org_by_slug(inst.db, org_slug)
        apikeys.revoke_key(inst.db, cli_context(target.id), target.id, key_id)
    click.echo(f"revoked API key {key_id}")


@apikey.command("list")
@click.option("--org", "org_slug", required=True)
@pass_obj
def apikey_list(obj: Obj, org_slug: str) -> None:
    """List API keys (never their secrets)."""
    with opened(obj) as inst:
        target = orgs.get_org_by_slug(inst.db, org_slug)
        for k in apikeys.list_keys(inst.db, target.id):
            state = "revoked" if k.revoked_at else "active"
            click.echo(f"{k.id}\t{k.name}\t{','.join(k.scopes)}\t{state}\tlast used {k.last_used_at or 'never'}")
