"""Sentiment scoring: the runtime for the appliance's trained classifier, and a clearly named baseline.

The trained model (built by the conversations work from tweeteval_sentiment) is a linear head over sentence
embeddings, exported as a small ONNX graph `head.onnx` (input `embedding` float32 (n, dim) -> output `logits`
(n, labels)) with `labels.json`. `EmbeddingHeadScorer` runs it on top of any `Embedder`.

`LexiconSentimentBaseline` stands in until that model exists. It is a word list, not a model: it misses
negation scope, sarcasm and support-style complaints written in neutral words, and nothing may be called done
on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import ConfigError
from appliance.inference.base import Embedder, Score

LABELS = ("negative", "neutral", "positive")


def _softmax(logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: np.ndarray[Any, Any] = exp / exp.sum(axis=1, keepdims=True)
    return out


def polarity_score(probabilities: Sequence[float], labels: Sequence[str]) -> float:
    """0 = certainly negative, 50 = neutral, 100 = certainly positive: 50 + 50 * (P(pos) - P(neg))."""
    p = dict(zip(labels, probabilities, strict=True))
    return round(50.0 + 50.0 * (p.get("positive", 0.0) - p.get("negative", 0.0)), 2)


class EmbeddingHeadScorer:
    def __init__(self, embedder: Embedder, model_dir: Path, threads: int = 1, name: str = "sentiment") -> None:
        head, labels_file = model_dir / "head.onnx", model_dir / "labels.json"
        for required in (head, labels_file):
            if not required.is_file():
                raise ConfigError(f"sentiment model: {required} not found")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(str(head), options, providers=["CPUExecutionProvider"])
        self.labels: list[str] = json.loads(labels_file.read_text("utf-8"))
        self.embedder = embedder
        self.name = name

    def score(self, texts: Sequence[str]) -> list[Score]:
        if not texts:
            return []
        embeddings = self.embedder.embed(texts)
        logits = self._session.run(None, {"embedding": embeddings.astype(np.float32)})[0]
        probabilities = _softmax(np.asarray(logits, dtype=np.float64))
        return [
            Score(self.labels[int(row.argmax())], polarity_score(row.tolist(), self.labels)) for row in probabilities
        ]


_WORD = re.compile(r"[a-z']+")
_NEGATORS = {"not", "no", "never", "don't", "doesn't", "didn't", "isn't", "wasn't", "can't", "won't", "nobody"}
_POSITIVE = {
    "thanks", "thank", "great", "good", "excellent", "helpful", "perfect", "love", "happy", "appreciate",
    "resolved", "works", "wonderful", "amazing", "fast", "easy", "glad", "pleased",
}  # fmt: skip
_NEGATIVE = {
    "angry", "terrible", "awful", "bad", "worst", "useless", "broken", "hate", "frustrated", "furious", "waiting",
    "ridiculous", "unacceptable", "wrong", "fail", "failed", "failing", "problem", "complaint", "disappointed",
    "never", "scam", "slow", "lost", "stolen", "fraud", "refund", "cancel", "annoyed", "upset",
}  # fmt: skip


class LexiconSentimentBaseline:
    """Word-list polarity with one-word negation. A placeholder, named as one."""

    name = "lexicon-baseline"
    labels = LABELS

    def score(self, texts: Sequence[str]) -> list[Score]:
        out = []
        for text in texts:
            words = _WORD.findall(text.lower())
            total = 0
            for i, word in enumerate(words):
                polarity = (word in _POSITIVE) - (word in _NEGATIVE)
                if polarity and i > 0 and words[i - 1] in _NEGATORS:
                    polarity = -polarity
                total += polarity
            score = max(0.0, min(100.0, 50.0 + 15.0 * total))
            label = "positive" if score > 60 else "negative" if score < 40 else "neutral"
            out.append(Score(label, score))
        return out
