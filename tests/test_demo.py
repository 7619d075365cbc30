"""`appliance demo`, as README command 1 runs it: serves /healthz and gives an admin login that works: printed once
on a terminal, and under a service manager (stdout not a terminal, so a journal) written to a 0600 file instead."""

from __future__ import annotations

import os
import pty
import re
import stat
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

APPLIANCE = str(Path(sys.executable).parent / "appliance")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")} | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [APPLIANCE, "--data-dir", str(data_dir), "demo", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _read_until_ready(proc: subprocess.Popen[str], base: str) -> str:
    assert proc.stdout is not None
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, f"demo exited early: {proc.stderr.read() if proc.stderr else ''}"
        lines.append(line)
        if "sign in:" in line:
            break
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return "".join(lines)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("demo never answered /healthz")


def test_demo_serves_and_prints_a_working_login_once(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path / "data", port)
    try:
        out = _read_until_ready(proc, base)
        # stdout is a pipe here, as under a service manager: the password is not in it, but in a file only we read
        assert "shown once" not in out
        where = re.search(r"admin login written to (\S+) \(mode 0600\)", out)
        assert where, out
        login_file = Path(where.group(1))
        assert login_file.parent == tmp_path / "data" and stat.S_IMODE(login_file.stat().st_mode) == 0o600
        email, password = login_file.read_text().strip().split(" / ")
        assert password not in out
        login = httpx.post(f"{base}/api/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200 and login.json()["role"] == "admin"
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        # The demo help centre is imported and indexed before the server answers.
        found = httpx.get(
            f"{base}/api/retrieval/search", params={"q": "I forgot my portal password, how do I get a new one?"},
            cookies=login.cookies,
        )  # fmt: skip
        assert found.status_code == 200 and found.json()["dense_used"], found.text
        assert found.json()["articles"][0]["title"] == "Resetting a forgotten password"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # Second start reuses the data dir and never prints the password again.
    proc = _start(tmp_path / "data", port)
    try:
        out = _read_until_ready(proc, base)
        assert password not in out and "shown once" not in out
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_on_a_terminal_the_login_is_printed_and_no_file_is_written(tmp_path: Path) -> None:
    port = _free_port()
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")} | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([APPLIANCE, "--data-dir", str(tmp_path / "data"), "demo", "--port", str(port)],
                            stdout=slave, stderr=subprocess.PIPE, env=env)  # fmt: skip
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 120
        while b"sign in:" not in out and time.monotonic() < deadline:
            try:
                out += os.read(master, 4096)
            except OSError:  # the child closed the terminal: it exited
                break
        text = out.decode()
        assert re.search(r"admin login \(shown once\): \S+ / \S+", text), text
        assert not (tmp_path / "data" / "demo-admin-login.txt").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        os.close(master)
