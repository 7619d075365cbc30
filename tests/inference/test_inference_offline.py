"""Every shipped model installs and runs with the network cut: the installer (ONNX export included) and each
engine, in a child process inside an empty network namespace (and with sockets refused in Python as well)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("outbound network use during an offline run")

_connect = socket.socket.connect
def guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost")) or self.family == socket.AF_UNIX:
        return _connect(self, address)
    refuse()
socket.socket.connect = guarded_connect
socket.create_connection = refuse

from pathlib import Path
from appliance.config import Settings
from appliance.inference import loader, registry
from appliance.inference.sentiment import LexiconSentimentBaseline
from appliance.instance import cli_context, init_instance
from appliance.inference.base import ChatMessage, GenerationRequest

settings = Settings(data_dir=Path(sys.argv[1]), inference_threads=2)
inst = init_instance(settings, cli_context())
for spec in registry.load_manifest(settings.models_manifest):
    registry.install(inst.db, cli_context(), settings.resolved_models_dir, spec, settings.models_manifest.parent)
embedder = loader.build_embedder(settings, inst.db)
vectors = embedder.embed(["How do I reset my card PIN?", "Resetting the PIN of a card"])
torch_embedder = loader.build_embedder(settings.model_copy(update={"embedder_engine": "sentence-transformers"}), inst.db)
reference = torch_embedder.embed(["How do I reset my card PIN?"])
generator = loader.build_generator(settings, inst.db)
generation = generator.generate(GenerationRequest([ChatMessage("user", "Say hello.")], max_tokens=8))
text = "".join(generation)
score = LexiconSentimentBaseline().score(["thanks, that helped"])[0]
print(json.dumps({
    "dim": int(vectors.shape[1]),
    "similar": float(vectors[0] @ vectors[1]),
    "parity": float(vectors[0] @ reference[0]),
    "generated_tokens": generation.result.completion_tokens,
    "text": text,
    "sentiment": score.label,
}))
"""


def test_all_models_install_and_run_offline(tmp_path: Path) -> None:
    command = [sys.executable, "-c", CHILD, str(tmp_path / "data")]
    namespaced = shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    if namespaced:
        command = ["unshare", "-n", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APPLIANCE_", "HF_", "TRANSFORMERS_"))}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dim"] == 384
    assert report["similar"] > 0.6
    assert report["parity"] > 0.999
    assert report["generated_tokens"] > 0 and report["text"]
    assert report["sentiment"] == "positive"
