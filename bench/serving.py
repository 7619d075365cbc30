"""What the benchmarks that run a real `appliance serve` share: the appliance command, a clean environment, free
ports, the server's log, stopping it, and CPU accounting (Linux /proc)."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

APPLIANCE = str(Path(sys.executable).parent / "appliance")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def clean_env() -> dict[str, str]:
    """The environment without any APPLIANCE_* setting of the caller's (the bench sets its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    return env | {"PYTHONUNBUFFERED": "1"}


def cli(data_dir: Path, *args: str, timeout: float = 1800) -> str:
    """Run one `appliance` command; its output, or an error carrying its stderr."""
    done = subprocess.run([APPLIANCE, "--data-dir", str(data_dir), *args], capture_output=True, text=True,
                          env=clean_env(), timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"appliance {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout + done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text("utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate a server (kill it when it does not stop within 20 s)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores have been busy since boot (Linux /proc/stat); None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal, less idle and iowait (guest time is in user)
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15
