"""Running `appliance eval …` as a user would (a separate process, a clean environment and home) on small
labelled files written for the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APPLIANCE = str(Path(sys.executable).parent / "appliance")


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    clean |= {"HOME": str(home), "XDG_DATA_HOME": str(home / "xdg")}
    return subprocess.run([APPLIANCE, *args], capture_output=True, text=True, env=clean, timeout=900)


def write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path
