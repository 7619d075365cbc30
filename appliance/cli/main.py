"""`appliance`: set up, run and administer the appliance from the box itself.

Every command takes --data-dir and --config; every failure prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from appliance.config import Settings, load_settings
from appliance.errors import ApplianceError
from appliance.instance import Instance, open_instance


class Obj:
    def __init__(self, data_dir: Path | None, config: Path | None) -> None:
        self.data_dir = data_dir
        self.config = config

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(self.config, data_dir=self.data_dir, **overrides)


pass_obj = click.make_pass_decorator(Obj)


@contextmanager
def opened(obj: Obj, **overrides: Any) -> Iterator[Instance]:
    inst = open_instance(obj.settings(**overrides))
    try:
        yield inst
    finally:
        inst.close()


@contextmanager
def progress(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when there is enough work to wait for; silent otherwise."""
    if length < 2000:
        yield lambda n: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar="APPLIANCE_DATA_DIR",
    help="Data directory (default: the data_dir setting).",
)
@click.option("--config", type=click.Path(path_type=Path), help="TOML settings file.")
@click.version_option("0.1.0", prog_name="appliance")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, config: Path | None) -> None:
    """Self-hosted AI customer-support appliance."""
    ctx.obj = Obj(data_dir, config)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except ApplianceError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def read_secret(path: Path | None, prompt: str) -> str:
    if path is not None:
        try:
            return path.read_text("utf-8").rstrip("\r\n")
        except OSError as exc:
            raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True))


def new_admin_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters from 120 random bits


from appliance.cli import admin, answers_cmds, audit_cmds, eval_cmds, eval_injection, eval_intents, eval_sentiment, kb_cmds, models_cmds, retention_cmds, server  # noqa: E402  (commands register)

__all__ = ["admin", "answers_cmds", "audit_cmds", "cli", "eval_cmds", "eval_injection", "eval_intents", "eval_sentiment", "kb_cmds", "main", "models_cmds", "retention_cmds", "server"]
