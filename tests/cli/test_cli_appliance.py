"""The `appliance` console script, driven as an operator drives it: a real subprocess, a data dir under tmp_path, a
clean environment (no APPLIANCE_* variables) and the real SQLCipher database. No mocks.

Most tests start from a copy of one data dir made by a real `appliance init` (copying is far cheaper than another
init), so the whole module stays well under a minute.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlcipher3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

APPLIANCE = Path(sys.executable).parent / "appliance"
WRONG_KEY = "cannot open database: wrong key or not an appliance database"
PASSWORD = "correct horse battery staple"
PASSPHRASE = "a long database passphrase for the box"


# -- running the CLI ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def out_lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("APPLIANCE_") and k not in ("CREDENTIALS_DIRECTORY", "XDG_DATA_HOME")
    }
    # Should a command ever ignore --data-dir, its default lands inside tmp_path, never in the real home.
    env["XDG_DATA_HOME"] = str(home / "xdg-data-home")
    # These tests are about storage, keys and the audit trail: run `check` without model engines, which
    # tests/inference covers (installing them here would export the embedder for every data dir).
    env["APPLIANCE_EMBEDDER_ENGINE"] = "fake"
    env["APPLIANCE_LLM_ENGINE"] = "none"
    env.update(extra)
    return env


def run_cli(
    home: Path,
    data_dir: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Result:
    assert APPLIANCE.exists(), f"console script not found at {APPLIANCE}"
    cmd = [str(APPLIANCE)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    proc = subprocess.run(
        cmd + list(args),
        cwd=home,
        env=env if env is not None else clean_env(home),
        stdin=subprocess.DEVNULL,  # a command that unexpectedly prompts fails instead of hanging
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=preexec_fn,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root (files, -wal/-shm included, and folders) -> SHA-256 of its bytes and its mode."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_file():
            found[str(path.relative_to(root))] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {mode:04o}"
        else:
            found[str(path.relative_to(root)) + "/"] = f"dir {mode:04o}"
    return found


def assert_one_error_line(result: Result, *needles: str) -> str:
    assert result.code == 2, result
    assert len(result.err_lines) == 1, result
    for needle in needles:
        assert needle in result.err_lines[0], result
    return result.err_lines[0]


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir made by a real `appliance init` (raw key mode), copied by the tests that need one."""
    home = tmp_path_factory.mktemp("cli-template")
    data = home / "data"
    result = run_cli(home, data, "init")
    assert result.code == 0, result
    return data


@pytest.fixture
def data(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(template, copy, symlinks=True)  # copy2: contents and modes
    return copy


@pytest.fixture
def cli(tmp_path: Path, data: Path) -> Callable[..., Result]:
    def call(*args: str, **kwargs: object) -> Result:
        return run_cli(tmp_path, data, *args, **kwargs)  # type: ignore[arg-type]

    return call


def replace_key_with_random(data: Path) -> None:
    key_file = data / "keys" / "db.key"
    mode = stat.S_IMODE(key_file.stat().st_mode)
    key_file.write_text(secrets.token_hex(32) + "\n")
    key_file.chmod(mode)


# -- 1. init -----------------------------------------------------------------------------------------------


def test_cli_init_creates_private_encrypted_data_dir_and_refuses_a_second_init(tmp_path: Path) -> None:
    data = tmp_path / "nested" / "data"
    result = run_cli(tmp_path, data, "init")
    assert result.code == 0, result
    assert result.err == "", result
    assert f"initialised {data}" in result.out
    assert "audit-signing.pub" in result.out

    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "keys").stat().st_mode) == 0o700
    key_file = data / "keys" / "db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", key_file.read_text("ascii").strip())
    assert not (data / "keys" / "kdf.json").exists()
    assert stat.S_IMODE((data / "keys" / "audit-signing.pem").stat().st_mode) == 0o600
    assert (data / "keys" / "audit-signing.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")

    db_file = data / "appliance.db"
    assert stat.S_IMODE(db_file.stat().st_mode) == 0o600
    head = db_file.read_bytes()
    assert not head.startswith(b"SQLite format 3")
    with pytest.raises(sqlite3.DatabaseError):  # the standard library cannot read it either
        conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()

    before = snapshot(data)
    again = run_cli(tmp_path, data, "init")
    line = assert_one_error_line(again, "already initialised")
    assert line.startswith("error: ")
    assert again.out == ""
    assert snapshot(data) == before

    # The fresh install passes its own pre-flight check.
    check = run_cli(tmp_path, data, "check")
    assert check.code == 0, check
    assert all(line.startswith("ok") for line in check.out_lines), check
    assert check.err == ""
    assert snapshot(data) == before


