"""`--help` works on the program and on every command and subcommand (walked from the click group, so a new
command is covered without touching this file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from appliance.cli.main import cli

APPLIANCE = Path(sys.executable).parent / "appliance"


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            found += _walk(command.commands[name], path + (name,))
    return found


COMMANDS = _walk(cli)


def test_cli_help_walk_finds_the_known_commands() -> None:
    names = {" ".join(path) for path in COMMANDS}
    for expected in (
        "", "init", "check", "migrate", "serve", "demo", "org add", "org list", "user add", "user set-role",
        "user disable", "user list", "apikey create", "apikey list", "apikey revoke", "audit verify",
        "audit export", "audit verify-export",
    ):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "appliance" for p in COMMANDS])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_cli_help_on_every_command(path: tuple[str, ...], flag: str) -> None:
    env = {k: None for k in os.environ if k.startswith("APPLIANCE_")}  # None: unset while the command runs
    result = CliRunner().invoke(cli, [*path, flag], env=env, prog_name="appliance", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {' '.join(('appliance', *path))} "), result.output
    assert "Traceback" not in result.output


def test_cli_help_and_version_through_the_console_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    for args in (["--help"], ["-h"], ["user", "--help"]):
        proc = subprocess.run(
            [str(APPLIANCE), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("Usage: appliance"), proc.stdout
        assert proc.stderr == ""
    version = subprocess.run(
        [str(APPLIANCE), "--version"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0
    assert version.stdout.strip() == "appliance, version 0.1.0"
    assert not (tmp_path / "xdg").exists()  # help touches no data dir
