"""The `Embedder` engines: ONNX Runtime (what the appliance serves with), sentence-transformers on torch (parity
checks and training, needs the `build` extra) and a deterministic fake for unit tests.

`OnnxEmbedder` runs a directory built by `models/export_embedder.py`: model.onnx (mean pooling and L2 norm are
inside the graph), tokenizer.json and embedder.json. It only tokenises, pads and runs the session.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from appliance.errors import ConfigError, ModelError, ModelMissing

if TYPE_CHECKING:
    import numpy.typing as npt
    from tokenizers import Encoding

MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE = "model.onnx", "tokenizer.json", "embedder.json"
BUILD_EXTRA_HINT = "pip install 'support-appliance[build]'"
# Padded tokens per session call. Measured on 2 CPU threads with all-MiniLM-L6-v2: texts of 50-240 tokens ran
# about 45/s in batches of 32 and about 80/s under this cap (the attention scores, rows x 12 heads x length^2
# floats, outgrow the caches), while batches of short questions lost nothing.
MAX_BATCH_TOKENS = 512


def _require_dir(model_dir: Path, files: Sequence[str], what: str) -> None:
    if not model_dir.is_dir():
        raise ModelMissing(f"{what}: model directory {model_dir} not found")
    for name in files:
        if not (model_dir / name).is_file():
            raise ModelMissing(f"{what}: {model_dir / name} not found")


def _normalise_rows(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: npt.NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


def _batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> list[range]:
    """Consecutive runs of `lengths` (sorted ascending) for one session call each: at most batch_size rows and at
    most max_tokens once padded (a lone longer text still gets its own run), and cut early where padding to the
    longest member would make a run more than half padding."""
    batches, start, tokens = [], 0, 0
    for i, length in enumerate(lengths):
        rows = i - start + 1
        padded = rows * length
        if rows > 1 and (rows > batch_size or padded > max_tokens or padded > 2 * (tokens + length)):
            batches.append(range(start, i))
            start, tokens = i, 0
        tokens += length
    if start < len(lengths):
        batches.append(range(start, len(lengths)))
    return batches


class OnnxEmbedder:
    """Sentence embeddings from an exported ONNX graph, on onnxruntime and the `tokenizers` library only.

    embed() tokenises every text once, sorts by token count so that each batch pads to the longest text in it
    (not to max_length: on short support questions that is most of the speed), runs batches of at most
    batch_size texts and max_batch_tokens padded tokens (fewer where a batch would be mostly padding), and puts
    the rows back in the caller's order.
    """

    def __init__(
        self, model_dir: Path, threads: int, batch_size: int = 32, providers: list[str] | None = None,
        name: str | None = None, max_batch_tokens: int = MAX_BATCH_TOKENS,
    ) -> None:  # fmt: skip
        if model_dir.suffix == ".onnx":  # a registry path that names the graph file rather than its directory
            model_dir = model_dir.parent
        _require_dir(model_dir, (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE), "embedder")
        if min(threads, batch_size, max_batch_tokens) < 1:
            raise ConfigError(f"embedder: threads ({threads}), batch_size ({batch_size}) and max_batch_tokens "
                              f"({max_batch_tokens}) must be at least 1")  # fmt: skip
        try:
            meta = json.loads((model_dir / CONFIG_FILE).read_text("utf-8"))
            self.dim: int = int(meta["dim"])
            self.max_length: int = int(meta["max_length"])
            self._normalised_in_graph = bool(meta.get("normalised", False))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"embedder: {model_dir / CONFIG_FILE} is not a valid embedder config: {exc}") from None
        self.name = name or model_dir.name
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.model_dir = model_dir

        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Both libraries raise bare Exception subclasses for a file they cannot parse; name the file instead.
        try:
            self._session = onnxruntime.InferenceSession(
                str(model_dir / MODEL_FILE), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelError(f"embedder: cannot load {model_dir / MODEL_FILE}: {exc}") from None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._output = self._session.get_outputs()[0].name

        try:
            self._tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        except Exception as exc:
            raise ModelError(f"embedder: cannot load {model_dir / TOKENIZER_FILE}: {exc}") from None
        padding = self._tokenizer.padding or {}
        self._pad_id = int(padding.get("pad_id", 0))
        self._pad_type_id = int(padding.get("pad_type_id", 0))
        # embed() pads each batch itself, to the batch's longest text.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_length)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        lengths = [len(encodings[i].ids) for i in order]
        for rows in _batches(lengths, self.batch_size, self.max_batch_tokens):
            picked = [order[i] for i in rows]
            out[picked] = self._run([encodings[i] for i in picked])
        return out if self._normalised_in_graph else _normalise_rows(out)

    def _run(self, encodings: Sequence[Encoding]) -> npt.NDArray[np.float32]:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.full((len(encodings), width), self._pad_type_id, dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = encoding.ids, encoding.attention_mask, encoding.type_ids
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        result = self._session.run([self._output], {k: v for k, v in feed.items() if k in self._inputs})[0]
        return np.asarray(result, dtype=np.float32)


class SentenceTransformerEmbedder:
    """The same model through sentence-transformers on torch (CPU): the reference for parity checks and the base
    for training. Needs the `build` extra. torch.set_num_threads is process-wide, so the last one built wins."""

    def __init__(self, model_dir: Path, threads: int, batch_size: int = 32, name: str | None = None) -> None:
        _require_dir(model_dir, ("modules.json",), "sentence-transformers embedder")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging
        except ImportError:
            raise ConfigError(
                f"embedder_engine=sentence-transformers needs torch and sentence-transformers: {BUILD_EXTRA_HINT}"
            ) from None
        transformers_logging.disable_progress_bar()  # a "Loading weights" bar per start has no place in a log
        torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        # get_embedding_dimension from sentence-transformers 6; the older name warns there.
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = dimension()
        if dim is None:
            raise ConfigError(f"sentence-transformers embedder: {model_dir} does not declare its embedding size")
        self.dim: int = int(dim)
        self.batch_size = batch_size
        self.name = name or model_dir.name

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )  # fmt: skip
        return np.asarray(vectors, dtype=np.float32)


class FakeEmbedder:
    """The fake for unit tests (embedder_engine=fake): no model, no dependency, well under 1 ms per text.

    Each text (lower-cased, whitespace collapsed, with boundary marks) becomes a bag of character trigrams,
    feature-hashed with a sign into `dim` buckets and L2-normalised. Same text, same vector, in every process;
    texts that share spelling share direction, so near-duplicates rank close. It knows nothing of meaning:
    a paraphrase in other words is not similar here.
    """

    def __init__(self, dim: int = 384, name: str = "fake-trigram") -> None:
        if dim < 1:
            raise ConfigError(f"fake embedder: dim must be at least 1, not {dim}")
        self.dim = dim
        self.name = name

    def _vector(self, text: str) -> npt.NDArray[np.float32]:
        # Two marks each side: every text, the empty one included, has trigrams, so no row is all zeros.
        padded = "\x02\x02" + " ".join(text.lower().split()) + "\x03\x03"
        vector = np.zeros(self.dim, dtype=np.float32)
        for i in range(len(padded) - 2):
            # blake2b, not hash(): Python salts str hashes per process, and the fake must be the same everywhere.
            digest = int.from_bytes(hashlib.blake2b(padded[i : i + 3].encode(), digest_size=8).digest(), "little")
            vector[digest % self.dim] += 1.0 if (digest >> 63) & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # every trigram cancelled out: rare, but the protocol promises unit rows
            vector[0], norm = 1.0, 1.0
        out: npt.NDArray[np.float32] = vector / np.float32(norm)
        return out

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._vector(text)
        return out