# -- 2. wrong key and foreign files ------------------------------------------------------------------------

WRONG_KEY_COMMANDS = {
    "org-list": ["org", "list"],
    "audit-verify": ["audit", "verify"],
    "migrate": ["migrate"],
    "user-list": ["user", "list", "--org", "north"],
    "apikey-list": ["apikey", "list", "--org", "north"],
    "audit-export": ["audit", "export", "--out", "{export}"],
}


@pytest.mark.parametrize("command", list(WRONG_KEY_COMMANDS.values()), ids=list(WRONG_KEY_COMMANDS))
def test_cli_wrong_key_is_one_line_exit_2_and_changes_nothing(
    cli: Callable[..., Result], data: Path, tmp_path: Path, command: list[str]
) -> None:
    good_key = (data / "keys" / "db.key").read_bytes()
    replace_key_with_random(data)
    export = tmp_path / "export"
    before = snapshot(data)

    result = cli(*[arg.replace("{export}", str(export)) for arg in command])

    assert_one_error_line(result, WRONG_KEY)
    assert result.out == ""
    assert "sqlcipher" not in result.err.lower()  # SQLCipher's own log lines stay silent
    assert snapshot(data) == before
    assert not export.exists()

    if command == ["org", "list"]:  # once is enough: with the right key back, the same install still works
        (data / "keys" / "db.key").write_bytes(good_key)
        assert cli("org", "list").code == 0


def test_cli_check_with_wrong_key_reports_one_fail_line(cli: Callable[..., Result], data: Path) -> None:
    """`check` is a checklist on stdout (exit 1 when something fails); its failure line names the wrong key once and
    nothing at all reaches stderr (no SQLCipher log noise)."""
    replace_key_with_random(data)
    before = snapshot(data)

    result = cli("check")

    assert result.code == 1, result
    assert result.err == "", result
    hits = [line for line in result.out_lines if WRONG_KEY in line]
    assert len(hits) == 1, result
    assert hits[0].startswith("FAIL"), result
    assert snapshot(data) == before


def _plain_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('not an appliance database')")
    conn.commit()
    conn.close()


def _text_file(path: Path) -> None:
    path.write_text("this is a text file, not a database\n")


def _other_sqlcipher_db_same_key(path: Path) -> None:
    """A valid SQLCipher database that decrypts with the install's key but is not the appliance's."""
    key = (path.parent / "keys" / "db.key").read_text().strip()
    conn = sqlcipher3.connect(str(path))
    conn.execute(f"PRAGMA key = \"x'{key}'\"")
    conn.execute("CREATE TABLE other (x)")
    conn.execute("INSERT INTO other VALUES (1)")
    conn.commit()
    conn.close()


FOREIGN = {"plain-sqlite": _plain_sqlite, "text-file": _text_file, "other-sqlcipher-db": _other_sqlcipher_db_same_key}


@pytest.mark.parametrize("make", list(FOREIGN.values()), ids=list(FOREIGN))
def test_cli_foreign_database_file_is_refused_without_touching_it(
    cli: Callable[..., Result], data: Path, make: Callable[[Path], None]
) -> None:
    db_file = data / "appliance.db"
    db_file.unlink()
    make(db_file)
    db_file.chmod(0o600)
    before = snapshot(data)

    for command in (["org", "list"], ["audit", "verify"]):
        result = cli(*command)
        assert_one_error_line(result, WRONG_KEY)
        assert result.out == ""
        assert snapshot(data) == before, command

    check = cli("check")
    assert check.code == 1, check
    assert check.err == "", check
    assert [line for line in check.out_lines if WRONG_KEY in line and line.startswith("FAIL")], check
    assert snapshot(data) == before


