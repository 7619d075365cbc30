"""Topic (intent) classification with out-of-scope detection, trained per organisation from example questions.

Features: the message's sentence embedding (unit length) beside a block of hashed word unigrams and bigrams (log
counts, unit length, limited to the buckets the training texts use). The words catch the wording a topic's examples
share (product names, "pin", "top up") where a frozen MiniLM blurs them; on the CLINC150 and BANKING77 dev files
they cut the errors by about a fifth and an eighth against the embedding alone (docs/evaluation.md).

The model is a softmax regression over the topics, plus one "none" class when out-of-scope examples are given,
fitted in plain numpy (mini-batch Adam, a fixed seed: the same data gives the same bytes). A message is out of
scope when its best topic's probability is below a threshold chosen on held-out folds of the training data: the
highest one that costs at most MAX_HELDOUT_LOSS of held-out in-scope accuracy.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.errors import InvalidValue, ModelError
from appliance.inference.base import Embedder
from appliance.inference.guard import normalise, word_hashes

VERSION = "intents-v1"
BUCKETS = 1 << 18  # hashed word / bigram space before it is cut to the buckets the training texts use
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SHIFT = np.uint64(13)  # bucket from the higher bits of guard.word_hashes, as guard does

FOLDS = 5
# The trade chosen on CLINC150 (train folds vs val): rejecting more than this share of held-out in-scope texts
# bought little out-of-scope recall for each in-scope message lost.
MAX_HELDOUT_LOSS = 0.01
EPOCHS, MIN_STEPS, BATCH = 10, 500, 128  # MIN_STEPS: small taxonomies (a few dozen examples) still converge
LEARNING_RATE, L2 = 0.01, 1e-5


@dataclass(frozen=True)
class Prediction:
    label: str | None  # None: out of scope (no topic fits)
    confidence: float  # the best topic's probability, 0..1
    best: str  # the best topic, even when it is below the threshold
    runner_up: str | None
    runner_up_confidence: float


@dataclass(frozen=True)
class _Sparse:
    """Rows of (column, value) pairs: CSR without scipy."""

    indptr: npt.NDArray[np.int64]
    index: npt.NDArray[np.int64]
    value: npt.NDArray[np.float32]

    def rows(self, picked: npt.NDArray[np.int64]) -> _Sparse:
        lengths = self.indptr[picked + 1] - self.indptr[picked]
        indptr = np.zeros(len(picked) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(lengths)
        positions = np.arange(int(indptr[-1]), dtype=np.int64) + np.repeat(self.indptr[picked] - indptr[:-1], lengths)
        return _Sparse(indptr, self.index[positions], self.value[positions])

    def row_ids(self) -> npt.NDArray[np.int64]:
        return np.repeat(np.arange(len(self.indptr) - 1, dtype=np.int64), np.diff(self.indptr))

    def times(self, weights: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """This matrix times weights (columns x classes)."""
        n = len(self.indptr) - 1
        out = np.zeros((n, weights.shape[1]), dtype=np.float32)
        if len(self.index):
            lengths = np.diff(self.indptr)
            nonempty = lengths > 0
            out[nonempty] = np.add.reduceat(weights[self.index] * self.value[:, None], self.indptr[:-1][nonempty])
        return out


def word_buckets(text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Hashed word unigrams and bigrams of a text: bucket ids and log-count values scaled to unit length."""
    hashes = word_hashes(_WORD.findall(normalise(text)))
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    buckets, counts = np.unique(((hashes >> _SHIFT) % np.uint64(BUCKETS)).astype(np.int64), return_counts=True)
    values = np.log1p(counts.astype(np.float32))
    return buckets, values / np.linalg.norm(values)


def _word_matrix(texts: Sequence[str], vocab: npt.NDArray[np.int64] | None) -> tuple[_Sparse, npt.NDArray[np.int64]]:
    """The texts' word features with columns numbered by position in vocab (built from these texts when None);
    buckets outside the vocabulary are dropped (their weights would be zero)."""
    rows = [word_buckets(t) for t in texts]
    index = np.concatenate([b for b, _ in rows]) if rows else np.zeros(0, dtype=np.int64)
    value = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, dtype=np.float32)
    lengths = np.array([len(b) for b, _ in rows], dtype=np.int64)
    if vocab is None:
        vocab = np.unique(index)
    column = np.minimum(np.searchsorted(vocab, index), max(len(vocab) - 1, 0))
    known = vocab[column] == index if len(vocab) else np.zeros(len(index), dtype=bool)
    row = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(row[known], minlength=len(rows)))
    return _Sparse(indptr, column[known].astype(np.int64), value[known].astype(np.float32)), vocab


