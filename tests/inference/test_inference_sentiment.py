"""The sentiment runtime: an ONNX head over sentence embeddings gives the label and 0-100 score its logits say;
the lexicon baseline is a placeholder whose limits are pinned down."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from appliance.errors import ConfigError
from appliance.inference.embedders import FakeEmbedder
from appliance.inference.sentiment import EmbeddingHeadScorer, LexiconSentimentBaseline, polarity_score

LABELS = ["negative", "neutral", "positive"]


def write_head(model_dir: Path, weights: np.ndarray, bias: np.ndarray) -> None:
    """A linear head logits = embedding @ W + b, saved the way the trained model will be."""
    model_dir.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["embedding", "W", "b"], ["logits"])],
        "sentiment_head",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", weights.shape[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", weights.shape[1]])],
        [numpy_helper.from_array(weights.astype(np.float32), "W"), numpy_helper.from_array(bias.astype(np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, model_dir / "head.onnx")
    (model_dir / "labels.json").write_text(json.dumps(LABELS))


def test_head_scores_match_numpy(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    rng = np.random.default_rng(7)
    weights, bias = rng.normal(size=(embedder.dim, 3)) * 5, np.array([0.1, 0.0, -0.1])
    write_head(tmp_path / "head", weights, bias)
    scorer = EmbeddingHeadScorer(embedder, tmp_path / "head")
    texts = ["I have been waiting three weeks", "thank you so much", "what are your opening hours?"]
    scores = scorer.score(texts)
    logits = embedder.embed(texts).astype(np.float64) @ weights + bias
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    for score, row in zip(scores, probs, strict=True):
        assert score.label == LABELS[int(row.argmax())]
        assert score.score == pytest.approx(50 + 50 * (row[2] - row[0]), abs=0.01)
        assert 0 <= score.score <= 100
    assert scorer.score([]) == []


def test_polarity_score_scale() -> None:
    assert polarity_score([1.0, 0.0, 0.0], LABELS) == 0.0
    assert polarity_score([0.0, 1.0, 0.0], LABELS) == 50.0
    assert polarity_score([0.0, 0.0, 1.0], LABELS) == 100.0


def test_missing_head_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="head.onnx"):
        EmbeddingHeadScorer(FakeEmbedder(), tmp_path)


def test_lexicon_baseline_and_its_known_blind_spot() -> None:
    baseline = LexiconSentimentBaseline()
    happy, angry, negated, neutral, quiet_complaint = baseline.score([
        "Thanks, that was really helpful and fast!",
        "This is unacceptable, the app is broken and I am furious",
        "The transfer was not good",
        "What time does the branch open?",
        "I have been on hold since Monday and nobody calls back",
    ])  # fmt: skip
    assert happy.label == "positive" and happy.score > 60
    assert angry.label == "negative" and angry.score < 40
    assert negated.label == "negative"
    assert neutral.label == "neutral" and neutral.score == 50
    # A complaint in neutral words is exactly what a word list misses: the trained model must do better.
    assert quiet_complaint.label == "neutral"