CRASH_AFTER_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from appliance.auth import orgs
    from appliance.config import Settings
    from appliance.instance import cli_context, open_instance

    inst = open_instance(Settings(data_dir=Path(sys.argv[1])))
    orgs.create_org(inst.db, cli_context(), "crashed", "Written just before a crash")
    os.kill(os.getpid(), signal.SIGKILL)  # like a power cut: no close, the change is only in the WAL
    """
)


def test_cli_wrong_key_after_unclean_shutdown_changes_nothing(
    cli: Callable[..., Result], data: Path, tmp_path: Path
) -> None:
    """After a crash the newest commits sit in appliance.db-wal (with its -shm index). A command run with the wrong
    key must still leave every byte alone: no checkpoint into appliance.db, no deleted -wal/-shm."""
    script = tmp_path / "crash.py"
    script.write_text(CRASH_AFTER_WRITE)
    crashed = subprocess.run(
        [sys.executable, str(script), str(data)], env=clean_env(tmp_path), capture_output=True, timeout=60
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert (data / "appliance.db-wal").stat().st_size > 0
    assert (data / "appliance.db-shm").exists()
    good_key = (data / "keys" / "db.key").read_bytes()
    replace_key_with_random(data)
    before = snapshot(data)

    result = cli("org", "list")

    assert_one_error_line(result, WRONG_KEY)
    after = snapshot(data)
    assert sorted(after) == sorted(before), "the set of files in the data dir changed"
    assert after == before, "a byte in the data dir changed"

    (data / "keys" / "db.key").write_bytes(good_key)
    listed = cli("org", "list")
    assert listed.code == 0, listed
    assert "crashed" in listed.out


# -- 3. missing, foreign and read-only data dirs -----------------------------------------------------------


def test_cli_missing_data_dir_says_run_init(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    result = run_cli(tmp_path, missing, "org", "list")
    line = assert_one_error_line(result, str(missing), "does not exist", "appliance init")
    assert line.startswith("error: ")
    assert not missing.exists()

    check = run_cli(tmp_path, missing, "check")
    assert check.code == 1, check
    assert check.out_lines == [f"FAIL  data dir {missing} does not exist; run `appliance init` first"], check
    assert not missing.exists()


def test_cli_data_dir_without_database_or_not_a_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_error_line(run_cli(tmp_path, empty, "org", "list"), "holds no appliance database", "appliance init")
    assert list(empty.iterdir()) == []

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert_one_error_line(run_cli(tmp_path, a_file, "org", "list"), "is not a directory")
    assert_one_error_line(run_cli(tmp_path, a_file, "init"), "is not a directory")
    assert a_file.read_text() == "x"


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def _drop_dac_capabilities() -> None:
    """In the child, before exec: root without DAC override obeys file modes like any other user."""
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.fixture
def as_unprivileged(tmp_path: Path) -> Callable[[], None] | None:
    """A preexec_fn that makes directory modes bind the CLI. Tests run as root here, and root ignores 0500 (the app
    then really can write, so it rightly goes ahead); dropping CAP_DAC_OVERRIDE from the child gives the
    behaviour an unprivileged service user sees. Non-root runs need nothing."""
    if os.geteuid() != 0:
        return None
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir(mode=0o500)
    probe_dir.chmod(0o500)
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import os, sys; sys.exit(1 if os.access(sys.argv[1], os.W_OK) else 0)", probe_dir],
            preexec_fn=_drop_dac_capabilities,
            timeout=30,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE for the child: {exc}")
    finally:
        probe_dir.chmod(0o700)
    if probe.returncode != 0:
        pytest.skip("running as root and dropping CAP_DAC_OVERRIDE does not make 0500 binding here")
    return _drop_dac_capabilities


def test_cli_read_only_data_dir_is_refused_and_unchanged(
    data: Path, tmp_path: Path, as_unprivileged: Callable[[], None] | None
) -> None:
    data.chmod(0o500)
    try:
        before = snapshot(data)
        for command in (["org", "add", "west", "--name", "West"], ["org", "list"], ["audit", "verify"]):
            result = run_cli(tmp_path, data, *command, preexec_fn=as_unprivileged)
            assert_one_error_line(result, str(data), "not writable")
            assert snapshot(data) == before, command
        check = run_cli(tmp_path, data, "check", preexec_fn=as_unprivileged)
        assert check.code == 1, check
        assert any(line.startswith("FAIL") and "not writable" in line for line in check.out_lines), check
    finally:
        data.chmod(0o700)
    assert run_cli(tmp_path, data, "org", "list").code == 0


def test_cli_init_under_read_only_parent_leaves_nothing(
    tmp_path: Path, as_unprivileged: Callable[[], None] | None
) -> None:
    parent = tmp_path / "readonly-parent"
    parent.mkdir()
    existing = parent / "existing-empty"
    existing.mkdir(mode=0o700)
    existing.chmod(0o500)
    parent.chmod(0o500)
    try:
        for target in (parent / "data", parent / "a" / "b" / "data"):
            result = run_cli(tmp_path, target, "init", preexec_fn=as_unprivileged)
            assert_one_error_line(result, "cannot create data dir", "not writable")
        result = run_cli(tmp_path, existing, "init", preexec_fn=as_unprivileged)
        assert_one_error_line(result, str(existing), "not writable")
        assert sorted(p.name for p in parent.iterdir()) == ["existing-empty"]
        assert list(existing.iterdir()) == []
    finally:
        existing.chmod(0o700)
        parent.chmod(0o700)


# -- 4. passphrase-derived key ------------------------------------------------------------------------------


def test_cli_passphrase_mode(tmp_path: Path) -> None:
    data = tmp_path / "data"
    right = tmp_path / "passphrase"
    right.write_text(PASSPHRASE + "\n")
    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("another passphrase, also long enough\n")

    init = run_cli(tmp_path, data, "init", "--passphrase-file", str(right))
    assert init.code == 0, init
    keys = data / "keys"
    assert (keys / "kdf.json").is_file()
    assert not (keys / "db.key").exists()
    params = json.loads((keys / "kdf.json").read_text())
    assert params["kdf"] == "argon2id"
    assert PASSPHRASE not in (keys / "kdf.json").read_text()
    assert not (data / "appliance.db").read_bytes().startswith(b"SQLite format 3")

    # Without the passphrase: one line saying how to provide it.
    no_pass = run_cli(tmp_path, data, "org", "list")
    assert_one_error_line(no_pass, "APPLIANCE_DB_PASSPHRASE_FILE")

    with_right = clean_env(tmp_path, APPLIANCE_DB_PASSPHRASE_FILE=str(right))
    added = run_cli(tmp_path, data, "org", "add", "north", "--name", "North Clinic", env=with_right)
    assert added.code == 0, added
    listed = run_cli(tmp_path, data, "org", "list", env=with_right)
    assert listed.code == 0, listed
    assert listed.out_lines == ["1\tnorth\tNorth Clinic"]
    check = run_cli(tmp_path, data, "check", env=with_right)
    assert check.code == 0, check

    before = snapshot(data)
    with_wrong = clean_env(tmp_path, APPLIANCE_DB_PASSPHRASE_FILE=str(wrong))
    for command in (["org", "list"], ["audit", "verify"]):
        result = run_cli(tmp_path, data, *command, env=with_wrong)
        assert_one_error_line(result, WRONG_KEY)
        assert result.out == ""
    assert snapshot(data) == before

    missing = clean_env(tmp_path, APPLIANCE_DB_PASSPHRASE_FILE=str(tmp_path / "not-there"))
    assert_one_error_line(run_cli(tmp_path, data, "org", "list", env=missing), "cannot read database passphrase")
    assert snapshot(data) == before


def test_cli_short_passphrase_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("fifteen chars!!\n")  # 15 characters: one too few
    data = tmp_path / "data"

    result = run_cli(tmp_path, data, "init", "--passphrase-file", str(short))
    assert_one_error_line(result, "at least 16 characters")
    assert not data.exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    result = run_cli(tmp_path, existing, "init", "--passphrase-file", str(short))
    assert_one_error_line(result, "at least 16 characters")
    assert list(existing.iterdir()) == []


# -- 5. organisations and users ----------------------------------------------------------------------------


def _members(cli: Callable[..., Result], org: str) -> dict[str, tuple[str, str]]:
    result = cli("user", "list", "--org", org)
    assert result.code == 0, result
    rows = [line.split("\t") for line in result.out_lines]
    return {email: (role, state) for _id, email, role, state in rows}


def test_cli_orgs_and_users(cli: Callable[..., Result], tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    weak_file = tmp_path / "weak"
    weak_file.write_text("elevenchars\n")  # 11 characters

    assert cli("org", "add", "north", "--name", "North Clinic").code == 0
    assert cli("org", "add", "south", "--name", "South Bank").code == 0
    assert_one_error_line(cli("org", "add", "north", "--name", "Again"), "already exists")
    assert cli("org", "list").out_lines == ["1\tnorth\tNorth Clinic", "2\tsouth\tSouth Bank"]

    pw = ["--password-file", str(password_file)]
    for email, role in (("ada@north.example", "admin"), ("bob@north.example", "admin"), ("cy@north.example", "agent")):
        added = cli("user", "add", email, "--org", "north", "--role", role, "--name", email.split("@")[0], *pw)
        assert added.code == 0, added
        assert f"created user {email}" in added.out

    # Same email in the same organisation, in any letter case: refused with one clear line.
    for email in ("cy@north.example", "CY@North.Example"):
        dup = cli("user", "add", email, "--org", "north", "--role", "agent", *pw)
        assert_one_error_line(dup, "already a member")

    # Weak password: refused, and no user is created.
    weak_pw = ["--password-file", str(weak_file)]
    weak = cli("user", "add", "dee@north.example", "--org", "north", "--role", "agent", *weak_pw)
    assert_one_error_line(weak, "at least 12 characters")

    # Unknown role: click's choice error, exit 2.
    bad_role = cli("user", "add", "eve@north.example", "--org", "north", "--role", "wizard", *pw)
    assert bad_role.code == 2, bad_role
    assert "Invalid value for '--role'" in bad_role.err
    assert "wizard" in bad_role.err

    # Unknown organisation.
    assert_one_error_line(cli("user", "add", "fay@x.example", "--org", "nowhere", "--role", "agent", *pw), "not found")

    assert _members(cli, "north") == {
        "ada@north.example": ("admin", "active"),
        "bob@north.example": ("admin", "active"),
        "cy@north.example": ("agent", "active"),
    }

    # An existing user of another organisation gets a membership (no password needed).
    joined = cli("user", "add", "cy@north.example", "--org", "south", "--role", "knowledge_editor")
    assert joined.code == 0, joined
    assert "added existing user" in joined.out
    assert _members(cli, "south") == {"cy@north.example": ("knowledge_editor", "active")}

    assert cli("user", "set-role", "cy@north.example", "--org", "north", "--role", "support_manager").code == 0
    assert cli("user", "disable", "bob@north.example", "--org", "north").code == 0
    assert_one_error_line(cli("user", "disable", "nobody@north.example", "--org", "north"), "no member")
    # The last active admin cannot be disabled.
    assert_one_error_line(cli("user", "disable", "ada@north.example", "--org", "north"), "last active admin")

    assert _members(cli, "north") == {
        "ada@north.example": ("admin", "active"),
        "bob@north.example": ("admin", "disabled"),
        "cy@north.example": ("support_manager", "active"),
    }
    assert _members(cli, "south") == {"cy@north.example": ("knowledge_editor", "active")}

    verify = cli("audit", "verify")
    assert verify.code == 0, verify
    assert verify.out.startswith("ok: ")


# -- 6. API keys -------------------------------------------------------------------------------------------


def test_cli_apikeys_token_shown_once(cli: Callable[..., Result], tmp_path: Path) -> None:
    assert cli("org", "add", "north", "--name", "North Clinic").code == 0

    created = cli("apikey", "create", "--org", "north", "--name", "helpdesk", "--scope", "view_audit")
    assert created.code == 0, created
    tokens = [line for line in created.out_lines if line.startswith("apl_")]
    assert len(tokens) == 1, created
    token = tokens[0]
    assert re.fullmatch(r"apl_\S{20,}", token)
    key_id = re.search(r"created API key (\d+)", created.out)
    assert key_id is not None, created
    secret_part = token.split("_", 2)[2]  # apl_<prefix>_<secret>; the secret itself may hold "_"

    listed = cli("apikey", "list", "--org", "north")
    assert listed.code == 0, listed
    assert len(listed.out_lines) == 1
    assert listed.out_lines[0].split("\t")[:4] == [key_id.group(1), "helpdesk", "view_audit", "active"]
    assert token not in listed.out + listed.err
    assert secret_part not in listed.out + listed.err

    bad_scope = cli("apikey", "create", "--org", "north", "--name", "x", "--scope", "launch_missiles")
    assert bad_scope.code == 2, bad_scope
    assert "Invalid value for '--scope'" in bad_scope.err

    revoked = cli("apikey", "revoke", key_id.group(1), "--org", "north")
    assert revoked.code == 0, revoked
    assert_one_error_line(cli("apikey", "revoke", "999", "--org", "north"), "not found")
    listed = cli("apikey", "list", "--org", "north")
    assert listed.out_lines[0].split("\t")[:4] == [key_id.group(1), "helpdesk", "view_audit", "revoked"]
    assert token not in listed.out

    # Neither the token nor its secret part lands in the audit trail.
    export = tmp_path / "export"
    assert cli("audit", "export", "--out", str(export)).code == 0
    events = (export / "events.jsonl").read_text()
    assert '"action":"apikey.created"' in events and '"action":"apikey.revoked"' in events
    assert secret_part not in events


# -- 7. audit ----------------------------------------------------------------------------------------------


def _event_count(cli: Callable[..., Result]) -> int:
    result = cli("audit", "verify")
    assert result.code == 0, result
    match = re.fullmatch(r"ok: (\d+) events, chain intact", result.out.strip())
    assert match, result
    return int(match.group(1))


def test_cli_audit_export_and_verify_export(cli: Callable[..., Result], data: Path, tmp_path: Path) -> None:
    assert _event_count(cli) >= 2  # initialised + schema migrated
    assert cli("org", "add", "north", "--name", "North Clinic").code == 0
    events_before = _event_count(cli)

    export = tmp_path / "export"
    exported = cli("audit", "export", "--out", str(export))
    assert exported.code == 0, exported
    assert f"exported {events_before} events" in exported.out
    files = sorted(p.name for p in export.iterdir())
    assert files == ["events.jsonl", "manifest.json", "manifest.sig", "signing-key.pub"]
    assert _event_count(cli) == events_before + 1  # the export itself is audited

    public_key = data / "keys" / "audit-signing.pub"
    ok = cli("audit", "verify-export", str(export), "--public-key", str(public_key))
    assert ok.code == 0, ok
    assert ok.out.strip() == f"ok: {events_before} events, signature and chain verified"
    assert ok.err == ""
    # Without --public-key it still checks, and says the signer is unproven.
    self_signed = cli("audit", "verify-export", str(export))
    assert self_signed.code == 0, self_signed
    assert "pass --public-key" in self_signed.err

    # Export into a non-empty folder: refused.
    assert_one_error_line(cli("audit", "export", "--out", str(export)), "not empty")

    # Another Ed25519 key: the signature does not verify.
    other_key = tmp_path / "other.pub"
    other_key.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    wrong_signer = cli("audit", "verify-export", str(export), "--public-key", str(other_key))
    assert wrong_signer.code == 1, wrong_signer
    assert wrong_signer.err_lines == ["INVALID: the manifest signature does not verify with this public key"]

    # One byte changed inside an actor value.
    tampered = tmp_path / "tampered"
    shutil.copytree(export, tampered)
    raw = (tampered / "events.jsonl").read_bytes()
    assert b'"actor":"cli:' in raw
    changed = raw.replace(b'"actor":"cli:', b'"actor":"clj:', 1)
    assert len(changed) == len(raw) and sum(a != b for a, b in zip(raw, changed, strict=True)) == 1
    (tampered / "events.jsonl").write_bytes(changed)
    broken = cli("audit", "verify-export", str(tampered), "--public-key", str(public_key))
    assert broken.code == 1, broken
    assert len(broken.err_lines) == 1, broken
    assert broken.err_lines[0].startswith("INVALID: "), broken
    assert "events.jsonl" in broken.err_lines[0], broken
    assert "ok:" not in broken.out

    # A dropped event: the chain (and the signed digest) no longer match.
    dropped = tmp_path / "dropped"
    shutil.copytree(export, dropped)
    lines = (dropped / "events.jsonl").read_bytes().splitlines(keepends=True)
    (dropped / "events.jsonl").write_bytes(b"".join(lines[:1] + lines[2:]))
    gone = cli("audit", "verify-export", str(dropped), "--public-key", str(public_key))
    assert gone.code == 1, gone
    assert gone.err.startswith("INVALID: "), gone

    # A time window in the future: an empty but valid export.
    future = tmp_path / "future"
    windowed = cli("audit", "export", "--out", str(future), "--since", "2999-01-01", "--until", "2999-01-02T00:00:00Z")
    assert windowed.code == 0, windowed
    assert "exported 0 events" in windowed.out
    assert cli("audit", "verify-export", str(future), "--public-key", str(public_key)).code == 0


def test_cli_audit_export_garbage_date_exit_2(cli: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "export"
    for option, value in (("--since", "garbage"), ("--until", "2024-13-45")):
        result = cli("audit", "export", "--out", str(out), option, value)
        assert_one_error_line(result, option, value, "not a date")
        assert not out.exists()
    assert _event_count(cli) == 2  # nothing recorded for a refused export


@pytest.mark.parametrize("line", ['[1, 2]', '{"chain": [0]}', '"just a string"'], ids=["array", "list-chain", "string"])
def test_cli_verify_export_malformed_event_line_is_named_not_a_traceback(
    cli: Callable[..., Result], data: Path, tmp_path: Path, line: str
) -> None:
    """A doctored events.jsonl whose line is valid JSON but not an audit-event object must be reported as INVALID in
    one line (exit 1), like any other tampering, not crash the verifier."""
    export = tmp_path / "export"
    assert cli("audit", "export", "--out", str(export)).code == 0
    lines = (export / "events.jsonl").read_text().splitlines(keepends=True)
    (export / "events.jsonl").write_text(line + "\n" + "".join(lines[1:]))

    result = cli("audit", "verify-export", str(export), "--public-key", str(data / "keys" / "audit-signing.pub"))

    assert result.code == 1, result
    assert "Traceback" not in result.err, result
    assert len(result.err_lines) == 1, result
    assert result.err_lines[0].startswith("INVALID: ") and "line 1" in result.err_lines[0], result


def test_cli_verify_export_of_a_folder_that_is_no_export(cli: Callable[..., Result], tmp_path: Path) -> None:
    folder = tmp_path / "not-an-export"
    folder.mkdir()
    assert_one_error_line(cli("audit", "verify-export", str(folder)), "not an audit export")