def _softmax(z: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: npt.NDArray[np.float32] = e / e.sum(axis=1, keepdims=True)
    return out


@dataclass
class _Weights:
    dense: npt.NDArray[np.float32]  # embedding dim x classes
    words: npt.NDArray[np.float32]  # vocabulary x classes
    bias: npt.NDArray[np.float32]

    def probabilities(self, vectors: npt.NDArray[np.float32], words: _Sparse) -> npt.NDArray[np.float32]:
        return _softmax(vectors @ self.dense + self.bias + words.times(self.words))


def _fit(vectors: npt.NDArray[np.float32], words: _Sparse, y: npt.NDArray[np.int64], classes: int, vocab: int,
         seed: int) -> _Weights:  # fmt: skip
    """Softmax regression with L2, mini-batch Adam; the word weights are updated only where a batch has features
    (lazy Adam), which keeps an epoch linear in the number of word occurrences."""
    n, dim = vectors.shape
    w = _Weights(np.zeros((dim, classes), np.float32), np.zeros((vocab, classes), np.float32),
                 np.zeros(classes, np.float32))  # fmt: skip
    moments = {name: (np.zeros_like(p), np.zeros_like(p)) for name, p in vars(w).items()}
    rng = np.random.default_rng(seed)
    steps_per_epoch = -(-n // BATCH)
    epochs = max(EPOCHS, -(-MIN_STEPS // steps_per_epoch))
    beta1, beta2, step = 0.9, 0.999, 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, BATCH):
            picked = order[start : start + BATCH]
            x, sparse = vectors[picked], words.rows(picked)
            grad = _softmax(x @ w.dense + w.bias + sparse.times(w.words))
            grad[np.arange(len(picked)), y[picked]] -= 1.0
            grad /= len(picked)
            step += 1
            rate = LEARNING_RATE * np.sqrt(1 - beta2**step) / (1 - beta1**step)
            for name, g in (("dense", x.T @ grad + L2 * w.dense), ("bias", grad.sum(axis=0))):
                param, (m, v) = getattr(w, name), moments[name]
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                param -= rate * m / (np.sqrt(v) + 1e-8)
            if len(sparse.index):
                order_cols = np.argsort(sparse.index, kind="stable")
                cols = sparse.index[order_cols]
                starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
                used = cols[starts]
                contributions = grad[sparse.row_ids()[order_cols]] * sparse.value[order_cols, None]
                g = np.add.reduceat(contributions, starts) + L2 * w.words[used]
                m, v = moments["words"]
                m_used = beta1 * m[used] + (1 - beta1) * g
                v_used = beta2 * v[used] + (1 - beta2) * g * g
                m[used], v[used] = m_used, v_used
                w.words[used] -= rate * m_used / (np.sqrt(v_used) + 1e-8)
    return w


def _folds(y: npt.NDArray[np.int64], classes: int, folds: int, seed: int) -> npt.NDArray[np.int64]:
    """Stratified fold numbers: each class's examples dealt round the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=np.int64)
    for c in range(classes):
        members = np.flatnonzero(y == c)
        fold[members[rng.permutation(len(members))]] = np.arange(len(members)) % folds
    return fold


def _choose_threshold(scores: npt.NDArray[np.float64], right: npt.NDArray[np.bool_]) -> float:
    """The highest threshold on held-out in-scope scores that loses at most MAX_HELDOUT_LOSS of their accuracy:
    rejecting a wrong prediction costs nothing, rejecting a right one costs 1/n."""
    budget = int(np.floor(MAX_HELDOUT_LOSS * len(scores) + 1e-9))
    right_scores = np.sort(scores[right])
    if len(right_scores) == 0:
        return 0.0
    # Rejecting scores below t loses the right predictions scored below t; t = the (budget+1)-th lowest right one.
    return float(right_scores[min(budget, len(right_scores) - 1)])


class IntentClassifier:
    """A trained topic classifier; `predict` embeds with the embedder it was trained with."""

    def __init__(self, embedder: Embedder, labels: Sequence[str], weights: _Weights, vocab: npt.NDArray[np.int64],
                 threshold: float, stats: dict[str, Any], version: str = VERSION) -> None:  # fmt: skip
        self.embedder = embedder
        self.labels = tuple(labels)  # the topics; a trained "none" class, when there is one, is not among them
        self.threshold = threshold
        self.stats = stats  # sizes and held-out figures of the training run
        self.version = version
        self._weights = weights
        self._vocab = vocab

    @classmethod
    def train(cls, embedder: Embedder, texts: Sequence[str], labels: Sequence[str], oos_texts: Sequence[str] = (),
              *, folds: int = FOLDS, seed: int = 0) -> IntentClassifier:  # fmt: skip
        """Train on (text, topic) pairs, and optional out-of-scope example texts (a "none" class).

        Raises InvalidValue for unusable training data: mismatched lengths, empty texts, fewer than two topics, or a
        topic with fewer than two examples (the held-out folds need one to test and one to learn from)."""
        if len(texts) != len(labels):
            raise InvalidValue(f"intents: {len(texts)} texts but {len(labels)} labels")
        for number, text in enumerate([*texts, *oos_texts], start=1):
            if not isinstance(text, str) or not text.strip():
                raise InvalidValue(f"intents: training text {number} is empty")
        for number, label in enumerate(labels, start=1):
            if not isinstance(label, str) or not label.strip():
                raise InvalidValue(f"intents: label {number} is empty")
        topics = sorted(set(labels))
        if len(topics) < 2:
            raise InvalidValue(f"intents: need at least two topics, got {len(topics)}")
        counts = {t: 0 for t in topics}
        for label in labels:
            counts[label] += 1
        thin = sorted(t for t, c in counts.items() if c < 2)
        if thin:
            raise InvalidValue(f"intents: each topic needs at least two examples; {', '.join(thin[:5])} "
                               f"{'has' if len(thin) == 1 else 'have'} one")  # fmt: skip
        if folds < 2:
            raise InvalidValue(f"intents: folds must be at least 2, not {folds}")

        index = {t: i for i, t in enumerate(topics)}
        all_texts = [*texts, *oos_texts]
        y = np.array([index[label] for label in labels] + [len(topics)] * len(oos_texts), dtype=np.int64)
        classes = len(topics) + (1 if oos_texts else 0)
        vectors = np.asarray(embedder.embed(all_texts), dtype=np.float32)
        words, vocab = _word_matrix(all_texts, None)

        fold = _folds(y, classes, folds, seed)
        scores = np.zeros(len(y), dtype=np.float64)
        guesses = np.zeros(len(y), dtype=np.int64)
        for f in range(folds):
            learn, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            if len(held) == 0:
                continue
            w = _fit(vectors[learn], words.rows(learn), y[learn], classes, len(vocab), seed)
            p = w.probabilities(vectors[held], words.rows(held))[:, : len(topics)]
            scores[held], guesses[held] = p.max(axis=1), p.argmax(axis=1)
        in_scope = y < len(topics)
        right = guesses[in_scope] == y[in_scope]
        threshold = _choose_threshold(scores[in_scope], right)
        kept = scores >= threshold
        stats: dict[str, Any] = {
            "examples": len(texts), "oos_examples": len(oos_texts), "topics": len(topics), "folds": folds,
            "heldout_accuracy": float(np.mean(right & kept[in_scope])),
            "heldout_accuracy_without_threshold": float(np.mean(right)),
            "heldout_oos_recall": float(np.mean(~kept[~in_scope])) if oos_texts else None,
        }  # fmt: skip
        weights = _fit(vectors, words, y, classes, len(vocab), seed)
        return cls(embedder, topics, weights, vocab, threshold, stats)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        vectors = np.asarray(self.embedder.embed(list(texts)), dtype=np.float32)
        if vectors.shape[1] != self._weights.dense.shape[0]:
            raise ModelError(f"intents: trained on {self._weights.dense.shape[0]}-dimensional embeddings, the "
                             f"embedder {self.embedder.name} gives {vectors.shape[1]}")  # fmt: skip
        words, _ = _word_matrix(texts, self._vocab)
        p = self._weights.probabilities(vectors, words)[:, : len(self.labels)]
        order = np.argsort(-p, axis=1, kind="stable")
        out = []
        for row, ranked in zip(p, order, strict=True):
            best, second = int(ranked[0]), (int(ranked[1]) if len(ranked) > 1 else None)
            confidence = float(row[best])
            out.append(Prediction(
                label=self.labels[best] if confidence >= self.threshold else None, confidence=confidence,
                best=self.labels[best], runner_up=self.labels[second] if second is not None else None,
                runner_up_confidence=float(row[second]) if second is not None else 0.0,
            ))  # fmt: skip
        return out

    def to_bytes(self) -> bytes:
        """An .npz (no pickles) holding the weights and a JSON header; from_bytes reads it back exactly."""
        meta = {"version": self.version, "labels": list(self.labels), "threshold": self.threshold,
                "embedder": self.embedder.name, "stats": self.stats}  # fmt: skip
        buffer = io.BytesIO()
        np.savez_compressed(buffer, meta=np.array(json.dumps(meta)), dense=self._weights.dense,
                            words=self._weights.words, bias=self._weights.bias, vocab=self._vocab)  # fmt: skip
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, embedder: Embedder) -> IntentClassifier:
        """Load a classifier; the embedder must be the one it was trained with (same name and dimension)."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta = json.loads(str(arrays["meta"]))
            weights = _Weights(arrays["dense"].astype(np.float32), arrays["words"].astype(np.float32),
                               arrays["bias"].astype(np.float32))  # fmt: skip
            labels, threshold, version = [str(x) for x in meta["labels"]], float(meta["threshold"]), meta["version"]
            vocab, trained_with, stats = arrays["vocab"].astype(np.int64), str(meta["embedder"]), meta["stats"]
        except (ValueError, OSError, KeyError, TypeError, EOFError) as exc:
            raise ModelError(f"intents: not a readable classifier: {exc}") from None
        if version != VERSION:
            raise ModelError(f"intents: classifier version {version}, this release reads {VERSION}: retrain it")
        if trained_with != embedder.name or weights.dense.shape[0] != embedder.dim:
            raise ModelError(f"intents: trained with embedder {trained_with}, not {embedder.name}: retrain it")
        return cls(embedder, labels, weights, vocab, threshold, stats, version)
