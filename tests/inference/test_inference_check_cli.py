"""`appliance check` and `appliance models ...` on a real data dir: missing and tampered models are reported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APPLIANCE = str(Path(sys.executable).parent / "appliance")


def run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["APPLIANCE_EMBEDDER_ENGINE"] = "fake"  # the embedder export is covered by test_inference_offline
    return subprocess.run([APPLIANCE, "--data-dir", str(data), *args], capture_output=True, text=True, env=env)


def test_check_and_models_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(data, "init").returncode == 0
    missing = run(data, "check")
    assert missing.returncode == 1
    assert "FAIL  llm model smollm2-135m-instruct is not installed" in missing.stdout
    assert "ONNX Runtime on" in missing.stdout and "llama.cpp on" in missing.stdout

    installed = run(data, "models", "install", "smollm2-135m-instruct")
    assert installed.returncode == 0, installed.stderr
    assert "smollm2-135m-instruct.Q4_1.gguf\tb179c952" in installed.stdout
    assert run(data, "check").returncode == 0
    listing = run(data, "models", "list").stdout
    assert "smollm2-135m-instruct\tllm\tgguf\tpresent" in listing
    assert "all-minilm-l6-v2\tembedder\tonnx\tnot installed" in listing

    gguf = data / "models" / "smollm2-135m-instruct.Q4_1.gguf"
    with gguf.open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"\x00\x01\x02\x03")
    verify = run(data, "models", "verify")
    assert verify.returncode == 1 and f"FAIL  smollm2-135m-instruct: {gguf} has " in verify.stdout
    check = run(data, "check")
    assert check.returncode == 1 and "checksum mismatch" in check.stdout

    unknown = run(data, "models", "install", "llama-70b")
    assert unknown.returncode == 2 and "all-minilm-l6-v2" in unknown.stderr  # lists what there is
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("hello")
    bad = run(data, "models", "add", str(text_file), "--role", "llm")
    assert bad.returncode == 2 and "not a GGUF file" in bad.stderr
