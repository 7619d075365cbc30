"""The customer-message prompt-attack detector: does this message try to take over the assistant (a jailbreak,
"ignore your instructions", a persona to play) rather than ask for help?

A logistic regression over hashed features of the message: word unigrams and bigrams, and character 3- to 5-grams
(which survive odd spacing, leetspeak and inflections), each block log-scaled and L2-normalised, so the length of
a message is not itself evidence. Scoring is a sparse dot product in numpy: well under a millisecond for a
customer question, a few milliseconds for a long pasted prompt.

The weights, bias, decision threshold and version live in one small file shipped inside the package
(data/prompt-guard-v1.npz, built by models/train_guard.py). Its SHA-256 is fixed here, next to the code that reads
it, so a changed file cannot arrive with a matching digest: a mismatch is refused, naming the file and both hashes.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
import zlib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.errors import ModelChecksumMismatch, ModelError, ModelMissing

DATA_PACKAGE = "appliance.inference.data"
PROMPT_GUARD_FILE = "prompt-guard-v1.npz"
PROMPT_GUARD_SHA256 = "bb61880df40b9b7d275e66773e69abc80559d438c07656b1dddfe4f270644c93"

# Longer messages are scored on their first MAX_CHARS characters: a jailbreak shows itself long before that, and
# the cost of a pasted novel stays bounded.
MAX_CHARS = 8000
CHAR_NGRAMS = (3, 4, 5)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SPACE = re.compile(r"\s+")
_FNV_OFFSET = 1469598103934665603
_FNV_PRIME = np.uint64(1099511628211)
_SHIFT = np.uint64(13)  # the low bits of the multiplicative hashes mix worst; bucket from the higher ones


def artefact_path(name: str) -> Path:
    return Path(str(resources.files(DATA_PACKAGE).joinpath(name)))


def verified_bytes(path: Path, expected_sha256: str) -> bytes:
    """The file's bytes, once their SHA-256 matches the digest this release expects."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelMissing(f"{path} is missing: reinstall the appliance package") from None
    except OSError as exc:
        raise ModelMissing(f"cannot read {path}: {exc.strerror}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ModelChecksumMismatch(
            f"{path} has SHA-256 {actual}, this release expects {expected_sha256}; refusing to load it"
        )
    return data


def load_arrays(path: Path, expected_sha256: str) -> dict[str, Any]:
    import io

    data = verified_bytes(path, expected_sha256)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError) as exc:
        raise ModelError(f"{path} is not a readable model file: {exc}") from None


def normalise(text: str) -> str:
    """NFKC (full-width and styled letters become plain ones), lower case, single spaces."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)[:MAX_CHARS].lower()).strip()


def word_hashes(words: list[str]) -> npt.NDArray[np.uint64]:
    """Unigram and bigram hashes of the words (CRC-32 per word: stable across processes and platforms)."""
    if not words:
        return np.zeros(0, dtype=np.uint64)
    single = np.array([zlib.crc32(w.encode("utf-8")) for w in words], dtype=np.uint64)
    pairs = single[:-1] * np.uint64(1000003) + single[1:] + np.uint64(77)
    return np.concatenate([single * np.uint64(2654435761) + np.uint64(11), pairs * np.uint64(40503)])


def char_hashes(text: str) -> npt.NDArray[np.uint64]:
    """FNV-1a hashes of every byte 3-, 4- and 5-gram of the text (spaces at both ends mark word edges)."""
    raw = np.frombuffer(f" {text} ".encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    out = []
    for n in CHAR_NGRAMS:
        count = len(raw) - n + 1
        if count <= 0:
            continue
        h = np.full(count, np.uint64(_FNV_OFFSET + n), dtype=np.uint64)
        for k in range(n):
            h = (h ^ raw[k : k + count]) * _FNV_PRIME
        out.append(h)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)


def _block(hashes: npt.NDArray[np.uint64], dim: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    buckets, counts = np.unique(((hashes >> _SHIFT) % np.uint64(dim)).astype(np.int64), return_counts=True)
    values = np.log1p(counts.astype(np.float64))
    return buckets, values / np.linalg.norm(values)


def message_features(text: str, dim: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sparse feature vector (bucket indices, values) of a message: the word block and the character block, each
    of unit length, summed and scaled so the whole has unit length."""
    norm = normalise(text)
    wi, wv = _block(word_hashes(_WORD.findall(norm)), dim)
    ci, cv = _block(char_hashes(norm), dim)
    index = np.concatenate([wi, ci])
    if len(index) == 0:
        return index, np.zeros(0, dtype=np.float64)
    buckets, inverse = np.unique(index, return_inverse=True)
    values = np.zeros(len(buckets), dtype=np.float64)
    np.add.at(values, inverse, np.concatenate([wv, cv]))
    return buckets, values / np.linalg.norm(values)


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))


class PromptGuard:
    """`score` is the probability-like output of the classifier (0..1); `is_attack` compares it with the
    threshold chosen on held-out data when the model was trained."""

    def __init__(
        self, weights: npt.NDArray[np.float32], bias: float, threshold: float, version: str, sha256: str
    ) -> None:
        self.weights = weights
        self.bias = bias
        self.threshold = threshold
        self.version = version
        self.sha256 = sha256
        self.dim = len(weights)

    @classmethod
    def load(cls, path: Path | None = None, sha256: str = PROMPT_GUARD_SHA256) -> PromptGuard:
        path = path or artefact_path(PROMPT_GUARD_FILE)
        arrays = load_arrays(path, sha256)
        try:
            return cls(
                arrays["weights"].astype(np.float32), float(arrays["bias"]), float(arrays["threshold"]),
                str(arrays["version"]), sha256,
            )  # fmt: skip
        except KeyError as exc:
            raise ModelError(f"{path} lacks {exc}: not a prompt-guard file") from None

    def score(self, text: str) -> float:
        index, values = message_features(text, self.dim)
        if len(index) == 0:
            return 0.0
        return _sigmoid(float(values @ self.weights[index]) + self.bias)

    def is_attack(self, text: str) -> bool:
        return self.score(text) >= self.threshold


@functools.lru_cache(maxsize=1)
def load_prompt_guard() -> PromptGuard:
    """The shipped detector, verified and loaded once per process."""
    return PromptGuard.load()
