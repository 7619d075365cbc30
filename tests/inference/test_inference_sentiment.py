"""The sentiment runtime: an ONNX head over sentence embeddings gives the label and 0-100 score its logits say;
the shipped model (sentiment-v1) loads verified and labels clear cases on the real embedder; the text cleaner is
the training data's; the lexicon baseline is a placeholder whose limits are pinned down."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from appliance.errors import ConfigError, ModelChecksumMismatch, ModelError
from appliance.inference import registry, sentiment
from appliance.inference.base import Score, TextScorer
from appliance.inference.embedders import FakeEmbedder, OnnxEmbedder
from appliance.inference.sentiment import EmbeddingHeadScorer, LexiconSentimentBaseline, clean_text, polarity_score
from appliance.instance import Instance, cli_context

ROOT = Path(__file__).resolve().parents[2]

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


# -- the shipped model (sentiment-v1) on the real embedder ------------------------------------------------------


def test_cleaner_matches_the_training_cleaner() -> None:
    # yzse preprocessing.py, step by step: mentions, URLs and punctuation go (a URL as a whole, "://" included),
    # then case, digits, the substrings "user" / "semst", and every word of 2 letters or fewer.
    assert clean_text("RT @JohnDoe: Loving the new #iPhone6!!! http://t.co/abc123 so good") == (
        "loving the new iphone good"
    )
    assert clean_text("rt great day at the beach") == "great day the beach"  # a leading lower-case "rt" only
    assert clean_text("I'm NOT happy with the 2nd update, 24/7 support my ass") == (
        "not happy with the update support ass"
    )
    assert clean_text("@user @user the username is wrong #SemST") == "the name wrong"
    assert clean_text("Café déjà-vu, naïve") == "caf djvu nave"  # non-ASCII letters are punctuation to it
    assert clean_text("ok?! :) 42") == ""
    # Text the training set holds is already clean: cleaning it again changes nothing.
    assert clean_text("sorry bout the stream last night crashed out") == "sorry bout the stream last night crashed out"


def test_shipped_model_files_match_the_recorded_digests() -> None:
    directory = sentiment.model_dir()
    for name, digest in sentiment.SENTIMENT_SHA256.items():
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest
    spec = registry.manifest_spec(ROOT / "models" / "manifest.toml", sentiment.SENTIMENT_VERSION)
    head = directory / sentiment.HEAD_FILE
    assert spec.role == "sentiment" and spec.source.builtin and spec.source.build == "copy-dir"
    assert spec.source.sha256 == sentiment.SENTIMENT_SHA256[sentiment.HEAD_FILE]
    assert spec.source.size == head.stat().st_size < 5_000_000
    assert registry.locate_source(spec) == head.resolve()


@pytest.fixture(scope="module")
def shipped(onnx_embedder: OnnxEmbedder) -> sentiment.EmbeddingHeadScorer:
    return sentiment.load_sentiment(onnx_embedder)


def test_shipped_model_loads_with_its_version_and_digest(shipped: sentiment.EmbeddingHeadScorer) -> None:
    assert isinstance(shipped, TextScorer)
    assert shipped.name == shipped.version == "sentiment-v1"
    assert shipped.sha256 == sentiment.SENTIMENT_SHA256["head.onnx"]
    assert shipped.labels == LABELS
    assert shipped.meta["embedder"] == "all-minilm-l6-v2" and shipped.meta["text_cleaner"] == "yzse"
    assert shipped.ngram_dim > 0  # the n-gram block is wired, not only the embedding


def test_shipped_model_labels_clear_examples(shipped: sentiment.EmbeddingHeadScorer) -> None:
    texts = {
        "negative": ["This is the worst service I have ever had, I hate it",
                     "Terrible app, it crashed again and I lost everything"],
        "positive": ["Thank you so much, you were really helpful!", "I love the new update, it works great"],
        "neutral": ["The office is on the second floor of the building",
                    "The meeting has been moved to Thursday afternoon"],
    }
    flat = [(label, text) for label, group in texts.items() for text in group]
    scores = shipped.score([text for _, text in flat])
    assert [s.label for s in scores] == [label for label, _ in flat]
    for (label, _), s in zip(flat, scores, strict=True):
        assert {"negative": s.score < 40, "neutral": 30 <= s.score <= 70, "positive": s.score > 60}[label], s
    # One text scores the same alone and in a batch: nothing leaks between rows (padding of the n-gram inputs).
    assert shipped.score([flat[0][1]]) == scores[:1]
    assert shipped.score([flat[-1][1]]) == scores[-1:]


def test_shipped_model_cleans_before_scoring(shipped: sentiment.EmbeddingHeadScorer) -> None:
    # Mentions, links and case are noise the model never saw: the raw tweet and its cleaned form score alike.
    raw = "@AcmeHelp THANK YOU!!! you fixed it in 5 minutes http://t.co/xyz"
    assert shipped.score([raw]) == shipped.score([clean_text(raw)])
    # Nothing left after cleaning: neutral, without asking the model.
    assert shipped.score(["ok", ":)", ""]) == [Score("neutral", 50.0)] * 3


def test_load_refuses_a_changed_file_and_another_embedder(tmp_path: Path, onnx_embedder: OnnxEmbedder) -> None:
    copy = tmp_path / "sentiment-v1"
    shutil.copytree(sentiment.model_dir(), copy)
    labels = copy / "labels.json"
    labels.write_text(json.dumps(["positive", "neutral", "negative"]))
    with pytest.raises(ModelChecksumMismatch, match="labels.json"):
        sentiment.load_sentiment(onnx_embedder, directory=copy)
    shutil.copyfile(sentiment.model_dir() / "labels.json", labels)
    head = copy / "head.onnx"
    raw = bytearray(head.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    head.write_bytes(bytes(raw))
    with pytest.raises(ModelChecksumMismatch, match="head.onnx"):
        sentiment.load_sentiment(onnx_embedder, directory=copy)
    with pytest.raises(ModelError, match="all-minilm-l6-v2"):
        sentiment.load_sentiment(FakeEmbedder())  # same dim, other vectors: the head would be meaningless


def test_models_install_puts_the_shipped_model_in_place_and_verifies_it(inst: Instance) -> None:
    models_dir = inst.settings.resolved_models_dir
    spec = registry.manifest_spec(inst.settings.models_manifest, "sentiment-v1")
    record = registry.install(inst.db, cli_context(), models_dir, spec, inst.settings.models_manifest.parent)
    assert record.origin == "package:appliance" and record.path == "sentiment-v1"
    assert record.files == sentiment.SENTIMENT_SHA256  # both files, each with the digest the loader expects
    assert registry.require(inst.db, models_dir, "sentiment", "sentiment-v1") == record
    installed = models_dir / "sentiment-v1" / "labels.json"
    installed.write_text("[]")
    assert registry.check(record, models_dir).state == "checksum mismatch"
    with pytest.raises(ModelChecksumMismatch, match="labels.json"):
        registry.require(inst.db, models_dir, "sentiment", "sentiment-v1")
    registry.install(inst.db, cli_context(), models_dir, spec, inst.settings.models_manifest.parent, force=True)
    assert registry.check(record, models_dir).state == "present"
